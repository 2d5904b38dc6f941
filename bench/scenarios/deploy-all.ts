/**
 * Scenario 9: many services at once. `/deploy all` of 50 services in one environment (parallel,
 * zero soak) on the single-node Swarm, against one service's release measured the same way in
 * the same run: from the command until every service serves the new colour through nginx (20
 * fresh requests in a row each). Also: peak RSS of the flightdeck process in each phase (sampled
 * from /proc), Slack calls and 429s, top-level posts in the channel, and when the batch message
 * showed every release completed.
 *
 * FDBENCH_MANY_N sets the batch size (default 50); FDBENCH_MANY_DRIVER=lua uses the Lua nginx
 * driver; FDBENCH_KEEP=1 keeps the Swarm services for the next run (which reuses them).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { type Release, TERMINAL } from '../../src/releases/schema.js';
import { LUA_MODULES } from '../../test/helpers/nginx-server.js';
import { waitFor } from '../../test/helpers/ports.js';
import { releaseIds, releases, waitRelease } from '../../test/helpers/release.js';
import { TestStack } from '../../test/helpers/stack.js';
import { createService, docker, removeServicesAndWait, waitServing } from '../../test/helpers/swarm.js';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { cpuByProcess } from '../lib/cpu.js';
import { ms, type ScenarioResult, times } from '../lib/result.js';
import { untilServing } from '../lib/serving.js';
import { round, sleep } from '../lib/stats.js';

const run = promisify(execFile);
const N = Number(process.env.FDBENCH_MANY_N ?? 50);
const DRIVER = process.env.FDBENCH_MANY_DRIVER === 'lua' ? 'lua' : 'reload';
const KEEP = process.env.FDBENCH_KEEP === '1';
const BASE = 36000;
const PREFIX = 'fdbenchma';
const CHANNEL = 'C0RELEASES';
/** Both phases poll nginx alike; misses wait this long so 50 pollers leave flightdeck its CPU. */
const POLL = { pauseMs: 200 };

type Svc = {
  image: string;
  port: number;
  healthPath: string;
  blue: { swarmService: string; address: string };
  green: { swarmService: string; address: string };
};
const svc = (env: string, name: string, port: number): Svc => ({
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: `${PREFIX}-${env}-${name}-blue`, address: `127.0.0.1:${port}` },
  green: { swarmService: `${PREFIX}-${env}-${name}-green`, address: `127.0.0.1:${port + 1}` },
});
const names = Array.from({ length: N }, (_, i) => `svc-${String(i + 1).padStart(2, '0')}`);
const many = Object.fromEntries(names.map((n, i) => [n, svc('many', n, BASE + 2 * i)]));
const solo = svc('solo', 'solo', BASE + 198);

/** Resident set of a process now (kB), from /proc. */
function rssKb(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Samples RSS every 100 ms until stopped; resolves to the peak (MB). */
function peakRss(pid: number | undefined): { stop: () => number } {
  let peak = rssKb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssKb(pid));
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return round(Math.max(peak, rssKb(pid)) / 1024, 0);
    },
  };
}

/** Every service's two colours running the test image; ones left by an earlier run are reused. */
async function ensureServices(all: Svc[]): Promise<{ names: string[]; created: number; reused: number }> {
  const specs = all.flatMap((s) =>
    (['blue', 'green'] as const).map((colour) => ({
      name: s[colour].swarmService,
      port: Number(s[colour].address.split(':')[1]),
      colour,
    })),
  );
  let created = 0;
  let reused = 0;
  // Ten at a time: 100 services at once make dockerd on two cores time out.
  for (let i = 0; i < specs.length; i += 10) {
    await Promise.all(
      specs.slice(i, i + 10).map(async (s) => {
        const ok = await fetch(`http://127.0.0.1:${s.port}/colour`, { signal: AbortSignal.timeout(1_000) })
          .then(async (r) => r.ok && (await r.text()).trim() === s.colour)
          .catch(() => false);
        const exists = await docker
          .getService(s.name)
          .inspect()
          .then(
            () => true,
            () => false,
          );
        if (ok && exists) {
          reused += 1;
          return;
        }
        await createService({ ...s, image: 'flightdeck/testapp:1.0.0' });
        created += 1;
        await waitServing(s.port, undefined, 180_000);
      }),
    );
  }
  return { names: specs.map((s) => s.name), created, reused };
}

