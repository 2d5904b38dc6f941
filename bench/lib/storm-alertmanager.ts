import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoopbackServer } from '../../test/helpers/loopback-server.js';
import { freePort } from '../../test/helpers/ports.js';

export interface StormRouting {
  groupBy: string[];
  groupWait: string;
  groupInterval: string;
}

/**
 * A real Alertmanager that sends every notification twice: to flightdeck's webhook, and through
 * its own Slack receiver (`slack_configs`, the baseline) to chat.postMessage of the emulator.
 */
export class StormAlertmanager extends LoopbackServer {
  constructor() {
    super('am-storm');
  }

  async reservePort(): Promise<this> {
    this.port = await freePort();
    return this;
  }

  async start(opts: {
    webhookUrl: string;
    webhookToken: string;
    slack: { apiUrl: string; token: string; channel: string };
    routing: StormRouting;
  }): Promise<this> {
    if (!this.port) await this.reservePort();
    const config = {
      route: {
        receiver: 'flightdeck',
        group_by: opts.routing.groupBy,
        group_wait: opts.routing.groupWait,
        group_interval: opts.routing.groupInterval,
        repeat_interval: '1h',
        routes: [
          { receiver: 'flightdeck', continue: true },
          { receiver: 'slack', continue: false },
        ],
      },
      receivers: [
        {
          name: 'flightdeck',
          webhook_configs: [
            {
              url: opts.webhookUrl,
              send_resolved: true,
              http_config: { authorization: { type: 'Bearer', credentials: opts.webhookToken } },
            },
          ],
        },
        {
          name: 'slack',
          slack_configs: [
            {
              api_url: `${opts.slack.apiUrl}chat.postMessage`,
              channel: opts.slack.channel,
              send_resolved: true,
              // What a team would template: every alert of the group named in the message.
              title: '[{{ .Status | toUpper }}:{{ .Alerts.Firing | len }}] {{ .CommonLabels.alertname }}',
              text: '{{ range .Alerts }}{{ .Labels.instance }} {{ .Annotations.summary }}\n{{ end }}',
              http_config: { authorization: { type: 'Bearer', credentials: opts.slack.token } },
            },
          ],
        },
      ],
    };
    writeFileSync(join(this.dir, 'alertmanager.yml'), JSON.stringify(config));
    await this.run('prometheus-alertmanager', [
      `--config.file=${join(this.dir, 'alertmanager.yml')}`,
      `--storage.path=${join(this.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
      '--cluster.listen-address=',
    ]);
    return this;
  }

  async post(alerts: unknown[]): Promise<void> {
    const res = await fetch(`${this.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
    });
    if (!res.ok) throw new Error(`alertmanager refused alerts: ${res.status} ${await res.text()}`);
  }
}
