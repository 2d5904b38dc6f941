/**
 * Scenario 5: a release with zero soak (update the idle colour, wait for Swarm, health check,
 * 10 → 50 → 100) vs what a script does by hand to the same kind of services in the same run:
 * `docker service update` (which waits for convergence), then one nginx weight switch.
 * Both timed from the command to nginx serving the new colour to 20 requests in a row.
 * Three release policies: the test suite's (Swarm polled every 500 ms, 2 health checks 300 ms
 * apart) in staging; a tight one (100 ms, 1 health check) in production, which isolates the
 * machinery (jobs, locks, state, three nginx applies) from the policy's waits; and the config's
 * built-in default (polled every 2 s, 3 health checks 2 s apart) in a third environment, `qa`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Release } from '../../src/releases/schema.js';
import { freePort } from '../../test/helpers/ports.js';
import { releaseIds, waitRelease } from '../../test/helpers/release.js';
import { TestStack } from '../../test/helpers/stack.js';
import { createService, removeServicesAndWait, waitServing } from '../../test/helpers/swarm.js';
import { handRunConf } from '../lib/hand-run.js';
import { ms, type ScenarioResult, times } from '../lib/result.js';
import { untilServing } from '../lib/serving.js';
import { median, round } from '../lib/stats.js';

const run = promisify(execFile);
const VERSIONS = ['1.1.0', '1.2.0', '2.0.0'];
const RAW_PORT = 30480;
const QA_PORT = 30490;
/** Misses are retried after 20 ms: flightdeck shares the CPU with this poller. */
const GENTLY = { pauseMs: 20 };

const rawUpstream = (port: number, live: 'blue' | 'green') =>
  handRunConf({
    upstream: 'fdbench_raw',
    listenPort: port,
    servers: (['blue', 'green'] as const).map((colour, i) => ({
      colour,
      address: `127.0.0.1:${RAW_PORT + i}`,
      weight: colour === live ? 100 : 0,
    })),
    nextUpstream: 'off',
  });