/** The version the idle (green) colour does not run yet, so every update really replaces tasks. */
async function nextVersion(green: string): Promise<string> {
  const info = await docker.getService(green).inspect();
  return String(info.Spec.TaskTemplate.ContainerSpec.Image).includes(':1.1.0') ? '1.2.0' : '1.1.0';
}

/** `serving()`, unless one of the releases ends without completing first (then why, at once). */
async function servedUnlessFailed(
  stack: TestStack,
  ids: string[],
  serving: () => Promise<unknown>,
): Promise<void> {
  let settled = false;
  const watchers = ids.map((id) =>
    waitRelease(
      stack,
      id,
      (r) => settled || (TERMINAL.has(r.status) && r.status !== 'completed'),
      'not failed',
      900_000,
    ),
  );
  const failed = Promise.any(watchers).then((r) => {
    if (!settled) throw new Error(`${r.id} ${r.status.replace('_', ' ')}: ${r.outcome ?? ''}`);
  });
  try {
    await Promise.race([serving(), failed]);
  } finally {
    settled = true;
    await Promise.allSettled(watchers);
  }
}

/** "dockerd 15.5, flightdeck 9.3, …": the largest CPU consumers of a phase, in seconds. */
function cpuLine(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .filter(([, ms]) => ms >= 500)
    .map(([group, ms]) => `${group} ${round(ms / 1000, 1)}`)
    .join(', ');
}

function slackCounts(stack: TestStack, since: number) {
  const calls = stack.emulator.calls.filter((c) => c.at >= since);
  const by = (m: string) => calls.filter((c) => c.method === m).length;
  return {
    calls: calls.length,
    postMessage: by('chat.postMessage'),
    update: by('chat.update'),
    ratelimited: calls.filter((c) => c.status === 429).length,
  };
}

