/**
 * Scenario 7b: does a long run leave the processes bigger? A flightdeck web process and a worker
 * process on one Redis, warmed up, then 20,000 `/deploy status` (acked by the web process, answered
 * by the worker through response_url) and a storm of 5,000 alerts posted to the Alertmanager webhook
 * (Alertmanager's JSON, 100 alerts a notification, as it would send them). RSS (VmRSS) of each
 * process after warm-up and again once every queue has drained, each time after a full GC (asked
 * for through the Node inspector, so the figure is what is still held, not garbage not yet
 * collected); the peak sampled in between. Target: after within ±10% of before.
 */
import { readFileSync } from 'node:fs';
import type { Queue } from 'bullmq';
import { Queue as BullQueue } from 'bullmq';
import WebSocket from 'ws';
import { type FlightdeckProcess, SIGNING_SECRET } from '../../test/helpers/flightdeck-process.js';
import { freePort, waitFor } from '../../test/helpers/ports.js';
import { TestStack } from '../../test/helpers/stack.js';
import { SlackDriver } from '../../tools/slack-emulator/driver.js';
import { DEFAULT_CHANNELS } from '../../tools/slack-emulator/emulator.js';
import type { ScenarioResult } from '../lib/result.js';
import { inBatches, round } from '../lib/stats.js';

const TOKEN = 'bench-alertmanager-token-0123456789';
const COMMANDS = 20_000;
const WARM_COMMANDS = 5_000;
const CONCURRENCY = 100;
const ALERTS = 5_000;
const WARM_ALERTS = 1_000;
const BATCH = 100;
/** One channel per alert name: flightdeck keeps Slack's 1 post/s per channel itself, so five drain five times as fast. */
const NAMES = ['InstanceDown', 'HighLatency', 'HighErrorRate', 'DiskFilling', 'TargetMissing'];
const channelOf = (name: string) => `C0RSS${name.toUpperCase()}`;
const TARGET = 0.1;

/** VmRSS of a process, in bytes. */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** The Node inspector of a process started with --inspect: one call at a time is all this needs. */
type Call = (method: string, params?: Record<string, unknown>) => Promise<unknown>;

