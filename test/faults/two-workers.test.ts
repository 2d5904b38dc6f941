import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Release } from '../../src/releases/schema.js';
import { ServiceStateStore } from '../../src/releases/service-state-store.js';
import { other } from '../../src/releases/weights.js';
import type { FlightdeckProcess } from '../helpers/flightdeck-process.js';
import { waitFor } from '../helpers/ports.js';
import { progressText, releaseIds, releases, waitRelease } from '../helpers/release.js';
import { TestStack } from '../helpers/stack.js';
import {
  createStagingColourServices,
  previousImage,
  removeServicesAndWait,
  serviceImage,
} from '../helpers/swarm.js';

/**
 * Issue #7, two replicas: one web process and two workers on one Redis. One worker is SIGKILLed in
 * the middle of a release (its own failpoint, so whichever worker runs that step dies); the other
 * worker takes the release over once the dead one's BullMQ lock expires and finishes it.
 */
const stack = new TestStack({ prefix: 'fdrep', basePort: 29550 });
stack.nginx.logLevel = 'notice'; // nginx logs each reload, so a repeated weight change would be seen
const names: string[] = [];
const SERVICE = 'api';
const summary: string[] = [];

beforeAll(async () => {
  await stack.start({
    roles: ['web', 'worker', 'worker'],
    env: { FLIGHTDECK_FAILPOINTS: 'persisted:shift@50' },
    configure: (cfg) => {
      cfg.release.soak = ['1s', '1s', '1s'];
      // The survivor takes a dead worker's jobs over after 3 s instead of 5 s.
      cfg.jobs.lockDuration = '3s';
    },
  });
  names.push(...(await createStagingColourServices(stack)));
}, 240_000);

afterAll(async () => {
  console.log(['Two workers, one SIGKILLed mid-release:', ...summary].join('\n'));
  await stack.stop();
  await removeServicesAndWait(names);
});

const workers = () => stack.apps.slice(1) as FlightdeckProcess[];
const states = () => new ServiceStateStore(stack.client, stack.prefix);
const nginxUrl = () => `http://127.0.0.1:${stack.nginx.port}/staging/${SERVICE}/colour`;
const swarmName = (colour: 'blue' | 'green') =>
  stack.config.environments.staging?.services[SERVICE]?.[colour].swarmService as string;

const isDead = (p: FlightdeckProcess) =>
  Promise.race([p.exited().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 0))]);

/** The worker that died first; the other must still be alive. */
async function oneDies(): Promise<{ dead: FlightdeckProcess; alive: FlightdeckProcess }> {
  const [a, b] = workers() as [FlightdeckProcess, FlightdeckProcess];
  const dead = await Promise.race([
    a.exited().then(() => a),
    b.exited().then(() => b),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no worker died')), 90_000)),
  ]);
  const alive = dead === a ? b : a;
  expect(await isDead(alive)).toBe(false);
  return { dead, alive };
}

/** Completed releases counted by one process's own /metrics. */
async function completedBy(p: FlightdeckProcess): Promise<number> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const m = /flightdeck_releases_total\{environment="staging",outcome="completed"\} (\d+)/.exec(text);
  return Number(m?.[1] ?? 0);
}

/** Nginx answers for the service while `until` runs: every answer must come from a colour. */
async function probeWhile<T>(until: Promise<T>): Promise<{ result: T; ok: number; bad: number }> {
  let running = true;
  const counts = { ok: 0, bad: 0 };
  const loop = (async () => {
    while (running) {
      const body = await fetch(nginxUrl(), { headers: { connection: 'close' } })
        .then(async (r) => (r.ok ? (await r.text()).trim() : `HTTP ${r.status}`))
        .catch((err: Error) => err.message);
      if (body === 'blue' || body === 'green') counts.ok += 1;
      else counts.bad += 1;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return { result: await until, ...counts };
  } finally {
    running = false;
    await loop;
  }
}

/** A /deploy whose worker dies at the armed failpoint; the surviving worker must finish it. */
async function releaseSurvivingOneWorker(version: string, point: string): Promise<void> {
  const before = await states().get('staging', SERVICE);
  const to = other(before.live);
  const imageBefore = await serviceImage(swarmName(to));
  const reloadsBefore = stack.nginx.reloads();
  const seen = stack.emulator.ephemeralsFor('U0DEV').length;
  const started = Date.now();

  const run = (async () => {
    await stack.driver.command('/deploy', `${SERVICE} ${version}`);
    const { dead, alive } = await oneDies();
    const answer = await waitFor(
      () =>
        stack.emulator
          .ephemeralsFor('U0DEV')
          .slice(seen)
          .find((e) => e.via !== 'ack' && /🚀 `rel-/.test(e.text))?.text,
      { timeoutMs: 60_000, intervalMs: 100, what: 'the answer to /deploy' },
    );
    const [id] = releaseIds(answer);
    const r = await waitRelease(stack, id as string, (x) => x.status === 'completed', 'completed', 120_000);
    return { dead, alive, r };
  })();
  const { result, ok, bad } = await probeWhile(run);
  const { dead, alive, r } = result;

  // The dead worker stayed dead: the survivor did the rest, and its own metrics say so.
  expect(await isDead(dead)).toBe(true);
  expect(await isDead(alive)).toBe(false);
  expect(await completedBy(alive)).toBeGreaterThanOrEqual(1);
  // Every step once, one nginx reload per weight change, one Swarm update, the lock freed.
  const done = (s: Release['steps'][number]) => r.events.filter((e) => e.text.startsWith(`✓ ${s.label}: `));
  const repeated = r.steps.reduce((n, s) => n + Math.max(0, done(s).length - 1), 0);
  expect(r.steps.map((s) => done(s).length)).toEqual(r.steps.map(() => 1));
  const reloads = stack.nginx.reloads() - reloadsBefore;
  expect(reloads).toBe(3);
  expect(await serviceImage(swarmName(to))).toBe(`flightdeck/testapp:${version}`);
  expect(await previousImage(swarmName(to))).toBe(imageBefore);
  const after = await states().get('staging', SERVICE);
  expect(after.live).toBe(to);
  expect(after.weights[to]).toBe(100);
  expect(after.inFlight).toBeUndefined();
  expect(bad).toBe(0);
  const text = await waitFor(
    async () => {
      const t = progressText(stack, (await releases(stack).get(r.id)) as Release);
      return /✅ Released/.test(t) && /↻ /.test(t) ? t : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'the progress message to say released and resumed' },
  );
  expect(text).toMatch(/↻ .*(stopped|run again)/);
  summary.push(
    `${point.padEnd(20)} worker ${dead.pid} killed, worker ${alive.pid} finished: ${r.status}, steps repeated ${repeated}, nginx reloads ${reloads}, lock left ${after.inFlight ? 'yes' : 'no'}, nginx answers ${ok + bad} (not from a colour ${bad}), ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

describe('two workers on one Redis, one SIGKILLed in the middle of a release', () => {
  it('killed right after the 50% weight change: the other worker takes the release over and completes it', async () => {
    await releaseSurvivingOneWorker('1.1.0', 'persisted:shift@50');
  }, 240_000);

  it('killed while starting the release (recorded, job not queued): the other worker runs the command again and completes it', async () => {
    for (const w of workers()) {
      w.setEnv({ FLIGHTDECK_FAILPOINTS: 'after:record' });
      await w.stop();
      await w.start();
    }
    await releaseSurvivingOneWorker('1.2.0', 'after:record');
  }, 240_000);
});
