/**
 * Scenario 2: 5,000 alerts posted to a real Alertmanager within a minute. Alertmanager notifies
 * flightdeck's webhook and, as the baseline, its own Slack receiver (slack_configs); both post to
 * the emulator with Slack's per-channel rate limit on. For each alert: when it became visible in
 * Slack (named in a message, as posted or edited, or a thread reply), against when it was posted;
 * and when Alertmanager first notified it (a third receiver, here), the wait both share.
 */

import { createServer } from 'node:http';
import { startWithAlertmanager } from '../../test/helpers/alertmanager-server.js';
import { freePort, waitFor } from '../../test/helpers/ports.js';
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
/** Issue #17: sooner than Alertmanager's own Slack receiver at the median, well sooner at the tail. */
const TARGET = { p50: 1, p95: 0.6 } as const;
const CHANNEL = { flightdeck: 'C0ALERTS', alertmanager: 'C0ONCALL' } as const;
type Who = keyof typeof CHANNEL;

const instance = (i: number) => `storm-${String(i).padStart(4, '0')}`;

export async function alertStorm(): Promise<ScenarioResult> {
  const am = new StormAlertmanager();
  const stack = new TestStack({ prefix: 'fdbenchst', basePort: 30900 });
  // When Alertmanager first notified each alert: the wait both receivers share (its grouping).
  const notified = new Map<string, number>();
  const probe = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as {
          alerts?: Array<{ labels?: Record<string, string> }>;
        };
        for (const a of body.alerts ?? []) {
          const id = a.labels?.instance;
          if (id && !notified.has(id)) notified.set(id, at);
        }
      } catch {
        // Not a notification: nothing to note.
      }
      res.writeHead(200).end();
    });
  });
  const probePort = await freePort();
  await new Promise<void>((r) => probe.listen(probePort, '127.0.0.1', r));
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
          probeUrl: `http://127.0.0.1:${probePort}/`,
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
    // The floor (post → Alertmanager's first notification) and flightdeck's share after it.
    const floor: number[] = [];
    const share: number[] = [];
    for (let i = 0; i < N; i++) {
      const n = notified.get(instance(i));
      if (n === undefined) continue;
      floor.push(n - (posted[i] as number));
      const v = visible.flightdeck.get(instance(i));
      if (v !== undefined) share.push(v - n);
    }
    const notifiedFigures = {
      alerts: floor.length,
      p50Ms: round(pct(floor, 50), 0),
      p95Ms: round(pct(floor, 95), 0),
      flightdeckAfterP50Ms: round(pct(share, 50), 0),
      flightdeckAfterP95Ms: round(pct(share, 95), 0),
    };
    const p50Ratio = round(fd.p50Ms / base.p50Ms);
    const p95Ratio = round(fd.p95Ms / base.p95Ms);
    const retryAfterViolations = stack.emulator.retryAfterViolations;
    const met =
      fd.lost === 0 &&
      fd.rateLimited === 0 &&
      retryAfterViolations === 0 &&
      p50Ratio <= TARGET.p50 &&
      p95Ratio <= TARGET.p95;
    const raw = {
      alerts: N,
      postSeconds,
      routing: ROUTING,
      flightdeck: fd,
      alertmanagerSlack: base,
      alertmanagerNotified: notifiedFigures,
      p50Ratio,
      p95Ratio,
      target: TARGET,
      retryAfterViolations,
    };
    const secs = (x: number) => `${round(x / 1000, 1)} s`;
    return {
      id: 'storm',
      raw,
      rows: [
        {
          scenario: `2. Alert storm: ${N.toLocaleString('en')} alerts in ${postSeconds} s via Alertmanager (group_by alertname), Slack rate limits on`,
          flightdeck: `${fd.lost} lost; visible p50 ${secs(fd.p50Ms)}, p95 ${secs(fd.p95Ms)}; ${fd.slackCalls} Slack calls (${fd.postMessages} posts, ${fd.updates} updates), ${fd.rateLimited} × 429, ${retryAfterViolations} Retry-After violations`,
          baseline: `Alertmanager's slack_configs: ${base.lost} lost; p50 ${secs(base.p50Ms)}, p95 ${secs(base.p95Ms)}; ${base.slackCalls} calls, ${base.rateLimited} × 429 (Alertmanager's own notification: p50 ${secs(notifiedFigures.p50Ms)}, p95 ${secs(notifiedFigures.p95Ms)}; flightdeck visible after it: p50 ${secs(notifiedFigures.flightdeckAfterP50Ms)}, p95 ${secs(notifiedFigures.flightdeckAfterP95Ms)})`,
          ratio: `p50 ${times(p50Ratio)}, p95 ${times(p95Ratio)}`,
          target: `p50 ≤ ${times(TARGET.p50)}, p95 ≤ ${times(TARGET.p95)}; 0 lost, 0 × 429, 0 Retry-After violations`,
          met,
        },
      ],
    };
  } finally {
    await am.destroy();
    await stack.stop();
    probe.close();
  }
}
