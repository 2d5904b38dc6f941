/**
 * Scenario 6: (a) 2 web + 2 worker processes vs 1 + 1 on the same Redis: slash commands per second
 * at saturation (acked and answered) and p99 ack; (b) a config of 50 services × 3 environments vs
 * the test suite's 2 × 2: start-up time and `/traffic status` latency.
 */

import type { TestConfig } from '../../test/helpers/config.js';
import { type FlightdeckProcess, SIGNING_SECRET } from '../../test/helpers/flightdeck-process.js';
import { waitFor } from '../../test/helpers/ports.js';
import { TestStack } from '../../test/helpers/stack.js';
import { SlackDriver } from '../../tools/slack-emulator/driver.js';
import { ms, type ScenarioResult, times } from '../lib/result.js';
import { inBatches, median, pct, round } from '../lib/stats.js';

const COMMANDS = 4_000;
const CONCURRENCY = 200;

/** Commands spread round-robin over the web replicas, as a load balancer would; all answered. */
async function saturate(stack: TestStack, webs: FlightdeckProcess[]) {
  const drivers = webs.map((a) => new SlackDriver(stack.emulator, a.url, SIGNING_SECRET));
  const answered = () => stack.emulator.ephemerals.filter((e) => e.via === 'response_url').length;
  const before = answered();
  const t0 = performance.now();
  const acks = await inBatches(COMMANDS, CONCURRENCY, (i) =>
    (drivers[i % drivers.length] as SlackDriver).command('/deploy', 'status'),
  );
  const ackedMs = performance.now() - t0;
  await waitFor(() => answered() - before >= COMMANDS, {
    timeoutMs: 120_000,
    intervalMs: 50,
    what: 'all answers',
  });
  const doneMs = performance.now() - t0;
  const lat = acks.map((a) => a.ms);
  return {
    ackedPerSec: round(COMMANDS / (ackedMs / 1000), 0),
    answeredPerSec: round(COMMANDS / (doneMs / 1000), 0),
    p50Ms: round(median(lat), 1),
    p99Ms: round(pct(lat, 99), 1),
    failed: acks.filter((a) => a.status !== 200 || a.timedOut).length,
  };
}

async function replicas(): Promise<{
  one: Awaited<ReturnType<typeof saturate>>;
  two: Awaited<ReturnType<typeof saturate>>;
}> {
  const stack = await new TestStack({ prefix: 'fdbenchsc', basePort: 30500 }).start({
    roles: ['web', 'worker'],
  });
  const webs = [stack.apps[0] as FlightdeckProcess];
  try {
    stack.emulator.rateLimits = false; // response_url has no rate limit; keep the Web API out of it
    await saturate(stack, webs); // warm-up
    const one = await saturate(stack, webs);
    webs.push(await stack.addApp('web'));
    await stack.addApp('worker');
    await saturate(stack, webs); // warm-up of the new replicas
    const two = await saturate(stack, webs);
    return { one, two };
  } finally {
    await stack.stop();
  }
}

/** 50 services in each of 3 environments (addresses only: /traffic status reads flightdeck's state). */
function fiftyByThree(cfg: TestConfig): void {
  const envs: TestConfig['environments'] = {};
  let port = 30600;
  for (const env of ['staging', 'canary', 'production']) {
    const services: Record<string, (typeof cfg.environments)[string]['services'][string]> = {};
    for (let i = 1; i <= 50; i++) {
      const name = `svc-${String(i).padStart(2, '0')}`;
      services[name] = {
        image: 'flightdeck/testapp',
        port: 8080,
        healthPath: '/health',
        blue: { swarmService: `fdbenchcf-${env}-${name}-blue`, address: `127.0.0.1:${port++}` },
        green: { swarmService: `fdbenchcf-${env}-${name}-green`, address: `127.0.0.1:${port++}` },
      };
    }
    envs[env] = { deployers: ['*'], services };
  }
  cfg.environments = envs;
}

async function configSize(configure?: (cfg: TestConfig) => void) {
  const stack = await new TestStack({ prefix: 'fdbenchcf', basePort: 30600 }).start({ roles: [], configure });
  const startMs: number[] = [];
  const statusMs: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const app = await stack.addApp('all'); // spawn → config loaded → nginx rendered → /healthz
      startMs.push(performance.now() - t0);
      const driver = new SlackDriver(stack.emulator, app.url, SIGNING_SECRET);
      for (let k = 0; k < 5; k++) {
        const seen = stack.emulator.ephemeralsFor('U0DEV').length;
        const sent = await driver.command('/traffic', 'status');
        const t1 = performance.now() - sent.ms;
        await stack.answerTo('U0DEV', seen, /blue/);
        statusMs.push(performance.now() - t1);
      }
      await app.destroy();
      stack.apps.pop();
    }
  } finally {
    await stack.stop();
  }
  return {
    startMs: round(median(startMs), 0),
    statusMs: round(median(statusMs), 1),
    statusP95Ms: round(pct(statusMs, 95), 1),
  };
}

export async function scale(): Promise<ScenarioResult> {
  const { one, two } = await replicas();
  const small = await configSize();
  const large = await configSize(fiftyByThree);
  const raw = {
    commands: COMMANDS,
    concurrency: CONCURRENCY,
    oneWebOneWorker: one,
    twoWebTwoWorker: two,
    throughputRatio: round(two.answeredPerSec / one.answeredPerSec),
    p99Ratio: round(two.p99Ms / one.p99Ms),
    config2x2: small,
    config50x3: large,
    startRatio: round(large.startMs / small.startMs),
    statusRatio: round(large.statusMs / small.statusMs),
  };
  return {
    id: 'scale',
    raw,
    rows: [
      {
        scenario: `6a. Scale: ${COMMANDS.toLocaleString('en')} /deploy status at ${CONCURRENCY} concurrent, 2 web + 2 worker on one Redis`,
        flightdeck: `${two.answeredPerSec} answered/s (${two.ackedPerSec} acked/s), ack p99 ${ms(two.p99Ms)}`,
        baseline: `1 web + 1 worker: ${one.answeredPerSec} answered/s (${one.ackedPerSec} acked/s), ack p99 ${ms(one.p99Ms)}`,
        ratio: `throughput ${times(raw.throughputRatio)}, p99 ${times(raw.p99Ratio)}`,
        target: 'measure (2 cores: no gain expected)',
      },
      {
        scenario:
          '6b. Config of 50 services × 3 environments: start-up (spawn → serving) and `/traffic status`',
        flightdeck: `start ${ms(large.startMs)}; status ${ms(large.statusMs)} (p95 ${ms(large.statusP95Ms)})`,
        baseline: `2 services × 2 environments: start ${ms(small.startMs)}; status ${ms(small.statusMs)}`,
        ratio: `start ${times(raw.startRatio)}, status ${times(raw.statusRatio)}`,
        target: 'measure',
      },
    ],
  };
}