export async function orchestrationOverhead(): Promise<ScenarioResult> {
  const stack = await new TestStack({ prefix: 'fdbenchoo', basePort: 30400 }).start({
    configure: (cfg) => {
      cfg.release.soak = ['0s', '0s', '0s'];
      Object.assign(cfg.environments.production as object, {
        requireApproval: false,
        release: { pollInterval: '100ms', healthCheck: { attempts: 1 } },
      });
      // src/config/schema.ts DEFAULT_RELEASE_POLICY's waits, written out (the suite's config sets its own).
      const prod = cfg.environments.production?.services.api;
      if (prod)
        cfg.environments.qa = {
          deployers: ['*'],
          release: {
            convergeTimeout: '5m',
            pollInterval: '2s',
            healthCheck: { attempts: 3, interval: '2s', timeout: '2s' },
          },
          services: {
            api: {
              ...prod,
              blue: { swarmService: 'fdbenchoo-qa-api-blue', address: `127.0.0.1:${QA_PORT}` },
              green: { swarmService: 'fdbenchoo-qa-api-green', address: `127.0.0.1:${QA_PORT + 1}` },
            },
          },
        };
      Object.assign(cfg, { checklists: { gateEnvironments: [] } });
    },
  });
  const api = stack.config.environments.staging?.services.api;
  const prodApi = stack.config.environments.production?.services.api;
  const qaApi = stack.config.environments.qa?.services.api;
  if (!api || !prodApi || !qaApi) throw new Error('no api');
  const names = [
    api.blue.swarmService,
    api.green.swarmService,
    prodApi.blue.swarmService,
    prodApi.green.swarmService,
    'fdbenchoo-raw-blue',
    'fdbenchoo-raw-green',
    qaApi.blue.swarmService,
    qaApi.green.swarmService,
  ];
  const port = (address: string) => Number(address.split(':')[1]);
  const rawPort = await freePort();
  const rawFile = join(stack.nginx.prefix, 'conf.d', 'fdbench-raw.conf');
  const nginx = (argv: string[]) => run(argv[0] as string, argv.slice(1));
  const ours: number[] = [];
  const tight: number[] = [];
  const builtIn: number[] = [];
  const raw: number[] = [];
  const steps: Release[] = [];
  try {
    await Promise.all(
      [
        { name: names[0] as string, port: port(api.blue.address), colour: 'blue' },
        { name: names[1] as string, port: port(api.green.address), colour: 'green' },
        { name: names[2] as string, port: port(prodApi.blue.address), colour: 'blue' },
        { name: names[3] as string, port: port(prodApi.green.address), colour: 'green' },
        { name: names[4] as string, port: RAW_PORT, colour: 'blue' },
        { name: names[5] as string, port: RAW_PORT + 1, colour: 'green' },
        { name: names[6] as string, port: QA_PORT, colour: 'blue' },
        { name: names[7] as string, port: QA_PORT + 1, colour: 'green' },
      ].map(async (s) => {
        await createService({ ...s, image: 'flightdeck/testapp:1.0.0' });
        await waitServing(s.port);
      }),
    );
    writeFileSync(rawFile, rawUpstream(rawPort, 'blue'));
    await nginx(stack.nginx.testCommand);
    await nginx(stack.nginx.reloadCommand);
    const rawUrl = `http://127.0.0.1:${rawPort}/colour`;
    await untilServing(rawUrl, 'blue', GENTLY);

    let live: 'blue' | 'green' = 'blue';
    for (const version of VERSIONS) {
      const next: 'blue' | 'green' = live === 'blue' ? 'green' : 'blue';
      // flightdeck: /deploy, then the release runs by itself (zero soak); each policy.
      for (const [env, into] of [
        ['staging', ours],
        ['production', tight],
        ['qa', builtIn],
      ] as const) {
        const seen = stack.emulator.ephemeralsFor('U0DEV').length;
        const sent = await stack.driver.command('/deploy', `api ${version} to ${env}`);
        const t0 = performance.now() - sent.ms;
        await untilServing(`http://127.0.0.1:${stack.nginx.port}/${env}/api/colour`, next, GENTLY);
        into.push(performance.now() - t0);
        const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
        steps.push(await waitRelease(stack, id as string, (r) => r.status === 'completed', 'completed'));
      }

      // By hand: update the idle colour and wait as the CLI does, then one weight switch.
      const t1 = performance.now();
      await run('docker', [
        'service',
        'update',
        '--quiet',
        '--no-resolve-image',
        '--image',
        `flightdeck/testapp:${version}`,
        `fdbenchoo-raw-${next}`,
      ]);
      writeFileSync(rawFile, rawUpstream(rawPort, next));
      await nginx(stack.nginx.testCommand);
      await nginx(stack.nginx.reloadCommand);
      await untilServing(rawUrl, next, GENTLY);
      raw.push(performance.now() - t1);
      live = next;
    }
  } finally {
    await stack.stop();
    await removeServicesAndWait(names);
  }
  const r = {
    flightdeckMs: round(median(ours), 0),
    tightMs: round(median(tight), 0),
    builtInMs: round(median(builtIn), 0),
    rawMs: round(median(raw), 0),
    ratio: round(median(ours) / median(raw)),
    tightRatio: round(median(tight) / median(raw)),
    builtInRatio: round(median(builtIn) / median(raw)),
    runs: ours.map((x) => round(x, 0)),
    tightRuns: tight.map((x) => round(x, 0)),
    builtInRuns: builtIn.map((x) => round(x, 0)),
    rawRuns: raw.map((x) => round(x, 0)),
    policies: {
      staging: { steps: [10, 50, 100], soak: '0s', pollInterval: '500ms', healthCheck: '2 × 300 ms' },
      production: { steps: [10, 50, 100], soak: '0s', pollInterval: '100ms', healthCheck: '1' },
      qa: { steps: [10, 50, 100], soak: '0s', pollInterval: '2s', healthCheck: '3 × 2 s' },
    },
    /** Median time per step kind (ms), per environment: where a release spends its time. */
    stepMs: stepBreakdown(steps),
    /** Median time between one step's end and the next one's start (ms), per environment: the machinery's own share. */
    gapMs: gapBreakdown(steps),
  };
  return {
    id: 'orchestration',
    raw: r,
    rows: [
      {
        scenario: `5. Orchestration: /deploy with zero soak → new colour serving 100% (median of ${ours.length})`,
        flightdeck: ms(r.flightdeckMs),
        baseline: `docker service update + one nginx switch by hand: ${ms(r.rawMs)}`,
        ratio: times(r.ratio),
        target: '≤ ×1.1',
        met: r.ratio <= 1.1,
      },
      {
        scenario: '5b. The same, Swarm polled every 100 ms and one health check',
        flightdeck: ms(r.tightMs),
        baseline: `by hand: ${ms(r.rawMs)}`,
        ratio: times(r.tightRatio),
        target: '≤ ×1.1',
        met: r.tightRatio <= 1.1,
      },
      {
        scenario:
          '5c. The same with the built-in default policy (polled every 2 s, 3 health checks 2 s apart)',
        flightdeck: ms(r.builtInMs),
        baseline: `by hand: ${ms(r.rawMs)}`,
        ratio: times(r.builtInRatio),
        target: 'none: bounded by the spaced health checks (docs/benchmarks.md § 5)',
        met: true,
      },
    ],
  };
}

function stepBreakdown(releases: Release[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number[]>> = {};
  const note = (env: string, key: string, ms: number) => {
    out[env] = out[env] ?? {};
    const byKey = out[env];
    byKey[key] = [...(byKey[key] ?? []), ms];
  };
  for (const r of releases) {
    const first = r.steps[0]?.startedAt;
    if (first !== undefined) note(r.environment, 'request → first step', first - r.createdAt);
    for (const s of r.steps) {
      if (s.startedAt === undefined || s.finishedAt === undefined) continue;
      note(
        r.environment,
        s.percent !== undefined ? `${s.kind} ${s.percent}%` : s.kind,
        s.finishedAt - s.startedAt,
      );
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([env, kinds]) => [
      env,
      Object.fromEntries(Object.entries(kinds).map(([k, xs]) => [k, round(median(xs), 0)])),
    ]),
  );
}

function gapBreakdown(releases: Release[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number[]>> = {};
  for (const r of releases) {
    const byKey = out[r.environment] ?? {};
    out[r.environment] = byKey;
    let total = 0;
    for (let i = 1; i < r.steps.length; i++) {
      const before = r.steps[i - 1];
      const s = r.steps[i];
      if (before?.finishedAt === undefined || s?.startedAt === undefined) continue;
      const gap = s.startedAt - before.finishedAt;
      total += gap;
      const key = `${before.kind} → ${s.kind}`;
      byKey[key] = [...(byKey[key] ?? []), gap];
    }
    byKey.total = [...(byKey.total ?? []), total];
  }
  return Object.fromEntries(
    Object.entries(out).map(([env, kinds]) => [
      env,
      Object.fromEntries(Object.entries(kinds).map(([k, xs]) => [k, round(median(xs), 0)])),
    ]),
  );
}
