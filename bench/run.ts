/**
 * `npm run bench`: flightdeck's speed, each figure a ratio against a baseline measured in the same
 * run (the machine is noisy). Writes bench/results/latest.md and latest.json.
 * Scenarios so far: slash-command ack latency vs a bare Bolt app; rollback time vs a raw switch.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderUpstreams } from '../src/integrations/nginx.js';
import { SlackDriver } from '../src/slack-emulator/driver.js';
import { initialUpstreams } from '../test/helpers/config.js';
import { SIGNING_SECRET } from '../test/helpers/flightdeck-process.js';
import { freePort, waitFor } from '../test/helpers/ports.js';
import { releaseIds, soakingAt, waitRelease } from '../test/helpers/release.js';
import { TestStack } from '../test/helpers/stack.js';
import { createColourServices, removeServicesAndWait } from '../test/helpers/swarm.js';

const ROOT = resolve(import.meta.dirname, '..');
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const median = (xs: number[]) => pct(xs, 50);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function inBatches<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** Scenario 1: 2,000 signed slash commands at 100 concurrent, flightdeck vs a Bolt app that only acks. */
async function ackLatency() {
  // The web role alone, as web replicas run: the ack path (parse, validate, authorise, ack, enqueue)
  // without workers answering on the same event loop, and without the answers landing in this
  // process (the emulator lives here, next to the driver that measures).
  const stack = await new TestStack({ prefix: 'fdbenchack', basePort: 29300 }).start({ roles: ['web'] });
  const port = await freePort();
  const bare: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/bare-bolt.ts')], {
    env: {
      ...process.env,
      PORT: String(port),
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: stack.emulator.apiUrl,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${port}/slack/events`, { method: 'POST' })).status === 401,
    {
      what: 'the bare Bolt app',
    },
  );
  stack.emulator.rateLimits = false; // the acks are measured, not the answers
  const fd = new SlackDriver(stack.emulator, stack.apps[0]?.url ?? '', SIGNING_SECRET);
  const base = new SlackDriver(stack.emulator, `http://127.0.0.1:${port}`, SIGNING_SECRET);
  const run = (d: SlackDriver, n: number) => inBatches(n, 100, () => d.command('/deploy', 'status'));
  await run(fd, 100);
  await run(base, 100); // warm-up
  const ours: number[] = [];
  const theirs: number[] = [];
  let timeouts = 0;
  // Side by side, in alternating rounds, so both see the same machine.
  for (let round = 0; round < 4; round++) {
    for (const [d, into] of [
      [fd, ours],
      [base, theirs],
    ] as const) {
      const acks = await run(d, 500);
      for (const a of acks) {
        if (a.timedOut || a.status !== 200) timeouts += 1;
        into.push(a.ms);
      }
    }
  }
  bare.kill('SIGTERM');
  await stack.stop();
  return {
    flightdeck: { p50: round(median(ours)), p99: round(pct(ours, 99)), n: ours.length },
    bareBolt: { p50: round(median(theirs)), p99: round(pct(theirs, 99)), n: theirs.length },
    p99Ratio: round(pct(ours, 99) / pct(theirs, 99)),
    overSlackDeadline: timeouts,
  };
}

/** Scenario 4: /rollback (from the ack) until nginx serves 100% on the stable colour, vs writing and reloading by hand. */
async function rollbackTime() {
  const stack = await new TestStack({ prefix: 'fdbenchrb', basePort: 29400 }).start();
  const api = stack.config.environments.staging?.services.api;
  if (!api) throw new Error('no api');
  const names = await createColourServices([api]);
  const url = `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;
  /** Until 20 requests in a row answer blue. */
  const allBlue = async () => {
    let streak = 0;
    while (streak < 20) {
      // Fresh connections: an idle keep-alive connection can be reset by a reload (a known nginx race).
      const body = await fetch(url, { headers: { connection: 'close' } })
        .then((r) => r.text())
        .then(
          (t) => t.trim(),
          () => 'error',
        );
      streak = body === 'blue' ? streak + 1 : 0;
    }
  };
  const ours: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < 3; i++) {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.1.0');
    const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
    await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
    const sent = await stack.driver.command('/rollback', 'api');
    const started = performance.now() - sent.ms; // from the moment the command left "Slack"
    await allBlue();
    ours.push(performance.now() - started);
    await waitRelease(stack, id as string, (r) => r.status === 'rolled_back', 'rolled back');
    await waitFor(
      async () =>
        (await fetch(`http://${api.green.address}/version`).then((r) => r.text())).trim() === '1.0.0',
      {
        timeoutMs: 60_000,
      },
    );

    // The same switch by hand: render 90/10, reload, then time the move to 100% blue.
    const ups = (green: number) =>
      initialUpstreams(stack.config).replace(
        /upstream flightdeck_staging_api \{[^}]*\}/,
        renderUpstreams(
          [
            {
              name: 'flightdeck_staging_api',
              servers: [
                { colour: 'blue', address: api.blue.address, weight: 100 - green },
                { colour: 'green', address: api.green.address, weight: green },
              ],
            },
          ],
          'raw',
        )
          .replace(/^#.*\n/gm, '')
          .trim(),
      );
    writeFileSync(stack.nginx.upstreamFile, ups(90));
    execFileSync(stack.nginx.reloadCommand[0] as string, stack.nginx.reloadCommand.slice(1));
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    writeFileSync(stack.nginx.upstreamFile, ups(0));
    execFileSync(stack.nginx.testCommand[0] as string, stack.nginx.testCommand.slice(1));
    execFileSync(stack.nginx.reloadCommand[0] as string, stack.nginx.reloadCommand.slice(1));
    await allBlue();
    raw.push(performance.now() - t0);
    await stack.apps[0]?.stop(); // flightdeck re-renders its own file when it starts again
    await stack.apps[0]?.start();
  }
  await stack.stop();
  await removeServicesAndWait(names);
  return {
    flightdeckMs: round(median(ours), 1),
    rawSwitchMs: round(median(raw), 1),
    ratio: round(median(ours) / median(raw)),
    runs: ours.length,
  };
}

const started = Date.now();
const ack = await ackLatency();
const rollback = await rollbackTime();
const results = {
  at: new Date().toISOString(),
  seconds: Math.round((Date.now() - started) / 1000),
  ack,
  rollback,
};
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/latest.json'), `${JSON.stringify(results, null, 2)}\n`);
const table = [
  `# flightdeck benchmarks (${results.at}, ${results.seconds} s)`,
  '',
  '| Scenario | flightdeck | baseline (same run) | ratio | target |',
  '|---|---|---|---|---|',
  `| Slash-command ack, 2,000 at 100 concurrent | p50 ${ack.flightdeck.p50} ms, p99 ${ack.flightdeck.p99} ms | bare Bolt app: p50 ${ack.bareBolt.p50} ms, p99 ${ack.bareBolt.p99} ms | p99 ×${ack.p99Ratio} | p99 ≤ ×1.5, all far under 3 s (${ack.overSlackDeadline} over) |`,
  `| Rollback: command sent → nginx serving 100% stable (median of ${rollback.runs}) | ${rollback.flightdeckMs} ms | write + nginx -t + reload by hand: ${rollback.rawSwitchMs} ms | ×${rollback.ratio} | ≤ ×2 |`,
  '',
].join('\n');
writeFileSync(join(ROOT, 'bench/results/latest.md'), table);
process.stdout.write(`${table}\n`);
process.exit(0);
