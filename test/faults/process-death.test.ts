import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Release } from '../../src/releases/schema.js';
import { ServiceStateStore } from '../../src/releases/service-state-store.js';
import { other } from '../../src/releases/weights.js';
import { waitFor } from '../helpers/ports.js';
import { measureSplit, progressText, releaseIds, releases, waitRelease } from '../helpers/release.js';
import { TestStack } from '../helpers/stack.js';
import { createColourServices, docker, removeServicesAndWait, serviceImage } from '../helpers/swarm.js';

/**
 * Issue #7, process death: flightdeck is SIGKILLed (its own failpoints) at each step of a release,
 * started again, and every release must end completed, with no step repeated with effect, the lock
 * freed, traffic only ever on a healthy colour and a progress message that says what happened.
 */
const stack = new TestStack({ prefix: 'fdpd', basePort: 29500 });
stack.nginx.logLevel = 'notice'; // nginx logs each reload, so a second reload would be seen
const names: string[] = [];
const SERVICE = 'api';
const VERSIONS = ['1.1.0', '1.2.0', '2.0.0']; // cycling three versions: each release really changes its colour
/** Weight changes per release (10, 50, 100): nginx reloads exactly this often. */
const SHIFTS = 3;

/**
 * Where flightdeck dies; `resumeNote`: a release existed then, so its message must tell. Listed from
 * the end of a release back to its start: flightdeck restarts already armed with the next point,
 * which the release being recovered has then passed (one restart per point instead of two).
 */
const KILL_POINTS: Array<{ point: string; what: string; resumeNote: boolean }> = [
  { point: 'persisted:finalize', what: 'release recorded complete, message not updated', resumeNote: true },
  { point: 'after:finalize', what: 'service state recorded, release not', resumeNote: true },
  { point: 'persisted:soak@100', what: 'soaking at 100%', resumeNote: true },
  { point: 'after:shift@100', what: 'weights set to 100%, not recorded', resumeNote: true },
  { point: 'after:gate@50', what: 'gate at 50% passed, not recorded', resumeNote: true },
  { point: 'persisted:soak@50', what: 'soaking at 50%', resumeNote: true },
  { point: 'after:shift@50', what: 'weights set to 50%, not recorded', resumeNote: true },
  { point: 'persisted:soak@10', what: 'soaking at 10%', resumeNote: true },
  { point: 'after:shift@10', what: 'weights set to 10%, not recorded', resumeNote: true },
  { point: 'after:smoke', what: 'smoke checks passed, not recorded', resumeNote: true },
  { point: 'after:health', what: 'health-checked, not recorded', resumeNote: true },
  { point: 'after:converge', what: 'converging: a Swarm poll made, not recorded', resumeNote: true },
  { point: 'after:update', what: 'Swarm update sent, not recorded', resumeNote: true },
  // The two before the release job exists go last: recovering them runs a whole release.
  { point: 'after:record', what: 'release recorded, its job not queued yet', resumeNote: true },
  { point: 'after:lock', what: 'lock taken, release not recorded yet', resumeNote: false },
];
const armed = (i: number): Record<string, string> =>
  KILL_POINTS[i] ? { FLIGHTDECK_FAILPOINTS: KILL_POINTS[i].point } : {};

interface Row {
  point: string;
  expected: Release['status'];
  outcome: string;
  repeats: number;
  lockLeft: boolean;
  badAnswers: number;
  seconds: number;
}
const rows: Row[] = [];

/** Asks nginx for the service all along: every answer must come from a colour (never an error). */
const probe = { ok: 0, bad: 0, running: true, done: Promise.resolve() };
const nginxUrl = () => `http://127.0.0.1:${stack.nginx.port}/staging/${SERVICE}/colour`;

