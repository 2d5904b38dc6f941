// Release tasks (one-off Swarm jobs before the update or after the last traffic step): the config, where
// the steps go, the job's name, reading its task and log, the thread reply, and the step's resumable
// phases against a fake Swarm. test/release-tasks-swarm.test.ts runs them on the real Swarm.
import { describe, expect, it } from 'vitest';
import { releasePolicy } from '../../src/config/schema.js';
import {
  demuxDockerLog,
  judgeTaskJob,
  lastLogLines,
  type TaskJobRequest,
  type TaskJobState,
  taskJobName,
  taskJobSpec,
} from '../../src/integrations/swarm.js';
import { planSteps } from '../../src/releases/plan-steps.js';
import type { Release, Step } from '../../src/releases/schema.js';
import { runTask, taskThreadText } from '../../src/releases/steps/run-task.js';
import { type StepTask, type TaskConfig, tasksFor } from '../../src/releases/task-schema.js';
import { at, fakeContext, problemsOf, release, step, unitConfig } from './helpers.js';

const migrate = { name: 'migrate', when: 'before', command: ['./run-migrations.sh', '--yes'] };

describe('release tasks in the config', () => {
  it('takes environment and service tasks, with a 10-minute default timeout', () => {
    const cfg = unitConfig((raw) => {
      (raw.environments.staging as Record<string, unknown>).tasks = [
        migrate,
        { name: 'warm', when: 'after', command: ['warm-cache'], timeout: '30s', env: { LEVEL: '2' } },
      ];
    });
    const env = cfg.environments.staging;
    expect(env?.tasks?.[0]).toMatchObject({ name: 'migrate', timeout: 600_000 });
    expect(env?.tasks?.[1]).toMatchObject({ timeout: 30_000, env: { LEVEL: '2' } });
  });

  it('names the key of each mistake', () => {
    const problems = problemsOf((raw) => {
      (raw.environments.staging as Record<string, unknown>).tasks = [
        { name: 'Migrate', when: 'first', command: 'run-migrations.sh', timeout: 'soon' },
        { name: 'ok', when: 'before', command: [], networks: ['bad net'], env: { 'A-B': 'x', N: 3 } },
        { name: 'ok', when: 'after', command: ['x'], shell: true },
      ];
    });
    const find = (key: string) => problems.find((p) => p.startsWith(`environments.staging.tasks.${key}:`));
    expect(find('0.name')).toMatch(/lower-case letters/);
    expect(find('0.when')).toMatch(/must be before or after/);
    expect(find('0.command')).toMatch(/list of arguments/);
    expect(find('0.timeout')).toMatch(/duration/);
    expect(find('1.command')).toMatch(/must name a program/);
    expect(find('1.networks.0')).toMatch(/Docker network name/);
    expect(problems.some((p) => /tasks\.1\.env.*A-B/.test(p) || /tasks\.1\.env\.A-B/.test(p))).toBe(true);
    expect(find('1.env.N')).toMatch(/must be a string/);
    expect(find('2')).toMatch(/unknown key "shell"/);
  });

  it('refuses two tasks of one name in one list', () => {
    const problems = problemsOf((raw) => {
      (raw.environments.staging as Record<string, unknown>).tasks = [migrate, { ...migrate, when: 'after' }];
    });
    expect(problems).toEqual([
      'environments.staging.tasks.1.name: migrate is already the name of task 0; task names must be unique',
    ]);
  });

  it('refuses a timeout under a second or over a day, and an empty program name', () => {
    const problems = problemsOf((raw) => {
      raw.environments.staging.services.api.tasks = [
        { ...migrate, timeout: '500ms' },
        { name: 'b', when: 'after', command: ['x'], timeout: '25h' },
        { name: 'c', when: 'after', command: ['', 'x'] },
      ];
    });
    expect(problems).toEqual([
      'environments.staging.services.api.tasks.0.timeout: must be at least 1s, got "500ms"',
      'environments.staging.services.api.tasks.1.timeout: must be at most 24h, got "25h"',
      'environments.staging.services.api.tasks.2.command: must start with a program name, not an empty string',
    ]);
  });

  it('lets a service replace an environment task by name, in place, and add its own', () => {
    const t = (name: string, command: string, when: TaskConfig['when'] = 'before'): TaskConfig => ({
      name,
      when,
      command: [command],
      timeout: 600_000,
    });
    const env = {
      tasks: [t('migrate', 'env-migrate'), t('notify', 'env-notify', 'after')],
      services: { api: { tasks: [t('seed', 'api-seed'), t('migrate', 'api-migrate')] }, web: {} },
    };
    expect(tasksFor(env, 'api').map((x) => x.command[0])).toEqual(['api-migrate', 'env-notify', 'api-seed']);
    expect(tasksFor(env, 'web').map((x) => x.command[0])).toEqual(['env-migrate', 'env-notify']);
    expect(tasksFor(undefined, 'web')).toEqual([]);
  });
});

