import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/ports.js';
import {
  deployRelease,
  promoteRelease,
  releases,
  soakingAt,
  waitProgress,
  waitRelease,
} from '../helpers/release.js';
import { EdgeBed, Probe } from './helpers/edge-bed.js';

// The seed's topology on a real 3-node Swarm: two nginx edges on the two nodes labelled for edges,
// the flightdeck worker on the third (the manager), colour services by name on an overlay network,
// images pulled from the registry. A probe sends requests through both edges the whole time.
const bed = new EdgeBed();
let probe: Probe;
let edgeNodes: number[] = [];

/**
 * `green`% green within 4% of 200 requests: an edge's split is exact over the requests it gets, but
 * the probe's two loops share it and finish out of order, and the window opens at any moment.
 */
function expectSplit(s: { blue: number; green: number; failed: number }, green: number): void {
  expect(s.failed).toBe(0);
  const share = (100 * s.green) / (s.blue + s.green);
  expect(Math.abs(share - green), JSON.stringify(s)).toBeLessThanOrEqual(4);
}
const through = (node: number) => probe.measure(bed.edgeUrl(node), 200);

beforeAll(async () => {
  await bed.start();
  edgeNodes = await bed.edgeNodes();
  probe = new Probe(() => edgeNodes.map((i) => bed.edgeUrl(i))).start();
}, 900_000);

afterAll(async () => {
  await probe?.stop();
  await bed.stop();
}, 300_000);

