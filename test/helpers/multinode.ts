import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { waitFor } from './ports.js';

/**
 * The multi-node Swarm test bed (scripts/multinode.sh): three dockerd in network namespaces on the
 * bridge 10.77.0.0/24, node 1 the manager, nodes 2 and 3 labelled flightdeck.edge=true, and a
 * registry every node pulls from. What a test gets from it:
 *
 *   const bed = await ensureMultinode();
 *   bed.nodes                     [{ index: 1, hostname: 'fdmn1', socket: '/run/fdmn1.sock', address: '10.77.0.11', … }, …]
 *   bed.image('testapp', '1.0.0') '10.77.0.1:5000/flightdeck/testapp:1.0.0' (what services must use)
 *   bed.docker(1)                 dockerode on node 1 (the manager: services, networks, configs)
 *   bed.docker(3)                 dockerode on node 3 (its containers, images, exec)
 *
 * Label what a test creates with testLabels(id) and remove it with cleanupBed(bed, id).
 */

const ROOT = resolve(import.meta.dirname, '../..');
export const REGISTRY = '10.77.0.1:5000';
/** The label a test's services, networks, configs, secrets and containers carry (value: the test's id). */
export const BED_LABEL = 'flightdeck.multinode.test';
/** Set by the multinode globalSetup once `up` ran, so each test file does not run it again. */
export const BED_UP_ENV = 'FLIGHTDECK_MULTINODE_UP';

export interface BedNode {
  /** i of fdmn<i>: its socket is /run/fdmn<i>.sock, its address 10.77.0.1<i>. */
  index: number;
  hostname: string;
  socket: string;
  address: string;
  /** Swarm's node ID (what a task's NodeID names). */
  id: string;
  role: string;
  labels: Record<string, string>;
}

export interface Multinode {
  nodes: BedNode[];
  registry: string;
  /** The registry reference of a bed image: image('testapp', '1.0.0'), image('flightdeck/node-base', '20'). */
  image(name: string, tag: string): string;
  /** A dockerode client for node i (1 is the manager). */
  docker(i: number): Docker;
  /** The node a task ran on (by its NodeID), if it is one of the bed's. */
  nodeById(id: string): BedNode | undefined;
}

/** Runs scripts/multinode.sh with argv (no shell); resolves with its exit code and output. */
export function multinodeScript(
  command: 'up' | 'down' | 'status',
): Promise<{ code: number; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('bash', [resolve(ROOT, 'scripts/multinode.sh'), command], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code: code ?? 1, output }));
  });
}

const clients = new Map<number, Docker>();
function nodeDocker(i: number): Docker {
  let d = clients.get(i);
  if (!d) {
    d = new Docker({ socketPath: `/run/fdmn${i}.sock`, version: 'v1.41' });
    clients.set(i, d);
  }
  return d;
}

async function describeBed(): Promise<Multinode> {
  const listed = (await nodeDocker(1).listNodes()) as any[];
  const nodes = listed
    .filter((n) => n.Status?.State === 'ready')
    .map((n): BedNode => {
      const hostname = String(n.Description?.Hostname ?? '');
      const index = Number(/^fdmn(\d+)$/.exec(hostname)?.[1] ?? 0);
      return {
        index,
        hostname,
        socket: `/run/fdmn${index}.sock`,
        address: String(n.Status?.Addr ?? ''),
        id: String(n.ID),
        role: String(n.Spec?.Role ?? ''),
        labels: { ...(n.Spec?.Labels ?? {}) },
      };
    })
    .filter((n) => n.index > 0)
    .sort((a, b) => a.index - b.index);
  return {
    nodes,
    registry: REGISTRY,
    image: (name, tag) => `${REGISTRY}/${name.includes('/') ? name : `flightdeck/${name}`}:${tag}`,
    docker: (i) => {
      if (!nodes.some((n) => n.index === i)) throw new Error(`the bed has no node ${i}`);
      return nodeDocker(i);
    },
    nodeById: (id) => nodes.find((n) => n.id === id),
  };
}

let bed: Promise<Multinode> | undefined;