export async function deployAll(): Promise<ScenarioResult> {
  const stack = new TestStack({ prefix: PREFIX, basePort: BASE });
  if (DRIVER === 'lua') stack.nginx.modules = LUA_MODULES;
  await stack.start({
    configure: (cfg) => {
      cfg.release.soak = ['0s', '0s', '0s'];
      if (DRIVER === 'lua') Object.assign(cfg.nginx, { driver: 'lua' });
      Object.assign(cfg, { checklists: { gateEnvironments: [] }, defaultEnvironment: 'many' });
      cfg.environments = {
        many: { deployers: ['*'], services: many },
        solo: { deployers: ['*'], services: { solo } },
      } as typeof cfg.environments;
    },
  });
  const app = stack.apps[0];
  // CPU by process in each phase: on two cores the batch is bound by the machine, not one process.
  const cpu = () =>
    cpuByProcess((pid) =>
      pid === app?.pid ? 'flightdeck' : pid === process.pid ? 'bench (emulator, pollers)' : undefined,
    );
  let serviceNames: string[] = [];
  try {
    const setupT0 = performance.now();
    const ensured = await ensureServices([solo, ...Object.values(many)]);
    serviceNames = ensured.names;
    const setupMs = performance.now() - setupT0;
    const url = (env: string, name: string) => `http://127.0.0.1:${stack.nginx.port}/${env}/${name}/colour`;

    // 1. One service, the baseline.
    const soloVersion = await nextVersion(solo.green.swarmService);
    const rss1 = peakRss(app?.pid);
    const cpu1 = cpu();
    const since1 = Date.now();
    let seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const sent1 = await stack.driver.command('/deploy', `solo ${soloVersion} to solo`);
    const t1 = performance.now() - sent1.ms;
    const [soloId] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
    await servedUnlessFailed(stack, [soloId as string], () =>
      untilServing(url('solo', 'solo'), 'green', POLL),
    );
    const singleMs = performance.now() - t1;
    const singleCpu = cpu1.stop();
    await waitRelease(stack, soloId as string, (r) => r.status === 'completed', 'solo completed');
    const singleRssMb = rss1.stop();
    const single = slackCounts(stack, since1);

    // 2. All at once.
    const version = await nextVersion(many['svc-01']?.green.swarmService as string);
    await sleep(1_000); // the solo release's last Slack calls out of the way
    const rssN = peakRss(app?.pid);
    const cpuN = cpu();
    const sinceN = Date.now();
    const topBefore = stack.emulator.messages.filter((m) => m.channel === CHANNEL && !m.threadTs).length;
    seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const sentN = await stack.driver.command('/deploy', `all ${version} to many`);
    const tN = performance.now() - sentN.ms;
    const ids = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
    const servedAt: number[] = [];
    await servedUnlessFailed(stack, ids, () =>
      Promise.all(
        names.map(async (n) => {
          await untilServing(url('many', n), 'green', POLL);
          servedAt.push(performance.now() - tN);
        }),
      ),
    );
    const batchMs = performance.now() - tN;
    const batchCpu = cpuN.stop();
    const done: Release[] = await Promise.all(
      ids.map((id) => waitRelease(stack, id, (r) => r.status === 'completed', 'completed', 300_000)),
    );
    const batchRssMb = rssN.stop();
    // The batch message: the channel's one new top-level post, showing every release completed.
    let batchText = '';
    const shownMs = await waitFor(
      () => {
        const top = stack.emulator.messages
          .filter((m) => m.channel === CHANNEL && !m.threadTs)
          .slice(topBefore);
        batchText = top[0] ? renderBlocks(top[0].blocks, top[0].text) : '';
        return batchText.includes(`${N}/${N} completed`) && batchText.startsWith('✅')
          ? performance.now() - tN
          : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 200, what: 'the batch message to show every release completed' },
    ).catch(() => Number.NaN);
    const batchSlack = slackCounts(stack, sinceN);
    const topPosts =
      stack.emulator.messages.filter((m) => m.channel === CHANNEL && !m.threadTs).length - topBefore;
    const threadPosts = stack.emulator.messages.filter(
      (m) => m.channel === CHANNEL && m.threadTs && Number(m.ts) * 1000 >= sinceN - 1_000,
    ).length;
    // Every member's own message ends on its final state too (each refreshes within memberRefreshMs).
    const membersFinal = await waitFor(
      async () => {
        const rs = await Promise.all(ids.map((id) => releases(stack).get(id)));
        const texts = rs.map((r) => {
          const m = stack.emulator.messages.find(
            (x) => x.channel === r?.message?.channel && x.ts === r?.message?.ts,
          );
          return m ? renderBlocks(m.blocks, m.text) : '';
        });
        return texts.every((t) => t.includes('✅ Released')) ? performance.now() - tN : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500, what: "every member's message final" },
    ).catch(() => Number.NaN);
    const finalSlack = slackCounts(stack, sinceN);

    // 3. Swarm's own time for the same updates, by hand (the idle blue colours now): one service,
    // then all at once, each `docker service update` waiting for convergence as the CLI does.
    const handUpdate = (name: string, v: string) =>
      run('docker', [
        'service',
        'update',
        '--quiet',
        '--no-resolve-image',
        '--image',
        `flightdeck/testapp:${v}`,
        name,
      ]);
    const blueVersion = await nextVersion(solo.blue.swarmService);
    const h1 = performance.now();
    const cpuH1 = cpu();
    await handUpdate(solo.blue.swarmService, blueVersion);
    const handSingleMs = performance.now() - h1;
    const handSingleCpu = cpuH1.stop();
    const hN = performance.now();
    const cpuHN = cpu();
    await Promise.all(names.map((n) => handUpdate(many[n]?.blue.swarmService as string, blueVersion)));
    const handBatchMs = performance.now() - hN;
    const handBatchCpu = cpuHN.stop();

    const stepKinds = (r: Release, kind: string) =>
      r.steps
        .filter((s) => s.kind === kind && s.startedAt && s.finishedAt)
        .map((s) => (s.finishedAt ?? 0) - (s.startedAt ?? 0));
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const avg = (xs: number[]) => (xs.length ? sum(xs) / xs.length : 0);
    const raw = {
      services: N,
      driver: DRIVER,
      version,
      setup: { ms: round(setupMs, 0), created: ensured.created, reused: ensured.reused },
      singleMs: round(singleMs, 0),
      batchMs: round(batchMs, 0),
      ratio: round(batchMs / singleMs),
      /** Swarm alone: `docker service update` of one service, and of all of them at once. */
      swarmByHand: {
        singleMs: round(handSingleMs, 0),
        batchMs: round(handBatchMs, 0),
        ratio: round(handBatchMs / handSingleMs),
      },
      /** CPU ms by process in each phase (the docker CLI's own processes are "other" by hand). */
      cpuMs: { single: singleCpu, batch: batchCpu, handSingle: handSingleCpu, handBatch: handBatchCpu },
      firstServedMs: round(Math.min(...servedAt), 0),
      medianServedMs: round([...servedAt].sort((a, b) => a - b)[Math.floor(servedAt.length / 2)] ?? 0, 0),
      peakRssMb: { single: singleRssMb, batch: batchRssMb },
      slack: { single, batchUntilServed: batchSlack, batchUntilMembersFinal: finalSlack },
      topLevelPosts: topPosts,
      threadPosts,
      batchMessageCompletedMs: round(shownMs, 0),
      membersFinalMs: round(membersFinal, 0),
      batchMessage: batchText.split('\n').slice(0, 3).join('\n'),
      /** Mean time per step kind across the batch (ms): where the batch's time goes. */
      meanStepMs: Object.fromEntries(
        ['update', 'converge', 'health', 'shift', 'finalize'].map((k) => [
          k,
          round(avg(done.flatMap((r) => stepKinds(r, k))), 0),
        ]),
      ),
      requestToFirstStepMs: round(
        avg(done.map((r) => (r.steps[0]?.startedAt ?? r.createdAt) - r.createdAt)),
        0,
      ),
    };
    // Other scenarios run beside this one may overwrite partial.json: the figures go to the log too.
    process.stdout.write(`[bench] many raw ${JSON.stringify(raw)}\n`);
    return {
      id: 'many',
      raw,
      rows: [
        {
          scenario: `9. /deploy all of ${N} services (parallel, zero soak, \`${DRIVER}\` driver) → every service serving the new colour`,
          flightdeck: `${ms(raw.batchMs)}; peak RSS ${batchRssMb} MB; ${finalSlack.calls} Slack calls, ${finalSlack.ratelimited} × 429; ${topPosts} channel post${topPosts === 1 ? '' : 's'}; batch message ${Number.isNaN(shownMs) ? 'did NOT show' : 'showed'} ${N}/${N} completed`,
          baseline: `one service's release: ${ms(raw.singleMs)}; peak RSS ${singleRssMb} MB`,
          ratio: times(raw.ratio),
          target: '≤ ×3, 0 × 429',
          met: raw.ratio <= 3 && finalSlack.ratelimited === 0 && !Number.isNaN(shownMs),
        },
        {
          scenario: `9b. Swarm alone: \`docker service update\` of the ${N} idle colours at once, by hand`,
          flightdeck: `${ms(raw.swarmByHand.batchMs)} (flightdeck's batch: ${ms(raw.batchMs)}, ×${round(raw.batchMs / raw.swarmByHand.batchMs)} of it)`,
          baseline: `one service by hand: ${ms(raw.swarmByHand.singleMs)}`,
          ratio: times(raw.swarmByHand.ratio),
          target: "context: Swarm's own parallelism on one node",
        },
        {
          scenario: `9c. CPU while the ${N} updates run (s, by process; the machine has 2 cores)`,
          flightdeck: cpuLine(raw.cpuMs.batch),
          baseline: `by hand: ${cpuLine(raw.cpuMs.handBatch)}`,
          ratio: `dockerd ×${round((raw.cpuMs.batch.dockerd ?? 0) / (raw.cpuMs.handBatch.dockerd || 1))}`,
          target: 'context: what the machine spends its time on',
        },
      ],
    };
  } finally {
    await stack.stop();
    if (!KEEP) await removeServicesAndWait(serviceNames);
  }
}