describe('flightdeck on a 3-node Swarm with two nginx edges', () => {
  it('places the edges on the two edge nodes and the worker on the third', async () => {
    expect(edgeNodes).toEqual([2, 3]);
    const ready = (await (await fetch(`${bed.workerUrl}/readyz`)).json()) as {
      checks: Record<string, string>;
    };
    expect(ready.checks).toMatchObject({ redis: 'ok' });
  });

  it('releases 10 → 50 → 100 with every step served by both edges, no request failed', async () => {
    const id = await deployRelease(bed, 'api 1.1.0');
    for (const percent of [10, 50, 100]) {
      await waitRelease(bed, id, soakingAt(percent), `soaking at ${percent}%`, 240_000);
      for (const node of edgeNodes) expectSplit(await through(node), percent);
      // The step says which edges took it.
      await waitProgress(
        bed,
        id,
        new RegExp(
          `${percent}% → green \\(nginx taken by 2 edges \\(edge\\d-\\w+, edge\\d-\\w+\\) in \\d+ ms\\)`,
        ),
      );
      await promoteRelease(bed, 'api');
    }
    await waitRelease(bed, id, (r) => r.status === 'completed', 'completed', 240_000);
    expect(probe.failed).toEqual([]);
    expect(probe.served).toBeGreaterThan(100);
  });

  it('an edge killed mid-release is named, the step goes on with the other, and it comes back on the current split', async () => {
    const id = await deployRelease(bed, 'api 1.2.0');
    await waitRelease(bed, id, soakingAt(10), 'soaking at 10%', 240_000);
    // Kill node 2's edge container (as a crash would); Swarm starts a new task there.
    const d2 = bed.bed.docker(2);
    const [edge] = (await d2.listContainers({
      filters: { label: [`com.docker.swarm.service.name=${bed.edgeService}`] },
    })) as Array<{ Id: string }>;
    const victim = edge?.Id as string;
    const probing = edgeNodes;
    edgeNodes = [3]; // the load balancer in front takes node 2 out
    await probe.measure(bed.edgeUrl(3), 4); // no probe request to node 2 is still in flight
    await d2.getContainer(victim).kill();
    await promoteRelease(bed, 'api');
    await waitRelease(bed, id, soakingAt(50), 'soaking at 50%', 240_000);
    await waitProgress(
      bed,
      id,
      /50% → blue \(nginx taken by 1 edge \(edge\d-\w+\) in \d+ ms; not reporting: edge\d-\w+\)|50% → blue \(nginx taken by 2 edges/,
    );
    // Back (a new task on node 2): from its first answered request it serves 50/50.
    await waitFor(async () => (await fetch(bed.edgeUrl(2)).catch(() => undefined))?.ok, {
      timeoutMs: 120_000,
      what: "node 2's edge answering again",
    });
    edgeNodes = probing;
    expectSplit(await through(2), 50);
    await promoteRelease(bed, 'api');
    await waitRelease(bed, id, soakingAt(100), 'soaking at 100%', 240_000);
    await promoteRelease(bed, 'api');
    await waitRelease(bed, id, (x) => x.status === 'completed', 'completed', 240_000);
    expect(probe.failed).toEqual([]);
    expect(await releases(bed).get(id)).toMatchObject({ status: 'completed' });
  });

  it('a new edge replica added mid-release serves the current split from its first request', async () => {
    const id = await deployRelease(bed, 'api 2.0.0');
    const atTen = await waitRelease(bed, id, soakingAt(10), 'soaking at 10%', 240_000);
    // Node 1 becomes an edge node too; a third replica starts there.
    const node1 = bed.bed.nodes.find((n) => n.index === 1);
    const node = bed.manager.getNode(node1?.id as string);
    const info = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, any> };
    await node.update({
      version: info.Version.Index,
      ...info.Spec,
      Labels: { ...info.Spec.Labels, 'flightdeck.edge': 'true' },
    });
    const svc = bed.manager.getService(bed.edgeService);
    const spec = (await svc.inspect()) as { Version: { Index: number }; Spec: Record<string, any> };
    await svc.update({ version: spec.Version.Index, ...spec.Spec, Mode: { Replicated: { Replicas: 3 } } });
    try {
      const first = await waitFor(
        async () => {
          const res = await fetch(bed.edgeUrl(1)).catch(() => undefined);
          return res ? { status: res.status, body: (await res.text()).trim() } : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 50, what: "node 1's new edge answering" },
      );
      // Its first answer already follows the weights (green 10%, blue the rest): no 503, no default.
      expect(first.status).toBe(200);
      edgeNodes = [1, ...edgeNodes];
      expectSplit(await through(1), atTen.toColour === 'green' ? 10 : 90);
      await bed.waitEdgesInSync(3);
    } finally {
      edgeNodes = edgeNodes.filter((n) => n !== 1);
      await svc.update({
        version: ((await svc.inspect()) as { Version: { Index: number } }).Version.Index,
        ...spec.Spec,
        Mode: { Replicated: { Replicas: 2 } },
      });
      const now = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, any> };
      const { 'flightdeck.edge': _, ...labels } = now.Spec.Labels ?? {};
      await node.update({ version: now.Version.Index, ...now.Spec, Labels: labels });
    }
    await promoteRelease(bed, 'api');
    await waitRelease(bed, id, soakingAt(50), 'soaking at 50%', 240_000);
    await promoteRelease(bed, 'api');
    await waitRelease(bed, id, soakingAt(100), 'soaking at 100%', 240_000);
    await promoteRelease(bed, 'api');
    await waitRelease(bed, id, (x) => x.status === 'completed', 'completed', 240_000);
    expect(probe.failed).toEqual([]);
  });

  it('a node drained mid-release: its tasks move, the release goes on, no request fails and no colour is left without a task', async () => {
    const id = await deployRelease(bed, 'api 1.1.0');
    await waitRelease(bed, id, soakingAt(10), 'soaking at 10%', 240_000);
    const node2 = bed.bed.nodes.find((n) => n.index === 2);
    const node = bed.manager.getNode(node2?.id as string);
    const setAvailability = async (availability: 'drain' | 'active') => {
      const info = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, any> };
      await node.update({ version: info.Version.Index, ...info.Spec, Availability: availability });
    };
    edgeNodes = [3]; // node 2's edge goes with the drain: the load balancer in front takes it out
    await probe.measure(bed.edgeUrl(3), 4);
    await setAvailability('drain');
    try {
      // Every colour task leaves node 2 and runs elsewhere (one per node: nodes 1 and 3).
      await waitFor(
        async () => {
          for (const c of ['blue', 'green']) {
            const tasks = (await bed.manager.listTasks({
              filters: { service: [bed.colourService('api', c)], 'desired-state': ['running'] },
            })) as any[];
            const on = tasks
              .filter((t) => t.Status?.State === 'running')
              .map((t) => bed.bed.nodeById(t.NodeID)?.index);
            if (on.length !== 2 || on.includes(2)) return false;
          }
          return true;
        },
        { timeoutMs: 180_000, intervalMs: 500, what: 'the colour tasks to leave node 2' },
      );
      for (const percent of [10, 50]) {
        await promoteRelease(bed, 'api');
        await waitRelease(bed, id, soakingAt(percent === 10 ? 50 : 100), 'the next soak', 240_000);
      }
      const r = await waitRelease(bed, id, soakingAt(100), 'soaking at 100%', 1_000);
      expectSplit(await through(3), r.toColour === 'green' ? 100 : 0);
      await promoteRelease(bed, 'api');
      await waitRelease(bed, id, (x) => x.status === 'completed', 'completed', 240_000);
    } finally {
      await setAvailability('active');
    }
    expect(probe.failed).toEqual([]);
    // Node 2's edge comes back and catches up before it serves.
    await bed.waitEdgesInSync(2, 180_000);
    edgeNodes = [2, 3];
    const done = await releases(bed).get(id);
    expectSplit(await through(2), done?.toColour === 'green' ? 100 : 0);
  });
});