/** Brings the bed up (once per test process; `up` is idempotent) and describes it. */
export function ensureMultinode(): Promise<Multinode> {
  bed ??= (async () => {
    if (process.env[BED_UP_ENV] !== '1') {
      const { code, output } = await multinodeScript('up');
      if (code !== 0) throw new Error(`scripts/multinode.sh up failed (${code}):\n${output.slice(-4000)}`);
    }
    return describeBed();
  })().catch((err) => {
    bed = undefined; // let a later call try again
    throw err;
  });
  return bed;
}

/** Labels for what a test creates, so cleanupBed finds it. */
export const testLabels = (id: string): Record<string, string> => ({ [BED_LABEL]: id });

/** A name for a test's objects: short, valid for services and networks, unique per run. */
export const uniqueId = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296)
    .toString(36)
    .padStart(2, '0')}`;

/**
 * Removes what carries testLabels(id): services (and waits until their containers are gone from
 * every node), containers, networks, configs and secrets.
 */
export async function cleanupBed(b: Multinode | undefined, id: string): Promise<void> {
  if (!b) return;
  const manager = b.docker(1);
  const filters = { label: [`${BED_LABEL}=${id}`] };
  const services = (await manager.listServices({ filters })) as any[];
  await Promise.all(
    services.map((s) =>
      manager
        .getService(s.ID)
        .remove()
        .catch(() => {}),
    ),
  );
  const serviceIds = new Set(services.map((s) => String(s.ID)));
  const nodes = b.nodes.map((n) => b.docker(n.index));
  await Promise.all(
    nodes.map(async (d) => {
      const mine = (await d.listContainers({ all: true, filters })) as any[];
      await Promise.all(
        mine.map((c) =>
          d
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {}),
        ),
      );
    }),
  );
  // Swarm removes a service's containers asynchronously; its network stays in use until then.
  await waitFor(
    async () => {
      for (const d of nodes) {
        const tasks = (await d.listContainers({
          all: true,
          filters: { label: ['com.docker.swarm.service.id'] },
        })) as any[];
        if (tasks.some((c) => serviceIds.has(c.Labels?.['com.docker.swarm.service.id']))) return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: `the containers of ${id}'s services to go` },
  ).catch(() => {});
  const networks = (await manager.listNetworks({ filters })) as any[];
  for (const n of networks) {
    await waitFor(
      () =>
        manager
          .getNetwork(n.Id)
          .remove()
          .then(() => true),
      { timeoutMs: 30_000, intervalMs: 500, what: `network ${n.Name} to be removable` },
    ).catch(() => {});
  }
  const configs = (await manager.listConfigs({ filters })) as any[];
  await Promise.all(
    configs.map((c) =>
      manager
        .getConfig(c.ID)
        .remove()
        .catch(() => {}),
    ),
  );
  const secrets = (await manager.listSecrets({ filters })) as any[];
  await Promise.all(
    secrets.map((s) =>
      manager
        .getSecret(s.ID)
        .remove()
        .catch(() => {}),
    ),
  );
}

/** Pulls an image onto one node (standalone containers are not pulled for; Swarm tasks are). */
export async function pullImage(d: Docker, ref: string): Promise<void> {
  const stream = await d.pull(ref);
  await new Promise<void>((done, fail) =>
    d.modem.followProgress(stream, (err) => (err ? fail(err) : done())),
  );
}

/** Runs a command (argv) in a running container; its exit code and output. */
export async function execIn(
  d: Docker,
  containerId: string,
  cmd: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const exec = await d.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c) => {
    stdout += c;
  });
  err.on('data', (c) => {
    stderr += c;
  });
  d.modem.demuxStream(stream, out, err);
  await new Promise<void>((done) => {
    stream.once('end', () => done());
    stream.once('close', () => done());
  });
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, stdout, stderr };
}

/** The service's tasks Swarm wants running, with the bed node each is on. */
export async function runningTasks(
  b: Multinode,
  service: string,
): Promise<Array<{ id: string; state: string; node?: BedNode; err?: string }>> {
  const tasks = (await b
    .docker(1)
    .listTasks({ filters: { service: [service], 'desired-state': ['running'] } })) as any[];
  return tasks.map((t) => ({
    id: String(t.ID),
    state: String(t.Status?.State),
    node: b.nodeById(String(t.NodeID ?? '')),
    err: t.Status?.Err,
  }));
}
