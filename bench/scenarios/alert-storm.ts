/**
 * Scenario 2: 5,000 alerts posted to a real Alertmanager within a minute. Alertmanager notifies
 * flightdeck's webhook and, as the baseline, its own Slack receiver (slack_configs); both post to
 * the emulator with Slack's per-channel rate limit on. For each alert: when it became visible in
 * Slack (named in a message or thread reply), against when it was posted.
 */

import { startWithAlertmanager } from '../../test/helpers/alertmanager-server.js';
import { waitFor } from '../../test/helpers/ports.js';
import { TestStack } from '../../test/helpers/stack.js';
import type { StoredMessage } from '../../tools/slack-emulator/emulator.js';
import { type ScenarioResult, times } from '../lib/result.js';
import { pct, round, sleep } from '../lib/stats.js';
import { StormAlertmanager } from '../lib/storm-alertmanager.js';

const TOKEN = 'bench-alertmanager-token-0123456789';
const N = 5_000;
const BATCH = 100;
const NAMES = ['InstanceDown', 'HighLatency', 'HighErrorRate', 'DiskFilling', 'TargetMissing'];
const ROUTING = { groupBy: ['alertname'], groupWait: '5s', groupInterval: '10s' };
/** How long after the last post an alert may still appear before it counts as lost. */
const GRACE_MS = 180_000;
const CHANNEL = { flightdeck: 'C0ALERTS', alertmanager: 'C0ONCALL' } as const;
type Who = keyof typeof CHANNEL;

const instance = (i: number) => `storm-${String(i).padStart(4, '0')}`;

export async function alertStorm(): Promise<ScenarioResult> {
  const am = new StormAlertmanager();
  const stack = new TestStack({ prefix: 'fdbenchst', basePort: 30900 });
  try {
    await startWithAlertmanager(stack, am, {
      token: TOKEN,
      alerts: { defaultChannel: CHANNEL.flightdeck },
      start: (webhookUrl, webhookToken) =>
        am.startStorm({
          webhookUrl,
          webhookToken,
          slack: {
            apiUrl: stack.emulator.apiUrl,
            token: stack.emulator.botToken,
            channel: CHANNEL.alertmanager,
          },
          routing: ROUTING,
        }),
    });
    const posted = new Array<number>(N);
    const visible: Record<Who, Map<string, number>> = { flightdeck: new Map(), alertmanager: new Map() };
    const byChannel = new Map<string, Who>(Object.entries(CHANNEL).map(([who, c]) => [c, who as Who]));
    const scan = (m: StoredMessage | undefined) => {
      const who = m && byChannel.get(m.channel);
      if (!m || !who) return;
      const at = performance.now();
      const text = `${m.text} ${JSON.stringify(m.blocks ?? [])} ${JSON.stringify(m.attachments ?? [])}`;
      for (const [id] of text.matchAll(/storm-\d{4}/g)) if (!visible[who].has(id)) visible[who].set(id, at);
    };
    stack.emulator.on('transcript', (e: { kind: string; channel?: string; ts?: string }) => {
      if (e.kind !== 'message' && e.kind !== 'update') return;
      scan(stack.emulator.messages.findLast((m) => m.channel === e.channel && m.ts === e.ts));
    });

    const t0 = performance.now();
    const endsAt = new Date(Date.now() + 3_600_000).toISOString();
    for (let b = 0; b * BATCH < N; b++) {
      const from = b * BATCH;
      const alerts = Array.from({ length: Math.min(BATCH, N - from) }, (_, k) => {
        const i = from + k;
        const name = NAMES[i % NAMES.length] as string;
        return {
          labels: { alertname: name, severity: 'warning', instance: instance(i), job: 'node' },
          annotations: { summary: `${name} on ${instance(i)}` },
          endsAt,
        };
      });
      const at = performance.now();
      await am.post(alerts);
      for (let k = 0; k < alerts.length; k++) posted[from + k] = at;
      // 50 batches spread over 50 s: "within a minute".
      await sleep(Math.max(0, t0 + (b + 1) * 1_000 - performance.now()));
    }
    const postSeconds = round((performance.now() - t0) / 1000, 1);
    await waitFor(() => visible.flightdeck.size >= N && visible.alertmanager.size >= N, {
      timeoutMs: GRACE_MS,
      intervalMs: 500,
      what: 'every alert visible in both channels',
    }).catch(() => {}); // what is missing by then is lost

    const figures = (who: Who) => {
      const delays: number[] = [];
      for (let i = 0; i < N; i++) {
        const v = visible[who].get(instance(i));
        if (v !== undefined) delays.push(v - (posted[i] as number));
      }
      const calls = stack.emulator.calls.filter((c) => c.channel === CHANNEL[who]);
      return {
        lost: N - delays.length,
        p50Ms: round(pct(delays, 50), 0),
        p95Ms: round(pct(delays, 95), 0),
        maxMs: round(Math.max(...delays), 0),
        slackCalls: calls.length,
        postMessages: calls.filter((c) => c.method === 'chat.postMessage').length,
        updates: calls.filter((c) => c.method === 'chat.update').length,
        rateLimited: calls.filter((c) => c.status === 429).length,
        messages: stack.emulator.messages.filter((m) => m.channel === CHANNEL[who]).length,
      };
    };
    const fd = figures('flightdeck');
    const base = figures('alertmanager');
    const raw = {
      alerts: N,
      postSeconds,
      routing: ROUTING,
      flightdeck: fd,
      alertmanagerSlack: base,
      p95Ratio: round(fd.p95Ms / base.p95Ms),
      retryAfterViolations: stack.emulator.retryAfterViolations,
    };
    const secs = (x: number) => `${round(x / 1000, 1)} s`;
    return {
      id: 'storm',
      raw,
      rows: [
        {
          scenario: `2. Alert storm: ${N.toLocaleString('en')} alerts in ${postSeconds} s via Alertmanager (group_by alertname), Slack rate limits on`,
          flightdeck: `${fd.lost} lost; visible p50 ${secs(fd.p50Ms)}, p95 ${secs(fd.p95Ms)}; ${fd.slackCalls} Slack calls (${fd.postMessages} posts, ${fd.updates} updates), ${fd.rateLimited} × 429`,
          baseline: `Alertmanager's slack_configs: ${base.lost} lost; p50 ${secs(base.p50Ms)}, p95 ${secs(base.p95Ms)}; ${base.slackCalls} calls, ${base.rateLimited} × 429`,
          ratio: `p95 ${times(raw.p95Ratio)}`,
          target: '0 lost',
          met: fd.lost === 0,
        },
      ],
    };
  } finally {
    await am.destroy();
    await stack.stop();
  }
}
