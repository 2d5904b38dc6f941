import { Queue } from 'bullmq';
import { format, subDays } from 'date-fns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Release } from '../../src/releases/schema.js';
import { ServiceStateStore } from '../../src/releases/service-state-store.js';
import { other } from '../../src/releases/weights.js';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { waitFor } from '../helpers/ports.js';
import { measureSplit, progressText, releaseIds, releases, waitRelease } from '../helpers/release.js';
import { TestStack } from '../helpers/stack.js';
import {
  createStagingColourServices,
  previousImage,
  removeServicesAndWait,
  serviceImage,
} from '../helpers/swarm.js';

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

/**
 * After a release's final record: what follows it (the next release of a sequential `all` batch, the
 * post-deployment checklist of a gated environment) must still happen, once. One batch walks them
 * all: each restart is armed with the next point, which the resumed release then reaches.
 */
const HOOK_KILL_POINTS: Array<{ point: string; what: string }> = [
  {
    point: 'persisted:finalize',
    what: 'first release of a sequential batch recorded complete, nothing after it done',
  },
  { point: 'after:next-in-batch', what: 'next release of the batch started, not recorded as done' },
  { point: 'after:on-completed', what: 'post-deployment checklist queued, not recorded as done' },
];
/** SIGKILL in a `/rollback` of a paused release. */
const PAUSED_ROLLBACK_POINTS: Array<{ point: string; what: string }> = [
  { point: 'after:rollback-traffic', what: 'traffic back, Swarm not yet' },
  { point: 'persisted:rollback', what: 'rollback recorded, neither announced nor answered' },
];
/** SIGKILL in a `/rollback` with no release in flight, after the traffic switch, before Swarm's rollback. */
const SERVICE_ROLLBACK_POINT = 'after:service-rollback-traffic';
/** Kill points in all: the release table, the release rollbacks, the batch's and the /rollback's. */
const ALL_POINTS = KILL_POINTS.length + 1 + PAUSED_ROLLBACK_POINTS.length + HOOK_KILL_POINTS.length + 1;

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

let outboxQueue: Queue | undefined;

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
      // `/deploy all` one service after another; staging is gated, so each release posts the
      // post-deployment checklist (the gate itself is overridden below).
      Object.assign(cfg.release, { smoke: [{ path: '/version', status: 200 }], parallel: false });
      Object.assign(cfg, { checklists: { gateEnvironments: ['staging'] } });
    },
  });
  // A rollout in its phase 3 with every gate opened by a lead: this suite is about kills, not gates.
  await asLead(`start ${format(subDays(new Date(), 15), 'yyyy-MM-dd')}`, /The rollout starts on/);
  await asLead('override pre fault suite: deploys open', /overrode the production gate/);
  await asLead('override phase 1 fault suite: deploys open', /overrode phase 1/);
  await asLead('override phase 2 fault suite: deploys open', /overrode phase 2/);
  outboxQueue = new Queue('slack-outbox', { connection: stack.redis.client(), prefix: stack.prefix });
  names.push(...(await createStagingColourServices(stack)));
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
  await outboxQueue?.close();
  const survived = rows.filter((r) => r.outcome === r.expected).length;
  const lines = rows.map(
    (r) =>
      `${r.point.padEnd(20)} ${r.outcome.padEnd(10)} repeated ${r.repeats}  lock left ${r.lockLeft ? 'yes' : 'no'}  bad answers ${r.badAnswers}  ${r.seconds.toFixed(1)} s`,
  );
  console.log(
    [
      'Process death (SIGKILL at each kill point, then restart):',
      ...lines,
      `kill points survived ${survived}/${ALL_POINTS}, steps repeated with effect ${rows.reduce((a, r) => a + r.repeats, 0)}, locks left ${rows.filter((r) => r.lockLeft).length}, nginx answers ${probe.ok + probe.bad} of which not from a colour ${probe.bad}`,
    ].join('\n'),
  );
  await stack.stop();
  await removeServicesAndWait(names);
});

/** A `/checklist` command of the lead, answered (in the channel or to the lead alone). */
async function asLead(text: string, answer: RegExp): Promise<void> {
  const seen = stack.emulator.messages.length;
  const seenEphemeral = stack.emulator.ephemeralsFor('U0LEAD').length;
  await stack.driver.command('/checklist', text, { user: 'U0LEAD' });
  await waitFor(
    () =>
      stack.emulator.messages.slice(seen).find((m) => answer.test(m.text)) ??
      stack.emulator
        .ephemeralsFor('U0LEAD')
        .slice(seenEphemeral)
        .find((e) => answer.test(e.text)),
    { timeoutMs: 60_000, intervalMs: 100, what: `the answer to /checklist ${text}` },
  );
}

const app = () => stack.apps[0] as NonNullable<(typeof stack.apps)[0]>;
const states = () => new ServiceStateStore(stack.client, stack.prefix);
const swarmName = (colour: 'blue' | 'green') =>
  stack.config.environments.staging?.services[SERVICE]?.[colour].swarmService as string;

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

