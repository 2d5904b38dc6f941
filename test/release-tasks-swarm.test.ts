// Release tasks on the real single-node Swarm: one-off jobs (mode replicated-job) with the release's
// image, before the idle colour is updated and after the last traffic step. A failing migration stops
// the release before anything moves; a passing one lets it go on; a timeout fails it; a SIGKILL while
// the job runs neither loses it nor starts it twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskJobName } from '../src/integrations/swarm.js';
import type { Release } from '../src/releases/schema.js';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import { waitFor } from './helpers/ports.js';
import { deployRelease, measureSplit, releases, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, docker, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

const PREFIX = 'fdtask';
const stack = new TestStack({ prefix: PREFIX, basePort: 31700 });
const names: string[] = [];

const sh = (script: string) => ['/bin/sh', '-c', script];
const colours = (name: string, base: number) => ({
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: `${PREFIX}-staging-${name}-blue`, address: `127.0.0.1:${base}` },
  green: { swarmService: `${PREFIX}-staging-${name}-green`, address: `127.0.0.1:${base + 1}` },
});

/** Every service of the suite: each with the before-task its case needs (and the environment's after-task). */
const SERVICES = {
  fails: {
    ...colours('fails', 31701),
    tasks: [
      {
        name: 'migrate',
        when: 'before',
        command: sh('echo applying 0042_add_column; echo "ERROR: column <!channel> exists" >&2; exit 3'),
      },
    ],
  },
  passes: {
    ...colours('passes', 31711),
    tasks: [
      { name: 'migrate', when: 'before', command: sh('echo "migrated to $MODE"'), env: { MODE: 'v2' } },
    ],
  },
  slow: {
    ...colours('slow', 31721),
    tasks: [
      { name: 'migrate', when: 'before', command: sh('echo started; /bin/busybox sleep 60'), timeout: '3s' },
    ],
  },
  // The environment's `warm`, replaced by name with one that fails.
  warmfails: {
    ...colours('warmfails', 31741),
    tasks: [{ name: 'warm', when: 'after', command: sh('echo cache cold >&2; exit 4') }],
  },
  crash: {
    ...colours('crash', 31731),
    tasks: [
      {
        name: 'settle',
        when: 'before',
        command: sh('echo begin; /bin/busybox sleep 6; echo end'),
        timeout: '2m',
      },
    ],
  },
};

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      const staging = cfg.environments.staging as Record<string, unknown>;
      staging.services = SERVICES;
      // Every release of the environment warms up after its last traffic step.
      staging.tasks = [{ name: 'warm', when: 'after', command: sh('echo warmed $HOSTNAME'), timeout: '1m' }];
      cfg.release = { ...cfg.release, steps: [100], soak: ['1s'] };
    },
  });
  names.push(...(await createColourServices(Object.values(SERVICES))));
}, 240_000);

afterAll(async () => {
  await stack.stop();
  const left = await docker.listServices({ filters: { label: ['flightdeck.release'] } });
  await removeServicesAndWait([...names, ...left.map((s) => String(s.Spec?.Name))]);
});

const url = (svc: string) => `http://127.0.0.1:${stack.nginx.port}/staging/${svc}/colour`;
const states = () => new ServiceStateStore(stack.client, PREFIX);

/** Job services of a release (of one of its tasks) still in Swarm. */
async function jobsOf(id: string, task?: string) {
  const label = [`flightdeck.release=${id}`, ...(task ? [`flightdeck.task=${task}`] : [])];
  return docker.listServices({ filters: { label } });
}

/** The replies in a release's thread, once its message exists. */
async function threadOf(r: Release, count: number): Promise<string[]> {
  return waitFor(
    () => {
      if (!r.message) return undefined;
      const replies = stack.emulator.threadReplies(r.message.channel, r.message.ts).map((m) => m.text);
      return replies.length >= count ? replies : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `${count} replies in the thread of ${r.id}` },
  );
}

