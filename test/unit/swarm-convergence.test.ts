import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  describeFailedTasks,
  judgeConvergence,
  REPLICAS_LABEL,
  type ServiceInfo,
  Swarm,
} from '../../src/integrations/swarm.js';

const NEW = 'flightdeck/testapp:1.2.0';
const OLD = 'flightdeck/testapp:1.1.0';

const service = (extra: Partial<ServiceInfo> = {}): ServiceInfo => ({
  id: 'svc1',
  name: 'api-green',
  version: 7,
  image: NEW,
  previousImage: OLD,
  replicas: 1,
  restoreReplicas: 1,
  updateState: 'updating',
  updateMessage: 'update in progress',
  ...extra,
});

/** A task as `GET /tasks` lists it. */
const task = (
  image: string,
  state: string,
  extra: Record<string, unknown> = {},
  at = '2026-01-01T12:00:00Z',
) => ({
  DesiredState: state === 'running' ? 'running' : 'shutdown',
  Spec: { ContainerSpec: { Image: image } },
  Status: { State: state, Timestamp: at, ...extra },
});

const exited = (code: number, at?: string) =>
  task(NEW, 'failed', { Err: `task: non-zero exit (${code})`, ContainerStatus: { ExitCode: code } }, at);

describe('judgeConvergence', () => {
  it('names the exited task and Swarm’s rollback, not an outside change, when Swarm rolled back', () => {
    const c = judgeConvergence(
      service({
        image: OLD,
        updateState: 'rollback_started',
        updateMessage: 'update rolled back due to failure or early termination of task t1',
      }),
      NEW,
      [task(OLD, 'running'), exited(3)],
    );
    expect(c).toEqual({
      state: 'failed',
      detail:
        'the new task exited with code 3 (task: non-zero exit (3)), and Swarm rolled the update back to flightdeck/testapp:1.1.0 (rollback_started: update rolled back due to failure or early termination of task t1)',
    });
  });

  it('a rollback requested by hand has no task to blame: Swarm’s message says who', () => {
    const c = judgeConvergence(
      service({
        image: OLD,
        updateState: 'rollback_completed',
        updateMessage: 'manually requested rollback',
      }),
      NEW,
      [task(OLD, 'running')],
    );
    expect(c).toEqual({
      state: 'failed',
      detail:
        'Swarm rolled the update back to flightdeck/testapp:1.1.0 (rollback_completed: manually requested rollback)',
    });
  });

  it('an image changed with no rollback is an outside change', () => {
    const c = judgeConvergence(
      service({ image: 'flightdeck/testapp:9.9.9', updateState: 'updating' }),
      NEW,
      [],
    );
    expect(c).toEqual({
      state: 'failed',
      detail:
        'api-green now specifies flightdeck/testapp:9.9.9, not flightdeck/testapp:1.2.0 (changed outside this release)',
    });
  });

  it('names the newest of several exited tasks when Swarm paused the update', () => {
    const c = judgeConvergence(
      service({
        updateState: 'paused',
        updateMessage: 'update paused due to failure or early termination of task t2',
      }),
      NEW,
      [exited(1, '2026-01-01T12:00:00Z'), exited(137, '2026-01-01T12:00:05Z')],
    );
    expect(c).toEqual({
      state: 'failed',
      detail:
        '2 new tasks failed; the last exited with code 137 (task: non-zero exit (137)), and Swarm paused the update (paused: update paused due to failure or early termination of task t2)',
    });
  });

  it('a rejected task (no such image) is said to be rejected, with Swarm’s error', () => {
    const rejected = task(NEW, 'rejected', { Err: 'No such image: flightdeck/testapp:1.2.0' });
    expect(describeFailedTasks([rejected], NEW)).toBe(
      'the new task was rejected (No such image: flightdeck/testapp:1.2.0)',
    );
  });

  it('fails after three failed tasks, saying what the last one did', () => {
    const c = judgeConvergence(service(), NEW, [exited(2), exited(2), exited(2, '2026-01-01T12:01:00Z')]);
    expect(c).toEqual({
      state: 'failed',
      detail: '3 new tasks failed; the last exited with code 2 (task: non-zero exit (2))',
    });
  });

  it('a colour at 0 replicas never counts as converged', () => {
    const c = judgeConvergence(service({ replicas: 0, updateState: 'completed' }), NEW, []);
    expect(c).toEqual({
      state: 'failed',
      detail: 'api-green is scaled to 0 replicas: no task can run flightdeck/testapp:1.2.0',
    });
  });

  it('is converged once every replica runs the image and the update completed', () => {
    const done = service({ updateState: 'completed' });
    expect(judgeConvergence(done, NEW, [task(NEW, 'running')])).toEqual({
      state: 'converged',
      running: 1,
      desired: 1,
    });
    expect(judgeConvergence(service(), NEW, [task(NEW, 'running'), exited(1)])).toEqual({
      state: 'converging',
      running: 1,
      desired: 1,
      detail: '1/1 tasks running flightdeck/testapp:1.2.0, update updating, 1 failed',
    });
  });
});