/**
 * Post-deployment checklists posted in the threads of staging's release messages: those showing
 * it, and older ones past the cap that now point to the newest.
 */
const postChecklists = () =>
  stack.emulator.messages.filter((m) => {
    // Each release's own checklist, in its thread.
    if (m.channel !== 'C0RELEASES' || !m.threadTs) return false;
    const t = renderBlocks(m.blocks, m.text);
    return t.includes('📋 Post-deployment checklist') || t.includes('📋 This checklist moved');
  }).length;

/**
 * Staging is gated: every completed release posts the post-deployment checklist, exactly once. Checked
 * once Slack has been sent everything queued (no outbox job left), so a late duplicate would count.
 */
async function expectChecklistOncePerRelease(): Promise<void> {
  const store = releases(stack);
  const all = [
    ...(await store.history('staging', 'api', 500)),
    ...(await store.history('staging', 'web', 500)),
  ];
  const completed = all.filter((r) => r.status === 'completed').length;
  await waitFor(() => (postChecklists() >= completed ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `${completed} post-deployment checklists (one per completed release), seen ${postChecklists()}`,
  });
  await waitFor(
    async () => {
      const c = await (outboxQueue as Queue).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).every((n) => n === 0) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'every Slack send done' },
  );
  expect(postChecklists()).toBe(completed);
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
      await expectChecklistOncePerRelease();
    }, 240_000);
  });
});

describe('flightdeck SIGKILLed after a release of a sequential batch was recorded complete', () => {
  it(`${HOOK_KILL_POINTS.map((k) => k.point).join(', ')}: the next release starts once and each posts the checklist once`, async () => {
    const started = Date.now();
    const badBefore = probe.bad;
    const version = await freshVersion();
    const historyBefore = {
      api: (await releases(stack).history('staging', 'api', 500)).length,
      web: (await releases(stack).history('staging', 'web', 500)).length,
    };
    const checklistsBefore = postChecklists();
    const hookArmed = (i: number): Record<string, string> =>
      HOOK_KILL_POINTS[i] ? { FLIGHTDECK_FAILPOINTS: HOOK_KILL_POINTS[i].point } : {};
    app().setEnv(hookArmed(0));
    await app().stop();
    await app().start();
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    let died = app().exited();
    await stack.driver.command('/deploy', `all ${version}`);
    const ids = releaseIds(await deployAnswer(seen));
    expect(ids).toHaveLength(2);
    const [first, second] = ids as [string, string];
    // Each restart is armed with the next point, which the first release's resumed job reaches.
    for (let i = 0; i < HOOK_KILL_POINTS.length; i++) {
      await reached(died, HOOK_KILL_POINTS[i]?.point as string);
      app().setEnv(hookArmed(i + 1));
      await app().start();
      died = app().exited();
    }
    const done = [
      await waitRelease(stack, first, (x) => x.status === 'completed', 'completed', 120_000),
      await waitRelease(stack, second, (x) => x.status === 'completed', 'completed', 180_000),
    ];
    const [a, b] = done as [Release, Release];
    // The batch went on, one after the other: the second started once the first was complete.
    expect([a.service, b.service]).toEqual(['api', 'web']);
    expect(b.steps[0]?.startedAt ?? 0).toBeGreaterThanOrEqual(a.finishedAt ?? Number.POSITIVE_INFINITY);
    expect((await releases(stack).history('staging', 'api', 500)).length - historyBefore.api).toBe(1);
    expect((await releases(stack).history('staging', 'web', 500)).length - historyBefore.web).toBe(1);
    let lockLeft = false;
    for (const r of done) {
      expect(repeatedSteps(r)).toBe(0);
      expect(r.steps.every((s) => s.status === 'done')).toBe(true);
      lockLeft ||= (await states().get('staging', r.service)).inFlight !== undefined;
    }
    expect(lockLeft).toBe(false);
    // The first release's message says it was brought up to date after the crashes; both say released.
    const firstText = await waitFor(
      async () => {
        const t = progressText(stack, (await releases(stack).get(first)) as Release);
        return /✅ Released/.test(t) && /↻ .*after recording the outcome/.test(t) ? t : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the first release message to say released and resumed' },
    );
    expect(firstText).toMatch(/✅ Released/);
    await waitFor(
      async () =>
        /✅ Released/.test(progressText(stack, (await releases(stack).get(second)) as Release))
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 100, what: 'the second release message to say released' },
    );
    // One post-deployment checklist per release of the batch, none lost, none twice.
    await expectChecklistOncePerRelease();
    expect(postChecklists() - checklistsBefore).toBe(2);
    expect(probe.bad - badBefore).toBe(0);
    const seconds = (Date.now() - started) / 1000;
    for (const { point } of HOOK_KILL_POINTS)
      rows.push({
        point,
        expected: 'completed',
        outcome:
          a.status === 'completed' && b.status === 'completed' ? 'completed' : `${a.status}/${b.status}`,
        repeats: repeatedSteps(a) + repeatedSteps(b) + (postChecklists() - checklistsBefore - 2),
        lockLeft,
        badAnswers: probe.bad - badBefore,
        seconds,
      });
  }, 360_000);
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

  PAUSED_ROLLBACK_POINTS.forEach(({ point, what }) => {
    it(`${point} (/rollback of a paused release, ${what}): the rollback finishes once, /rollback is answered and goes no further`, async () => {
      const started = Date.now();
      const badBefore = probe.bad;
      const before = await states().get('staging', SERVICE);
      const to = other(before.live);
      const imageBefore = await serviceImage(swarmName(to));
      const liveImageBefore = await serviceImage(swarmName(before.live));
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

      app().setEnv({ FLIGHTDECK_FAILPOINTS: point });
      await app().stop();
      await app().start();
      const died = app().exited();
      await stack.driver.command('/rollback', SERVICE);
      await reached(died, point);
      app().setEnv({});
      await app().start();
      await expectRolledBackOnce(
        id as string,
        point,
        before.live,
        imageBefore,
        reloadsBefore,
        started,
        badBefore,
      );
      // The /rollback's own answer reaches the channel, once, from the run that finished it.
      const preEmpted = new RegExp(`${SERVICE} in staging: release ${id} pre-empted`);
      await waitFor(() => stack.emulator.messages.find((m) => preEmpted.test(m.text)), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'the answer to /rollback',
      });
      expect(stack.emulator.messages.filter((m) => preEmpted.test(m.text))).toHaveLength(1);
      // Run again, the job did not go on to roll back the release before this one.
      const after = await states().get('staging', SERVICE);
      expect(after.previous).toEqual(before.previous);
      expect(await serviceImage(swarmName(before.live))).toBe(liveImageBefore);
    }, 240_000);
  });
});