describe('task steps in the plan', () => {
  const target = { swarmService: 'fdunit-staging-api-green', colour: 'green' as const, image: 'app:1.2.0' };
  const tasks: TaskConfig[] = [
    { name: 'warm', when: 'after', command: ['warm'], timeout: 60_000 },
    { name: 'migrate', when: 'before', command: ['sh', '-c', 'echo <!channel> `x`'], timeout: 600_000 },
  ];

  it('runs before tasks ahead of the update and after tasks after the last gate, before finalize', () => {
    const steps = planSteps(releasePolicy(unitConfig(), 'staging'), target, tasks);
    expect(steps.map((s) => s.kind)).toEqual([
      'task',
      'update',
      'converge',
      'health',
      ...['shift', 'soak', 'gate', 'shift', 'soak', 'gate', 'shift', 'soak', 'gate'],
      'task',
      'finalize',
    ]);
    expect(steps[0]?.task).toEqual({
      name: 'migrate',
      when: 'before',
      command: ['sh', '-c', 'echo <!channel> `x`'],
      timeoutMs: 600_000,
    });
    expect(steps.at(-2)?.task?.name).toBe('warm');
  });

  it('labels a task with its command, inert in mrkdwn', () => {
    const [first] = planSteps(releasePolicy(unitConfig(), 'staging'), target, tasks);
    expect(first?.label).toBe("Task migrate: `sh -c echo &lt;!channel&gt; 'x'`");
  });

  it('plans no task step without tasks', () => {
    const steps = planSteps(releasePolicy(unitConfig(), 'staging'), target);
    expect(steps.some((s) => s.kind === 'task')).toBe(false);
  });
});

describe('the job service', () => {
  it('has a deterministic name from the colour’s service, the task and the release, within 63 characters', () => {
    const a = taskJobName('fdunit-staging-api-green', 'rel-staging-api-1', 'migrate');
    expect(a).toMatch(/^fdunit-staging-api-task-migrate-[0-9a-f]{8}$/);
    expect(taskJobName('fdunit-staging-api-green', 'rel-staging-api-1', 'migrate')).toBe(a);
    expect(taskJobName('fdunit-staging-api-blue', 'rel-staging-api-1', 'migrate')).toBe(a);
    expect(taskJobName('fdunit-staging-api-green', 'rel-staging-api-2', 'migrate')).not.toBe(a);
    const long = taskJobName(`${'x'.repeat(60)}_blue`, 'rel-1', 'a-very-long-task-name-24c');
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^x+-task-a-very-long-task-name-24c-[0-9a-f]{8}$/);
    expect(taskJobName('prod_api.green', 'r', 'm')).toMatch(/^prod_api-task-m-/);
  });

  it('is a replicated job of one completion, never restarted, in the colour’s environment', () => {
    const req: TaskJobRequest = {
      name: 'svc-task-migrate-12345678',
      image: 'app:1.2.0',
      command: ['./migrate', '--yes'],
      env: { MODE: 'release', PORT: '9' },
      labels: { 'flightdeck.release': 'rel-1', 'flightdeck.task': 'migrate' },
      like: 'svc-green',
    };
    const like = {
      TaskTemplate: {
        ContainerSpec: {
          Image: 'app:1.1.0',
          Env: ['PORT=8080', 'DB=postgres://db'],
          Secrets: [{ SecretName: 'db' }],
        },
        Networks: [{ Target: 'backend', Aliases: ['api'] }],
        Placement: { Constraints: ['node.role==manager'] },
      },
      Mode: { Replicated: { Replicas: 2 } },
    };
    const spec = taskJobSpec(req, like);
    expect(spec.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } });
    expect(spec.TaskTemplate.RestartPolicy).toEqual({ Condition: 'none', MaxAttempts: 0 });
    expect(spec.TaskTemplate.ContainerSpec).toMatchObject({
      Image: 'app:1.2.0',
      Command: ['./migrate', '--yes'],
      Env: ['PORT=9', 'DB=postgres://db', 'MODE=release'],
      Secrets: [{ SecretName: 'db' }],
    });
    expect(spec.TaskTemplate.Networks).toEqual([{ Target: 'backend', Aliases: ['api'] }]);
    expect(spec.TaskTemplate.Placement).toEqual({ Constraints: ['node.role==manager'] });
    expect(spec.Labels).toEqual(req.labels);
    expect(taskJobSpec({ ...req, networks: ['jobs'] }, like).TaskTemplate.Networks).toEqual([
      { Target: 'jobs' },
    ]);
  });

  it('reads its one task: exit code (0 when Docker omits it), rejection, or still waiting', () => {
    const task = (State: string, extra: Record<string, unknown> = {}) => ({
      CreatedAt: '2026-01-01T12:00:00.000Z',
      Status: { State, Timestamp: '2026-01-01T12:00:03.200Z', ...extra },
    });
    expect(judgeTaskJob([])).toEqual({ state: 'waiting', detail: 'no task scheduled yet' });
    expect(judgeTaskJob([task('preparing')])).toEqual({ state: 'waiting', detail: 'preparing' });
    expect(judgeTaskJob([task('complete', { ContainerStatus: {} })])).toEqual({
      state: 'exited',
      exitCode: 0,
      durationMs: 3_200,
    });
    expect(
      judgeTaskJob([task('failed', { Err: 'task: non-zero exit (3)', ContainerStatus: { ExitCode: 3 } })]),
    ).toEqual({ state: 'exited', exitCode: 3, durationMs: 3_200 });
    expect(judgeTaskJob([task('rejected', { Err: 'No such image: app:9' })])).toMatchObject({
      state: 'rejected',
      message: 'rejected: No such image: app:9',
    });
  });
});