beforeAll(async () => {
  await stack.start({
    env: armed(0),
    configure: (cfg) => {
      // Short soaks instead of promotes: a kill point is reached by the release walking on its own.
      cfg.release.soak = ['1s', '1s', '1s'];
      // A dead worker's jobs are taken over after 3 s instead of 5 s.
      cfg.jobs.lockDuration = '3s';
      Object.assign(cfg.release, { smoke: [{ path: '/version', status: 200 }] });
    },
  });
  names.push(
    ...(await createColourServices(Object.values(stack.config.environments.staging?.services ?? {}))),
  );
  probe.done = (async () => {
    while (probe.running) {
      const body = await fetch(nginxUrl(), { headers: { connection: 'close' } })
        .then(async (r) => (r.ok ? (await r.text()).trim() : `HTTP ${r.status}`))
        .catch((err: Error) => err.message);
      if (body === 'blue' || body === 'green') probe.ok += 1;
      else probe.bad += 1;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}, 240_000);

afterAll(async () => {
  probe.running = false;
  await probe.done;
  const survived = rows.filter((r) => r.outcome === r.expected).length;
  const lines = rows.map(
    (r) =>
      `${r.point.padEnd(20)} ${r.outcome.padEnd(10)} repeated ${r.repeats}  lock left ${r.lockLeft ? 'yes' : 'no'}  bad answers ${r.badAnswers}  ${r.seconds.toFixed(1)} s`,
  );
  console.log(
    [
      'Process death (SIGKILL at each kill point, then restart):',
      ...lines,
      `kill points survived ${survived}/${KILL_POINTS.length + 2}, steps repeated with effect ${rows.reduce((a, r) => a + r.repeats, 0)}, locks left ${rows.filter((r) => r.lockLeft).length}, nginx answers ${probe.ok + probe.bad} of which not from a colour ${probe.bad}`,
    ].join('\n'),
  );
  await stack.stop();
  await removeServicesAndWait(names);
});

const app = () => stack.apps[0] as NonNullable<(typeof stack.apps)[0]>;
const states = () => new ServiceStateStore(stack.client, stack.prefix);
const swarmName = (colour: 'blue' | 'green') =>
  stack.config.environments.staging?.services[SERVICE]?.[colour].swarmService as string;

async function previousImage(service: string): Promise<string> {
  const info = await docker.getService(service).inspect();
  return String(info.PreviousSpec?.TaskTemplate?.ContainerSpec?.Image ?? '').replace(/@sha256:.*/, '');
}

/** The worker's answer to the /deploy (it may come only after the restart: the command is run again). */
async function deployAnswer(seen: number): Promise<string> {
  return waitFor(
    () =>
      stack.emulator
        .ephemeralsFor('U0DEV')
        .slice(seen)
        .find((e) => e.via !== 'ack' && /🚀 `rel-/.test(e.text))?.text,
    { timeoutMs: 60_000, intervalMs: 100, what: 'the answer to /deploy' },
  );
}

/** flightdeck killed itself at its failpoint (the process exited) within a minute. */
function reached(died: Promise<void>, point: string): Promise<unknown> {
  return Promise.race([
    died,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`failpoint ${point} was never reached`)), 60_000),
    ),
  ]);
}

/** How many steps took effect more than once: "✓" events per step beyond the first. */
function repeatedSteps(r: Release): number {
  return r.steps.reduce((n, s) => {
    const done = r.events.filter((e) => e.text.startsWith(`✓ ${s.label}: `)).length;
    return n + Math.max(0, done - 1);
  }, 0);
}

describe('flightdeck SIGKILLed at each step of a release, then started again', () => {
  KILL_POINTS.forEach(({ point, what, resumeNote }, i) => {
    it(`${point} (${what}): the release completes once, lock freed, traffic always on a healthy colour`, async () => {
      const started = Date.now();
      const badBefore = probe.bad;
      const version = VERSIONS[i % VERSIONS.length] as string;
      const before = await states().get('staging', SERVICE);
      expect(before.inFlight).toBeUndefined();
      const to = other(before.live);
      const imageBefore = await serviceImage(swarmName(to));
      const reloadsBefore = stack.nginx.reloads();
      const historyBefore = (await releases(stack).history('staging', SERVICE, 50)).length;

      const died = app().exited();
      const seen = stack.emulator.ephemeralsFor('U0DEV').length;
      await stack.driver.command('/deploy', `${SERVICE} ${version}`);
      await reached(died, point);
      app().setEnv(armed(i + 1));
      await app().start();

      const [id] = releaseIds(await deployAnswer(seen));
      const r = await waitRelease(stack, id as string, (x) => x.status === 'completed', 'completed', 120_000);
      const after = await states().get('staging', SERVICE);
      const reloads = stack.nginx.reloads() - reloadsBefore;
      const swarmPrevious = await previousImage(swarmName(to));
      const history = await releases(stack).history('staging', SERVICE, 50);
      const repeats =
        repeatedSteps(r) +
        Math.max(0, reloads - SHIFTS) +
        (swarmPrevious === imageBefore ? 0 : 1) +
        (history.length - historyBefore - 1);
      rows.push({
        point,
        expected: 'completed',
        outcome: r.status,
        repeats,
        lockLeft: after.inFlight !== undefined,
        badAnswers: probe.bad - badBefore,
        seconds: (Date.now() - started) / 1000,
      });

      // One release for the one command, every step done exactly once, in order.
      expect(history.length - historyBefore).toBe(1);
      expect(r.toColour).toBe(to);
      expect(repeatedSteps(r)).toBe(0);
      expect(r.steps.every((s) => s.status === 'done')).toBe(true);
      // Swarm: the colour runs the new image, updated once (a second update would make it its own previous spec).
      expect(await serviceImage(swarmName(to))).toBe(`flightdeck/testapp:${version}`);
      expect(swarmPrevious).toBe(imageBefore);
      // nginx: one reload per weight change, none repeated after the restart.
      expect(reloads).toBe(SHIFTS);
      // The service: new colour live with all traffic, the lock freed.
      expect(after.live).toBe(to);
      expect(after.weights[to]).toBe(100);
      expect(after.inFlight).toBeUndefined();
      const split = await measureSplit(nginxUrl(), 20);
      expect(split[to]).toBe(20);
      // Users of the service never got an error, and the message tells what happened.
      expect(probe.bad - badBefore).toBe(0);
      const text = await waitFor(
        async () => {
          const t = progressText(stack, (await releases(stack).get(id as string)) as Release);
          return /✅ Released/.test(t) && (!resumeNote || /↻/.test(t)) ? t : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'the progress message to say released' },
      ).catch(async (err: Error) => {
        const now = progressText(stack, (await releases(stack).get(id as string)) as Release);
        throw new Error(`${err.message}\nmessage now:\n${now}`);
      });
      if (resumeNote) expect(text).toMatch(/↻ .*(stopped|run again)/);
    }, 240_000);
  });
});

/** A version neither colour runs, so the release really changes the idle colour. */
async function freshVersion(): Promise<string> {
  const running = [await serviceImage(swarmName('blue')), await serviceImage(swarmName('green'))];
  return VERSIONS.find((v) => !running.includes(`flightdeck/testapp:${v}`)) as string;
}

/** The rollback ran once: traffic all on the old colour, the new one's Swarm spec back as it was. */
async function expectRolledBackOnce(
  id: string,
  point: string,
  from: 'blue' | 'green',
  imageBefore: string,
  reloadsBefore: number,
  started: number,
  badBefore: number,
): Promise<void> {
  const r = await waitRelease(
    stack,
    id,
    (x) => x.status !== 'rolling_back' && x.status !== 'running' && x.status !== 'paused',
    'rolled back',
    120_000,
  );
  const after = await states().get('staging', SERVICE);
  // A second Swarm rollback would have flipped the spec back to the failed image.
  const specNow = await serviceImage(swarmName(r.toColour));
  const reloads = stack.nginx.reloads() - reloadsBefore;
  const shifted = r.events.filter((e) => /^✓ Traffic /.test(e.text)).length;
  rows.push({
    point,
    expected: 'rolled_back',
    outcome: r.status,
    repeats:
      (specNow === imageBefore ? 0 : 1) +
      repeatedSteps(r) +
      Math.max(0, reloads - shifted - (shifted > 0 ? 1 : 0)),
    lockLeft: after.inFlight !== undefined,
    badAnswers: probe.bad - badBefore,
    seconds: (Date.now() - started) / 1000,
  });
  expect(r.status).toBe('rolled_back');
  // Each weight change reloaded nginx once, and moving back (if anything had moved) once more.
  expect(reloads).toBe(shifted + (shifted > 0 ? 1 : 0));
  expect(r.outcome).toMatch(new RegExp(`traffic 100% on ${from}`));
  expect(specNow).toBe(imageBefore);
  expect(after.live).toBe(from);
  expect(after.weights[from]).toBe(100);
  expect(after.inFlight).toBeUndefined();
  expect((await measureSplit(nginxUrl(), 20))[from]).toBe(20);
  expect(probe.bad - badBefore).toBe(0);
  await waitFor(
    async () => {
      const t = progressText(stack, (await releases(stack).get(id)) as Release);
      return /↩️ Rolled back/.test(t) && /↻ /.test(t) ? t : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'the progress message to say rolled back and resumed' },
  );
}

describe('flightdeck SIGKILLed in the middle of a rollback, then started again', () => {
  it('after:rollback-claim (a failed health check began the rollback, nothing moved yet): the rollback finishes once', async () => {
    const started = Date.now();
    const badBefore = probe.bad;
    const before = await states().get('staging', SERVICE);
    const to = other(before.live);
    const imageBefore = await serviceImage(swarmName(to));
    const reloadsBefore = stack.nginx.reloads();
    app().setEnv({ FLIGHTDECK_FAILPOINTS: 'after:rollback-claim' });
    await app().stop();
    await app().start();
    const died = app().exited();
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    // This image runs but its health path answers 404: the health step fails and rolls back.
    await stack.driver.command('/deploy', `${SERVICE} unhealthy`);
    const [id] = releaseIds(await deployAnswer(seen));
    await reached(died, 'after:rollback-claim');
    app().setEnv({});
    await app().start();
    await expectRolledBackOnce(
      id as string,
      'after:rollback-claim',
      before.live,
      imageBefore,
      reloadsBefore,
      started,
      badBefore,
    );
  }, 240_000);

  it('after:rollback-traffic (/rollback of a paused release, traffic back, Swarm not yet): the rollback finishes once and /rollback is answered', async () => {
    const started = Date.now();
    const badBefore = probe.bad;
    const before = await states().get('staging', SERVICE);
    const to = other(before.live);
    const imageBefore = await serviceImage(swarmName(to));
    const reloadsBefore = stack.nginx.reloads();
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', `${SERVICE} ${await freshVersion()}`);
    const [id] = releaseIds(await deployAnswer(seen));
    const running = await waitRelease(
      stack,
      id as string,
      (x) => x.status === 'running' && x.message !== undefined,
      'its message posted',
    );
    const msg = stack.emulator.messages.find(
      (m) => m.channel === running.message?.channel && m.ts === running.message?.ts,
    );
    await stack.driver.click(
      msg as NonNullable<typeof msg>,
      { action_id: 'release_pause', value: id },
      { user: 'U0DEV' },
    );
    await waitRelease(stack, id as string, (x) => x.status === 'paused', 'paused');

    app().setEnv({ FLIGHTDECK_FAILPOINTS: 'after:rollback-traffic' });
    await app().stop();
    await app().start();
    const died = app().exited();
    await stack.driver.command('/rollback', SERVICE);
    await reached(died, 'after:rollback-traffic');
    app().setEnv({});
    await app().start();
    await expectRolledBackOnce(
      id as string,
      'after:rollback-traffic',
      before.live,
      imageBefore,
      reloadsBefore,
      started,
      badBefore,
    );
    // The /rollback's own answer reaches the channel, from the run that finished it.
    const preEmpted = new RegExp(`${SERVICE} in staging: release ${id} pre-empted`);
    await waitFor(() => stack.emulator.messages.find((m) => preEmpted.test(m.text)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'the answer to /rollback',
    });
  }, 240_000);
});