/** Docker's service API in memory: inspect and update of one service. */
function fakeDocker(spec: Record<string, any>) {
  const state = { spec, version: 1, updates: [] as Array<Record<string, any>> };
  const docker = {
    getService: () => ({
      inspect: async () => ({ ID: 'svc1', Version: { Index: state.version }, Spec: state.spec }),
      update: async (opts: { _body: Record<string, any> }) => {
        state.updates.push(opts._body);
        state.spec = opts._body;
        state.version += 1;
        return {};
      },
    }),
  };
  return { state, swarm: new Swarm(docker as unknown as Docker) };
}

const spec = (replicas: number, image = OLD) => ({
  Name: 'api-blue',
  Labels: { team: 'core' },
  TaskTemplate: { ContainerSpec: { Image: image } },
  Mode: { Replicated: { Replicas: replicas } },
});

describe('a colour scaled to 0 and back (afterRelease: scale-down)', () => {
  it('remembers its replicas when scaled to 0, and the next release restores them in the same update', async () => {
    const { state, swarm } = fakeDocker(spec(3));
    await swarm.scale('api-blue', 0);
    expect(state.spec.Mode).toEqual({ Replicated: { Replicas: 0 } });
    expect(state.spec.Labels).toEqual({ team: 'core', [REPLICAS_LABEL]: '3' });
    expect((await swarm.inspect('api-blue')).restoreReplicas).toBe(3);

    expect(await swarm.updateImage('api-blue', NEW)).toEqual({ changed: true, previous: OLD, scaledTo: 3 });
    expect(state.updates).toHaveLength(2);
    expect(state.spec.TaskTemplate.ContainerSpec.Image).toBe(NEW);
    expect(state.spec.Mode).toEqual({ Replicated: { Replicas: 3 } });
    expect(state.spec.Labels).toEqual({ team: 'core' });
    // Run again (a resumed step): nothing left to change.
    expect(await swarm.updateImage('api-blue', NEW)).toMatchObject({ changed: false });
    expect(state.updates).toHaveLength(2);
  });

  it('a colour at 0 that already has the image is still scaled back', async () => {
    const { state, swarm } = fakeDocker(spec(0, NEW));
    expect(await swarm.updateImage('api-blue', NEW)).toEqual({ changed: true, previous: NEW, scaledTo: 1 });
    expect(state.spec.Mode).toEqual({ Replicated: { Replicas: 1 } });
  });
});

describe('judgeConvergence: the tasks health checks may begin on', () => {
  const running = (id: string, image = NEW) => ({ ...task(image, 'running'), ID: id });

  it('names the running tasks once as many as desired run the image, while Swarm still monitors the update', () => {
    const c = judgeConvergence(service({ replicas: 2 }), NEW, [
      running('t2'),
      running('t1'),
      running('t0', OLD),
    ]);
    expect(c).toMatchObject({ state: 'converging', running: 2, tasks: ['t1', 't2'] });
  });

  it('names none while fewer than desired run it', () => {
    const c = judgeConvergence(service({ replicas: 2 }), NEW, [running('t1'), running('t0', OLD)]);
    expect(c).toMatchObject({ state: 'converging', running: 1 });
    expect(c).not.toHaveProperty('tasks');
  });

  it('names the tasks that converged', () => {
    const c = judgeConvergence(service({ updateState: 'completed' }), NEW, [running('t1')]);
    expect(c).toEqual({ state: 'converged', running: 1, desired: 1, tasks: ['t1'] });
  });

  it('counts a task Swarm is starting (its container about to run), not one still preparing', () => {
    const starting = { ...task(NEW, 'starting'), DesiredState: 'running' };
    const preparing = { ...task(NEW, 'preparing'), DesiredState: 'running' };
    expect(judgeConvergence(service(), NEW, [starting])).toMatchObject({ starting: 1 });
    expect(judgeConvergence(service(), NEW, [preparing])).not.toHaveProperty('starting');
  });
});
