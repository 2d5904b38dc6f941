import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoopbackServer } from './loopback-server.js';
import { freePort } from './ports.js';
import type { TestStack } from './stack.js';

export interface AmAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
}

/** A real prometheus-alertmanager of the test's own whose webhook receiver points at flightdeck. */
export class TestAlertmanager extends LoopbackServer {
  constructor(name = 'am') {
    super(name);
  }

  async reservePort(): Promise<this> {
    this.port = await freePort();
    return this;
  }

  async start(webhookUrl: string, token: string, groupBy: string[] = ['alertname']): Promise<this> {
    return this.startWithConfig({
      route: {
        receiver: 'flightdeck',
        group_by: groupBy,
        group_wait: '1s',
        group_interval: '1s',
        repeat_interval: '1h',
      },
      receivers: [
        {
          name: 'flightdeck',
          webhook_configs: [
            {
              url: webhookUrl,
              send_resolved: true,
              http_config: { authorization: { type: 'Bearer', credentials: token } },
            },
          ],
        },
      ],
    });
  }

  /** Runs Alertmanager on loopback with this configuration (alertmanager.yml as an object). */
  async startWithConfig(config: object): Promise<this> {
    if (!this.port) await this.reservePort();
    writeFileSync(join(this.dir, 'alertmanager.yml'), JSON.stringify(config));
    await this.run('prometheus-alertmanager', [
      `--config.file=${join(this.dir, 'alertmanager.yml')}`,
      `--storage.path=${join(this.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
      '--cluster.listen-address=',
    ]);
    return this;
  }

  async post(alerts: AmAlert[]): Promise<void> {
    const res = await fetch(`${this.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
    });
    if (!res.ok) throw new Error(`alertmanager refused alerts: ${res.status} ${await res.text()}`);
  }

  /** Re-post with endsAt in the past: Alertmanager then sends the resolved notification. */
  async resolve(alerts: AmAlert[]): Promise<void> {
    const past = new Date(Date.now() - 1_000).toISOString();
    await this.post(alerts.map((a) => ({ ...a, endsAt: past })));
  }

  async alerts(): Promise<Array<{ fingerprint: string; labels: Record<string, string> }>> {
    return (await (await fetch(`${this.url}/api/v2/alerts`)).json()) as Array<{
      fingerprint: string;
      labels: Record<string, string>;
    }>;
  }

  async silences(): Promise<
    Array<{
      id: string;
      status: { state: string };
      matchers: Array<{ name: string; value: string; isEqual?: boolean; isRegex: boolean }>;
      createdBy: string;
      comment: string;
      endsAt: string;
    }>
  > {
    return (await (await fetch(`${this.url}/api/v2/silences`)).json()) as never;
  }
}

/**
 * Starts `stack` wired to `am`: flightdeck gets `token` as its webhook token and `alertmanager.url`
 * plus `alerts` in its config; then Alertmanager starts with its webhook receiver at the first
 * replica (by `am.start`, or by `start` for an Alertmanager configured otherwise).
 */
export async function startWithAlertmanager(
  stack: TestStack,
  am: TestAlertmanager,
  opts: {
    token: string;
    alerts: Record<string, unknown>;
    start?: (webhookUrl: string, token: string) => Promise<unknown>;
  },
): Promise<void> {
  await am.reservePort();
  await stack.start({
    env: { ALERTMANAGER_WEBHOOK_TOKEN: opts.token },
    configure: (cfg) => {
      Object.assign(cfg, { alertmanager: { url: am.url }, alerts: opts.alerts });
    },
  });
  const webhookUrl = `${stack.apps[0]?.url}/alerts/alertmanager`;
  await (opts.start ?? ((url, token) => am.start(url, token)))(webhookUrl, opts.token);
}