describe('flightdeck SIGKILLed in a /rollback with no release in flight, then started again', () => {
  it(`${SERVICE_ROLLBACK_POINT} (traffic back on the earlier colour, Swarm not rolled back yet): the job's next run rolls Swarm back, once`, async () => {
    const started = Date.now();
    const badBefore = probe.bad;
    const before = await states().get('staging', SERVICE);
    expect(before.inFlight).toBeUndefined();
    const target = before.previous?.colour as 'blue' | 'green';
    expect(target).toBeDefined();
    // The rollback before this one is still rolling the earlier colour's Swarm service back: the
    // /rollback below must wait for Swarm before it moves traffic there (the probe counts any error).
    const demoted = swarmName(other(target));
    const imageBefore = await serviceImage(demoted);
    const rollbackImage = await previousImage(demoted);
    expect(rollbackImage).not.toBe(imageBefore);

    app().setEnv({ FLIGHTDECK_FAILPOINTS: SERVICE_ROLLBACK_POINT });
    await app().stop();
    await app().start();
    const died = app().exited();
    const seen = stack.emulator.messages.length;
    await stack.driver.command('/rollback', SERVICE);
    await reached(died, SERVICE_ROLLBACK_POINT);
    app().setEnv({});
    await app().start();

    // The rollback job runs again and finishes it; its answer says so.
    const answer = await waitFor(
      () =>
        stack.emulator.messages
          .slice(seen)
          .find((m) => new RegExp(`${SERVICE} in staging: .*${demoted} rolled back to`).test(m.text))?.text,
      { timeoutMs: 90_000, intervalMs: 100, what: 'the answer to /rollback' },
    );
    expect(answer).toMatch(/interrupted/);
    const after = await states().get('staging', SERVICE);
    expect(after.live).toBe(target);
    expect(after.weights[target]).toBe(100);
    expect((await measureSplit(nginxUrl(), 20))[target]).toBe(20);
    // Rolled back once: a second rollback would have flipped the spec back to the image it had.
    const specNow = await serviceImage(demoted);
    expect(specNow).toBe(rollbackImage);
    expect(await previousImage(demoted)).toBe(imageBefore);

    // Asked again, there is nothing left to do, and Swarm is not touched a second time.
    const again = stack.emulator.messages.length;
    await stack.driver.command('/rollback', SERVICE);
    await waitFor(
      () => stack.emulator.messages.slice(again).find((m) => /Nothing to roll back/.test(m.text)),
      { timeoutMs: 60_000, intervalMs: 100, what: 'the answer to the second /rollback' },
    );
    expect(await serviceImage(demoted)).toBe(rollbackImage);
    expect(probe.bad - badBefore).toBe(0);
    rows.push({
      point: SERVICE_ROLLBACK_POINT,
      expected: 'rolled_back',
      outcome: specNow === rollbackImage && after.weights[target] === 100 ? 'rolled_back' : 'incomplete',
      repeats: specNow === rollbackImage ? 0 : 1,
      lockLeft: after.inFlight !== undefined,
      badAnswers: probe.bad - badBefore,
      seconds: (Date.now() - started) / 1000,
    });
  }, 240_000);
});
