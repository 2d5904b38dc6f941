import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  DockerUnavailable,
  describeFailedNodes,
  judgeConvergence,
  type ServiceInfo,
  Swarm,
} from '../../src/integrations/swarm.js';

// The multi-node bed's names (scripts/multinode.sh): Swarm's node IDs and the hostnames they resolve to.
const NEW = '10.77.0.1:5000/flightdeck/testapp:9.9.9';
const OLD = '10.77.0.1:5000/flightdeck/testapp:1.0.0';
const NODES = new Map([
  ['r5p7yi72759z56kn82m2kfw45', 'fdmn1'],
  ['oynlttrxilz4j1koilt44iuxs', 'fdmn2'],
  ['vqtznpillwp83ns0omlnwyffw', 'fdmn3'],
]);
const [N1, N2, N3] = [...NODES.keys()];

const service = (extra: Partial<ServiceInfo> = {}): ServiceInfo => ({
  id: 'svc1',
  name: 'api-green',
  version: 7,
  image: NEW,
  previousImage: OLD,
  replicas: 3,
  restoreReplicas: 3,
  updateState: 'updating',
  ...extra,
});

/** A task as `GET /tasks` lists it, on a node. */
const task = (nodeId: string | undefined, state: string, status: Record<string, unknown>, second = 0) => ({
  NodeID: nodeId,
  DesiredState: state === 'running' ? 'running' : 'shutdown',
  Spec: { ContainerSpec: { Image: state === 'running' ? OLD : NEW } },
  Status: { State: state, Timestamp: `2026-01-01T12:00:0${second}Z`, ...status },
});

// What dockerd 20.10 reports when the registry has no such tag (seen on the bed).
const rejected = (nodeId: string | undefined, second = 0) =>
  task(
    nodeId,
    'rejected',
    { Message: 'preparing', Err: `No such image: ${NEW}`, ContainerStatus: { ExitCode: 0 } },
    second,
  );
const exited = (nodeId: string, code: number, second = 0) =>
  task(
    nodeId,
    'failed',
    { Err: `task: non-zero exit (${code})`, ContainerStatus: { ExitCode: code } },
    second,
  );

describe('a convergence failure names the node', () => {
  it('rejected tasks: Swarm’s error and the node’s hostname', () => {
    expect(
      judgeConvergence(service(), NEW, [rejected(N3, 1), rejected(N3, 2), rejected(N3, 3)], NODES),
    ).toEqual({
      state: 'failed',
      detail: `3 new tasks failed; the last was rejected (No such image: ${NEW}); on node fdmn3`,
    });
  });

  it('after Swarm’s words when it rolled back, so the message reads as before up to there', () => {
    const c = judgeConvergence(
      service({ image: OLD, updateState: 'rollback_started', updateMessage: 'update rolled back' }),
      NEW,
      [task(N1, 'running', {}), exited(N2, 3)],
      NODES,
    );
    expect(c).toEqual({
      state: 'failed',
      detail: `the new task exited with code 3 (task: non-zero exit (3)), and Swarm rolled the update back to ${OLD} (rollback_started: update rolled back); on node fdmn2`,
    });
  });

  it('tasks failing on several nodes: each node once, and where the last one ran', () => {
    expect(describeFailedNodes([exited(N3, 1, 1), exited(N1, 1, 2), exited(N3, 1, 3)], NEW, NODES)).toBe(
      'on nodes fdmn1, fdmn3, the last on fdmn3',
    );
  });

  it('a node it cannot name is given by its short ID; a task on no node adds nothing', () => {
    expect(describeFailedNodes([rejected('abcdefghijklmnopqrstuvwxy')], NEW, new Map())).toBe(
      'on node abcdefghijkl',
    );
    expect(
      judgeConvergence(service(), NEW, [
        rejected(undefined, 1),
        rejected(undefined, 2),
        rejected(undefined, 3),
      ]),
    ).toEqual({
      state: 'failed',
      detail: `3 new tasks failed; the last was rejected (No such image: ${NEW})`,
    });
  });

  it('a failure not caused by a task names no node', () => {
    const c = judgeConvergence(service({ replicas: 0 }), NEW, [rejected(N2)], NODES);
    expect(c).toEqual({
      state: 'failed',
      detail: `api-green is scaled to 0 replicas: no task can run ${NEW}`,
    });
  });
});

/** Docker's API in memory: one service, its tasks, and the node list (or a node list that fails). */
function fakeDocker(tasks: unknown[], nodes: unknown[] | Error) {
  const calls = { listNodes: 0 };
  const docker = {
    getService: () => ({
      inspect: async () => ({
        ID: 'svc1',
        Version: { Index: 3 },
        Spec: { TaskTemplate: { ContainerSpec: { Image: NEW } }, Mode: { Replicated: { Replicas: 3 } } },
        UpdateStatus: { State: 'updating' },
      }),
    }),
    listTasks: async () => tasks,
    listNodes: async () => {
      calls.listNodes += 1;
      if (nodes instanceof Error) throw nodes;
      return nodes;
    },
  };
  return { calls, swarm: new Swarm(docker as unknown as Docker) };
}

const nodeList = [...NODES].map(([ID, Hostname]) => ({ ID, Description: { Hostname } }));

describe('Swarm.convergence', () => {
  it('resolves the node IDs of failed tasks to hostnames through the node list', async () => {
    const { swarm, calls } = fakeDocker([rejected(N2, 1), rejected(N3, 2), rejected(N2, 3)], nodeList);
    expect(await swarm.convergence('api-green', NEW)).toEqual({
      state: 'failed',
      detail: `3 new tasks failed; the last was rejected (No such image: ${NEW}); on nodes fdmn2, fdmn3, the last on fdmn2`,
    });
    expect(calls.listNodes).toBe(1);
  });

  it('falls back to node IDs when the engine cannot list nodes (a worker)', async () => {
    const { swarm } = fakeDocker(
      [rejected(N3, 1), rejected(N3, 2), rejected(N3, 3)],
      new Error('This node is not a swarm manager'),
    );
    expect(await swarm.convergence('api-green', NEW)).toMatchObject({
      state: 'failed',
      detail: expect.stringMatching(/; on node vqtznpillwp8$/),
    });
  });

  it('does not list nodes while the service is still converging', async () => {
    const { swarm, calls } = fakeDocker([rejected(N3, 1)], nodeList);
    expect(await swarm.convergence('api-green', NEW)).toMatchObject({ state: 'converging' });
    expect(calls.listNodes).toBe(0);
  });
});

describe('Swarm calls while the engine leaves the swarm', () => {
  it('say the engine is not ready (retryable), not Docker’s advice to run `docker swarm init`', async () => {
    const notManager = Object.assign(
      new Error('(HTTP code 503) unexpected - This node is not a swarm manager.'),
      {
        statusCode: 503,
        json: {
          message:
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
        },
      },
    );
    const docker = {
      getService: () => ({
        inspect: async () => {
          throw notManager;
        },
      }),
    };
    const swarm = new Swarm(docker as unknown as Docker, "staging's Docker endpoint unix:///run/docker.sock");
    const err = await swarm.inspect('api-green').catch((e: Error) => e);
    expect(err).toBeInstanceOf(DockerUnavailable);
    expect((err as DockerUnavailable).retryable).toBe(true);
    expect((err as Error).message).toBe(
      "Docker engine not ready: staging's Docker endpoint unix:///run/docker.sock is not a Swarm manager right now (the engine is restarting, or it left the swarm)",
    );
  });
});