async function inspect<T>(port: number, calls: (call: Call) => Promise<T>) {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
    webSocketDebuggerUrl: string;
  }>;
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on ${port}`);
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  });
  const call: Call = (method, params = {}) =>
    new Promise<unknown>((resolve) => {
      id += 1;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    return await calls(call);
  } finally {
    ws.close();
  }
}

/**
 * After two full GCs, once RSS has settled (three readings in a row within 1%: V8 and malloc hand
 * freed pages back over a moment, not at once): RSS and the JS heap in use.
 */
async function settled(app: FlightdeckProcess, port: number) {
  const { heapUsed, usage } = await inspect(port, async (call) => {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const used = ((await call('Runtime.getHeapUsage')) as { usedSize: number }).usedSize;
    // Where the RSS is: V8's heap, external memory (Buffers), the rest native (code, malloc arenas).
    const evaluated = (await call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    })) as { result?: { value?: string } };
    return { heapUsed: used, usage: JSON.parse(evaluated.result?.value ?? '{}') as Record<string, number> };
  });
  const readings: number[] = [];
  const steady = () => {
    const last = readings.slice(-3);
    return last.length === 3 && Math.max(...last) - Math.min(...last) <= 0.01 * Math.min(...last);
  };
  await waitFor(
    () => {
      readings.push(rssOf(app.pid as number));
      return steady();
    },
    { timeoutMs: 15_000, intervalMs: 250, what: 'RSS to settle' },
  ).catch(() => {}); // still moving after 15 s: the last reading stands, as measured
  return { rss: readings.at(-1) as number, heapUsed, usage };
}

/** How many alerts of storm round `n` a message (text, blocks or attachments) names. */
function visibleOf(stack: TestStack, n: number): number {
  const seen = new Set<string>();
  const pattern = new RegExp(`rss${n}-\\d{4}`, 'g');
  for (const m of stack.emulator.messages) {
    const text = `${m.text} ${JSON.stringify(m.blocks ?? [])} ${JSON.stringify(m.attachments ?? [])}`;
    for (const [id] of text.matchAll(pattern)) seen.add(id);
  }
  return seen.size;
}

const pending = async (q: Queue) => {
  const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(c).reduce((a, b) => a + b, 0);
};

export async function memoryRss(): Promise<ScenarioResult> {
  const stack = new TestStack({ prefix: 'fdbenchrss', basePort: 30200 });
  const queues: Queue[] = [];
  try {
    await stack.start({
      roles: [],
      emulator: {
        rateLimits: false,
        channels: [...DEFAULT_CHANNELS, ...NAMES.map((n) => ({ id: channelOf(n), name: n.toLowerCase() }))],
      },
      env: { ALERTMANAGER_WEBHOOK_TOKEN: TOKEN, LOG_LEVEL: 'warn' },
      configure: (cfg) => {
        Object.assign(cfg, {
          alerts: {
            defaultChannel: 'C0ALERTS',
            routes: NAMES.map((n) => ({ match: { alertname: n }, channel: channelOf(n) })),
          },
        });
      },
    });
    const ports = { web: await freePort(), worker: await freePort() };
    const web = await stack.addApp('web', { NODE_OPTIONS: `--inspect=127.0.0.1:${ports.web}` });
    const worker = await stack.addApp('worker', { NODE_OPTIONS: `--inspect=127.0.0.1:${ports.worker}` });
    const driver = new SlackDriver(stack.emulator, web.url, SIGNING_SECRET);
    for (const name of ['alerts', 'slack-outbox', 'commands'])
      queues.push(new BullQueue(name, { connection: stack.redis.client(), prefix: stack.prefix }));
    const answered = () => stack.emulator.ephemerals.filter((e) => e.via === 'response_url').length;

    let round_ = 0;
    const commands = async (n: number) => {
      const before = answered();
      const acks = await inBatches(n, CONCURRENCY, () => driver.command('/deploy', 'status'));
      await waitFor(() => answered() - before >= n, { timeoutMs: 180_000, intervalMs: 100, what: 'answers' });
      return acks.filter((a) => a.status !== 200 || a.timedOut).length;
    };
    const storm = async (n: number) => {
      round_ += 1;
      const endsAt = new Date(Date.now() + 3_600_000).toISOString();
      const statuses: number[] = [];
      for (let from = 0; from < n; from += BATCH) {
        const alerts = Array.from({ length: Math.min(BATCH, n - from) }, (_, k) => {
          const i = from + k;
          const name = NAMES[i % NAMES.length] as string;
          const instance = `rss${round_}-${String(i).padStart(4, '0')}`;
          return {
            status: 'firing',
            labels: { alertname: name, severity: 'warning', instance, job: 'node' },
            annotations: { summary: `${name} on ${instance}` },
            startsAt: new Date().toISOString(),
            endsAt,
            generatorURL: 'http://prometheus:9090/graph',
            fingerprint: `${round_.toString(16)}${i.toString(16).padStart(12, '0')}`,
          };
        });
        // One notification of Alertmanager's shape per group of the batch (group_by alertname).
        for (const name of NAMES) {
          const group = alerts.filter((a) => a.labels.alertname === name);
          if (group.length === 0) continue;
          const res = await fetch(`${web.url}/alerts/alertmanager`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify({
              version: '4',
              groupKey: `{}:{alertname="${name}"}`,
              truncatedAlerts: 0,
              status: 'firing',
              receiver: 'flightdeck',
              groupLabels: { alertname: name },
              commonLabels: { alertname: name, severity: 'warning', job: 'node' },
              commonAnnotations: {},
              externalURL: 'http://alertmanager:9093',
              alerts: group,
            }),
          });
          await res.arrayBuffer();
          statuses.push(res.status);
        }
      }
      return statuses.filter((s) => s !== 200).length;
    };
    /** Every queue empty: notifications handled, Slack posts sent, commands answered. */
    const drained = () =>
      waitFor(async () => (await Promise.all(queues.map(pending))).every((n) => n === 0), {
        timeoutMs: 240_000,
        intervalMs: 250,
        what: 'the queues to drain',
      });

    // Warm-up: JIT, connection pools, caches at their working size.
    await commands(WARM_COMMANDS);
    await storm(WARM_ALERTS);
    await drained();
    const before = { web: await settled(web, ports.web), worker: await settled(worker, ports.worker) };

    const peak = { web: before.web.rss, worker: before.worker.rss };
    /** The peak of each phase: which load the peak belongs to. */
    const phases: Record<string, { web: number; worker: number }> = {};
    let phase = 'commands';
    const sampler = setInterval(() => {
      const now = { web: rssOf(web.pid as number), worker: rssOf(worker.pid as number) };
      peak.web = Math.max(peak.web, now.web);
      peak.worker = Math.max(peak.worker, now.worker);
      const p = phases[phase] ?? { web: 0, worker: 0 };
      phases[phase] = { web: Math.max(p.web, now.web), worker: Math.max(p.worker, now.worker) };
    }, 200);
    const t0 = performance.now();
    let failedCommands = 0;
    let refusedNotifications = 0;
    try {
      failedCommands = await commands(COMMANDS);
      phase = 'storm';
      refusedNotifications = await storm(ALERTS);
      await drained();
    } finally {
      clearInterval(sampler);
    }
    const loadSeconds = round((performance.now() - t0) / 1000, 1);
    const after = { web: await settled(web, ports.web), worker: await settled(worker, ports.worker) };

    const mb = (b: number) => round(b / 1024 / 1024, 1);
    const change = (p: 'web' | 'worker') => (after[p].rss - before[p].rss) / before[p].rss;
    const heapChange = (p: 'web' | 'worker') => (after[p].heapUsed - before[p].heapUsed) / before[p].heapUsed;
    const pctText = (x: number) => `${x >= 0 ? '+' : ''}${round(x * 100, 1)}%`;
    const per = (p: 'web' | 'worker') => ({
      beforeMB: mb(before[p].rss),
      afterMB: mb(after[p].rss),
      peakMB: mb(peak[p]),
      change: round(change(p), 3),
      heapBeforeMB: mb(before[p].heapUsed),
      heapAfterMB: mb(after[p].heapUsed),
      heapChange: round(heapChange(p), 3),
      usageBeforeMB: Object.fromEntries(Object.entries(before[p].usage).map(([k, v]) => [k, mb(v)])),
      usageAfterMB: Object.fromEntries(Object.entries(after[p].usage).map(([k, v]) => [k, mb(v)])),
    });
    const raw = {
      commands: COMMANDS,
      alerts: ALERTS,
      warmUp: { commands: WARM_COMMANDS, alerts: WARM_ALERTS },
      loadSeconds,
      failedCommands,
      refusedNotifications,
      slackPosts: stack.emulator.calls.filter((c) => c.method === 'chat.postMessage').length,
      slackUpdates: stack.emulator.calls.filter((c) => c.method === 'chat.update').length,
      /** Alerts of the measured storm named in a message or thread reply (all of them, or some were lost). */
      visibleAlerts: visibleOf(stack, round_),
      web: per('web'),
      worker: per('worker'),
      peakMBByPhase: Object.fromEntries(
        Object.entries(phases).map(([k, v]) => [k, { web: mb(v.web), worker: mb(v.worker) }]),
      ),
      target: TARGET,
    };
    const row = (p: 'web' | 'worker', what: string) => ({
      scenario: `7b. RSS of the ${p} process: ${what}`,
      flightdeck: `after ${raw[p].afterMB} MB (peak ${raw[p].peakMB} MB); JS heap ${raw[p].heapBeforeMB} → ${raw[p].heapAfterMB} MB`,
      baseline: `after warm-up: ${raw[p].beforeMB} MB`,
      ratio: pctText(change(p)),
      target: '±10%',
      met:
        Math.abs(change(p)) <= TARGET &&
        (p === 'web' ? failedCommands === 0 && refusedNotifications === 0 : raw.visibleAlerts === ALERTS),
    });
    return {
      id: 'rss',
      raw,
      rows: [
        row('web', `20,000 /deploy status acked, 5,000 alerts posted (${loadSeconds} s)`),
        row('worker', '20,000 answered through response_url, 5,000 alerts handled and posted'),
      ],
    };
  } finally {
    for (const q of queues) await q.close().catch(() => {});
    await stack.stop();
  }
}