describe('the job’s log', () => {
  const frame = (stream: number, text: string | Buffer) => {
    const body = typeof text === 'string' ? Buffer.from(text) : text;
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };

  it('demultiplexes Docker’s stdout/stderr frames, a character split across two frames included', () => {
    const euro = Buffer.from('€');
    const data = Buffer.concat([
      frame(1, 'migrating\n'),
      frame(2, 'warn: slow\n'),
      frame(1, euro.subarray(0, 1)),
      frame(1, Buffer.concat([euro.subarray(1), Buffer.from(' done\n')])),
    ]);
    expect(demuxDockerLog(data)).toBe('migrating\nwarn: slow\n€ done\n');
  });

  it('takes a log without frames (a TTY) as it is', () => {
    expect(demuxDockerLog(Buffer.from('plain text\n'))).toBe('plain text\n');
  });

  it('keeps the last lines, without terminal escapes or control characters', () => {
    const text = `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n\x1b[31mred\x1b[0m\r\n\n`;
    const lines = lastLogLines(text, 20);
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('line 11');
    expect(lines.at(-1)).toBe('red');
  });
});

describe('the thread reply', () => {
  const task = { name: 'migrate', timeoutMs: 600_000 };
  const where = { job: 'svc-task-migrate-12345678', image: 'app:1.2.0' };
  const failed = { outcome: 'exited' as const, exitCode: 3, durationMs: 1_200 };

  it('says what happened and shows the lines in a code block, escaped, a ``` unable to close it', () => {
    const text = taskThreadText(task, failed, ['<!channel> & <@U1>', '```', 'bye'], where);
    expect(text).toBe(
      '*Task migrate*: exit 3 after 1.2 s (job `svc-task-migrate-12345678`, app:1.2.0)\n' +
        'Last 3 lines of its output:\n```\n&lt;!channel&gt; &amp; &lt;@U1&gt;\n`\u200b`\u200b`\nbye\n```',
    );
  });

  it('drops the oldest lines to stay within the limit, and says how many are shown', () => {
    const lines = Array.from({ length: 20 }, (_, i) => `${i}`.padEnd(300, '.'));
    const text = taskThreadText(task, failed, lines, where, 2_000);
    expect(text.length).toBeLessThanOrEqual(2_000);
    expect(text).toContain(`${'19'.padEnd(300, '.')}\n\`\`\``);
    expect(text).not.toContain('\n0....');
    expect(text).toMatch(/Last \d lines of its output/);
  });

  it('says when there was no output, and what a timeout did', () => {
    expect(taskThreadText(task, { outcome: 'timeout', durationMs: 600_000 }, [], where)).toBe(
      '*Task migrate*: timed out after 10m; its job was removed (job `svc-task-migrate-12345678`, app:1.2.0)\nIt wrote no output.',
    );
  });
});

/** A fake Swarm holding at most one job, as Docker would: created once, then read and removed. */
function fakeSwarm(job?: { createdAt?: number; job: TaskJobState }) {
  const calls: string[] = [];
  let current = job;
  return {
    calls,
    set: (j: typeof job) => {
      current = j;
    },
    swarmFor: () => ({
      createTaskJob: async (req: TaskJobRequest) => {
        calls.push(`create ${req.name} ${req.image} ${req.command.join(' ')}`);
        if (current) return 'exists';
        current = { createdAt: at('2026-01-01T12:00:00Z'), job: { state: 'waiting', detail: 'pending' } };
        return 'created';
      },
      taskJob: async (name: string) => {
        calls.push(`inspect ${name}`);
        return current;
      },
      serviceLogLines: async () => {
        calls.push('logs');
        return ['applying 0042', 'error: column exists'];
      },
      removeService: async (name: string) => {
        calls.push(`remove ${name}`);
        const had = current !== undefined;
        current = undefined;
        return had;
      },
    }),
  };
}