describe('release tasks as Swarm jobs', () => {
  it('a before-task that exits 3 stops the release before any traffic moves, its last lines in the thread', async () => {
    const reloads = stack.nginx.reloads();
    const id = await deployRelease(stack, 'fails 1.1.0');
    const r = await waitRelease(stack, id, (x) => x.status === 'failed', 'failed', 60_000);
    expect(r.outcome).toBe(
      `Stopped before any change: migrate: exit 3 after ${/\d+\.\d s/.exec(r.outcome ?? '')?.[0]} — last lines in thread. No traffic moved and ${PREFIX}-staging-fails-green was not updated.`,
    );
    expect(r.steps.map((s) => s.status)).toEqual(['failed', ...r.steps.slice(1).map(() => 'skipped')]);
    expect(r.steps[0]?.task?.result).toMatchObject({ outcome: 'exited', exitCode: 3 });
    expect(r.swarmUpdated).toBe(false);
    // Nothing moved: the idle colour keeps its image, nginx was not touched, all traffic stays on blue.
    expect(await serviceImage(`${PREFIX}-staging-fails-green`)).toBe('flightdeck/testapp:1.0.0');
    expect(stack.nginx.reloads()).toBe(reloads);
    expect(await measureSplit(url('fails'), 20)).toEqual({ blue: 20, green: 0, other: 0 });
    expect((await states().get('staging', 'fails')).inFlight).toBeUndefined();
    // The job ran with the release's image, and is gone.
    expect(await jobsOf(id)).toEqual([]);

    const progress = await waitProgress(stack, id, /❌ Task migrate/);
    expect(progress).toMatch(
      /❌ Task migrate: `\/bin\/sh -c echo applying .*` — migrate: exit 3 after \d+\.\d s — last lines in thread/,
    );
    expect(progress).toContain('⏭️ Update green');
    const [reply] = await threadOf(r, 1);
    expect(reply).toMatch(
      new RegExp(
        `^\\*Task migrate\\*: exit 3 after \\d+\\.\\d s \\(job \`${PREFIX}-staging-fails-task-migrate-[0-9a-f]{8}\`, flightdeck/testapp:1\\.1\\.0\\)`,
      ),
    );
    expect(reply).toContain('applying 0042_add_column');
    // Log text is not flightdeck's: escaped, so it cannot mention the channel.
    expect(reply).toContain('ERROR: column &lt;!channel&gt; exists');
    expect(reply).not.toContain('<!channel>');
    // The service can be released again (the lock is free).
    const next = await deployRelease(stack, 'fails 1.2.0');
    await waitRelease(stack, next, (x) => x.status === 'failed', 'failed again', 60_000);
  }, 150_000);

  it('a passing before-task lets the release go on; the environment’s after-task runs after the last step', async () => {
    const id = await deployRelease(stack, 'passes 1.1.0');
    const r = await waitRelease(stack, id, (x) => x.status === 'completed', 'completed', 120_000);
    expect(r.steps.map((s) => s.kind)).toEqual([
      'task',
      'update',
      'converge',
      'health',
      'shift',
      'soak',
      'gate',
      'task',
      'finalize',
    ]);
    expect(r.steps[0]?.detail).toMatch(/^exit 0 in \d+\.\d s$/);
    expect(r.steps[7]?.task?.name).toBe('warm');
    expect(r.steps[7]?.detail).toMatch(/^exit 0 in /);
    // The before-task ended before the update began; the after-task after the last gate.
    expect(r.steps[0]?.finishedAt ?? Infinity).toBeLessThanOrEqual(r.steps[1]?.startedAt ?? 0);
    expect(r.steps[6]?.finishedAt ?? Infinity).toBeLessThanOrEqual(r.steps[7]?.startedAt ?? 0);
    expect(await serviceImage(`${PREFIX}-staging-passes-green`)).toBe('flightdeck/testapp:1.1.0');
    expect(await measureSplit(url('passes'), 20)).toEqual({ blue: 0, green: 20, other: 0 });
    expect(await jobsOf(id)).toEqual([]);
    const replies = await threadOf(r, 2);
    expect(replies[0]).toMatch(/^\*Task migrate\*: exit 0 in [\s\S]*migrated to v2/);
    expect(replies[1]).toMatch(/^\*Task warm\*: exit 0 in [\s\S]*warmed /);
    await waitProgress(
      stack,
      id,
      /✅ Task migrate: `\/bin\/sh -c echo "migrated to \$MODE"` — exit 0 in \d+\.\d s/,
    );
  }, 150_000);

  it('an after-task that fails is a failed step: the release is rolled back to the stable colour', async () => {
    const id = await deployRelease(stack, 'warmfails 1.1.0');
    const r = await waitRelease(stack, id, (x) => x.status === 'rolled_back', 'rolled back', 120_000);
    const failed = r.steps.find((s) => s.status === 'failed');
    expect(failed?.kind).toBe('task');
    expect(failed?.task?.name).toBe('warm');
    expect(failed?.task?.command).toEqual(sh('echo cache cold >&2; exit 4'));
    expect(r.outcome).toMatch(
      /^Rolled back \(warm: exit 4 after \d+\.\d s — last lines in thread\): traffic 100% on blue/,
    );
    expect(r.steps.at(-1)).toMatchObject({ kind: 'finalize', status: 'skipped' });
    expect(await measureSplit(url('warmfails'), 20)).toEqual({ blue: 20, green: 0, other: 0 });
    expect(await jobsOf(id)).toEqual([]);
    const [reply] = await threadOf(r, 1);
    expect(reply).toMatch(/^\*Task warm\*: exit 4 [\s\S]*cache cold/);
  }, 150_000);

  it('a task that outlives its timeout fails the release; its job is removed', async () => {
    const id = await deployRelease(stack, 'slow 1.1.0');
    const r = await waitRelease(stack, id, (x) => x.status === 'failed', 'failed', 60_000);
    expect(r.outcome).toMatch(
      /^Stopped before any change: migrate: timed out after 3s; its job was removed — last lines in thread\./,
    );
    expect(r.steps[0]?.task?.result?.outcome).toBe('timeout');
    expect(await jobsOf(id)).toEqual([]);
    expect(await serviceImage(`${PREFIX}-staging-slow-green`)).toBe('flightdeck/testapp:1.0.0');
    const [reply] = await threadOf(r, 1);
    expect(reply).toMatch(/^\*Task migrate\*: timed out after 3s; its job was removed/);
    expect(reply).toContain('started');
  }, 120_000);

  it('/deploy cancel while a task runs rolls the release back and removes its job', async () => {
    const id = await deployRelease(stack, 'crash 1.2.0');
    await waitRelease(
      stack,
      id,
      (x) => x.steps[0]?.status === 'waiting' && x.steps[0]?.task?.createdAt !== undefined,
      'its task running',
      60_000,
    );
    expect(await jobsOf(id, 'settle')).toHaveLength(1);
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'cancel crash');
    await stack.answerTo('U0DEV', seen, /Cancelling|cancel/i);
    const r = await waitRelease(stack, id, (x) => x.status === 'rolled_back', 'rolled back', 60_000);
    expect(r.steps[0]?.status).toBe('skipped');
    expect(await jobsOf(id)).toEqual([]);
    expect(await serviceImage(`${PREFIX}-staging-crash-green`)).toBe('flightdeck/testapp:1.0.0');
  }, 120_000);

  it('SIGKILL just after the job was created (not yet recorded): after the restart the same job is awaited, not created again', async () => {
    const app = stack.apps[0];
    if (!app) throw new Error('no app');
    app.setEnv({ FLIGHTDECK_FAILPOINTS: 'after:task@settle' });
    await app.stop();
    await app.start();
    const died = app.exited();
    // The answer may not come before the kill: the release is found by its job's labels instead.
    await stack.driver.command('/deploy', 'crash 1.1.0');
    await died;
    const [created, ...more] = await docker.listServices({
      filters: { label: ['flightdeck.task=settle', 'flightdeck.service=crash'] },
    });
    expect(more).toEqual([]);
    const id = String(created?.Spec?.Labels?.['flightdeck.release']);
    expect(created?.Spec?.Name).toBe(taskJobName(`${PREFIX}-staging-crash-green`, id, 'settle'));
    // Killed with the job created and nothing of it recorded.
    const before = await releases(stack).get(id);
    expect(before?.steps[0]?.task?.createdAt).toBeUndefined();
    expect(created?.Spec?.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });

    app.setEnv({});
    await app.start();
    // While the release goes on, there is only ever that one job service of the task.
    const seen = new Set<string>();
    const r = await waitFor(
      async () => {
        for (const s of await jobsOf(id, 'settle')) seen.add(String(s.ID));
        const cur = await releases(stack).get(id);
        return cur && (cur.status === 'completed' || cur.status === 'failed' || cur.status === 'rolled_back')
          ? cur
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200, what: `${id} to finish after the restart` },
    );
    expect(r.status).toBe('completed');
    expect([...seen]).toEqual([created?.ID]);
    // The job found after the restart is the one created before it: its creation time is Swarm's.
    expect(r.steps[0]?.task?.createdAt).toBe(Date.parse(String(created?.CreatedAt)));
    expect(r.steps[0]?.task?.result).toMatchObject({ outcome: 'exited', exitCode: 0 });
    expect(r.steps[0]?.task?.result?.durationMs).toBeGreaterThanOrEqual(5_000);
    expect(r.events.some((e) => e.text.startsWith('↻ '))).toBe(true);
    expect(await jobsOf(id)).toEqual([]);
    // Its output once: one reply for the task, with both lines of one run.
    const replies = (await threadOf(r, 2)).filter((t) => t.startsWith('*Task settle*'));
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatch(/begin\nend/);
  }, 240_000);
});