describe('the task step', () => {
  const task: StepTask = { name: 'migrate', when: 'before', command: ['./migrate'], timeoutMs: 60_000 };
  const now = at('2026-01-01T12:00:10Z');
  const run = async (
    s: ReturnType<typeof fakeSwarm>,
    st: Step,
    posts: Array<[string, string, string]> = [],
  ) => {
    const r: Release = release({ steps: [st] });
    const ctx = fakeContext({
      swarmFor: s.swarmFor,
      now: () => now,
      releaseThread: async (id: string, text: string, key: string) => {
        posts.push([id, text, key]);
      },
    });
    const out = await runTask(ctx, r, st);
    if (out.kind === 'wait') out.patch?.(r, r.steps[0] as Step);
    else out.patch?.(r);
    return { out, step: r.steps[0] as Step };
  };
  const name = taskJobName('fdunit-staging-api-green', release().id, 'migrate');

  it('creates the job with the release’s image and command, and records when', async () => {
    const s = fakeSwarm();
    const { out, step: st } = await run(s, step('task', { task: { ...task } }));
    expect(s.calls).toEqual([`inspect ${name}`, `create ${name} flightdeck/testapp:1.2.0 ./migrate`]);
    expect(out).toMatchObject({ kind: 'wait', detail: `started job ${name}` });
    expect(st.task?.createdAt).toBe(now);
  });

  it('after a crash before createdAt was recorded, waits on the job it finds instead of creating one', async () => {
    const s = fakeSwarm({
      createdAt: at('2026-01-01T12:00:00Z'),
      job: { state: 'waiting', detail: 'running' },
    });
    const { out, step: st } = await run(s, step('task', { task: { ...task } }));
    expect(s.calls).toEqual([`inspect ${name}`]);
    expect(out).toMatchObject({ kind: 'wait', detail: `job ${name}: running for 10.0 s (timeout 1m)` });
    expect(st.task?.createdAt).toBe(at('2026-01-01T12:00:00Z'));
  });

  it('records a finished job’s result and posts its last lines once, before removing it', async () => {
    const s = fakeSwarm({ job: { state: 'exited', exitCode: 3, durationMs: 1_200 } });
    const posts: Array<[string, string, string]> = [];
    const { out, step: st } = await run(
      s,
      step('task', { task: { ...task, createdAt: now - 5_000 } }),
      posts,
    );
    expect(s.calls).toEqual([`inspect ${name}`, 'logs']);
    expect(out).toMatchObject({ kind: 'wait', until: now });
    expect(st.task?.result).toEqual({ outcome: 'exited', exitCode: 3, durationMs: 1_200 });
    expect(posts).toHaveLength(1);
    expect(posts[0]?.[2]).toBe(`${release().id}-task-migrate`);
    expect(posts[0]?.[1]).toContain('error: column exists');

    // The next run removes the job and fails the step.
    const next = await run(s, st);
    expect(s.calls.slice(2)).toEqual([`remove ${name}`]);
    expect(next.out).toEqual({ kind: 'fail', reason: 'migrate: exit 3 after 1.2 s — last lines in thread' });
  });

  it('passes on exit 0, removing the job (again after a crash, harmlessly)', async () => {
    const s = fakeSwarm();
    const done = step('task', {
      task: { ...task, createdAt: now, result: { outcome: 'exited', exitCode: 0, durationMs: 3_200 } },
    });
    expect((await run(s, done)).out).toEqual({ kind: 'done', detail: 'exit 0 in 3.2 s' });
    expect(s.calls).toEqual([`remove ${name}`]);
  });

  it('times out: logs read, the result recorded, then the job removed and the step failed', async () => {
    const s = fakeSwarm({ job: { state: 'waiting', detail: 'running' } });
    const { step: st } = await run(s, step('task', { task: { ...task, createdAt: now - 61_000 } }));
    expect(st.task?.result).toMatchObject({ outcome: 'timeout' });
    const next = await run(s, st);
    expect(s.calls.at(-1)).toBe(`remove ${name}`);
    expect(next.out).toMatchObject({
      kind: 'fail',
      reason: expect.stringMatching(/^migrate: timed out after 1m/),
    });
  });

  it('fails, without running it again, when its job vanished before it finished', async () => {
    const s = fakeSwarm();
    const { out } = await run(s, step('task', { task: { ...task, createdAt: now - 1_000 } }));
    expect(s.calls).toEqual([`inspect ${name}`]);
    expect(out).toMatchObject({ kind: 'fail', reason: expect.stringMatching(/removed before it finished/) });
  });
});
