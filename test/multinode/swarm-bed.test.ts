import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Swarm } from '../../src/integrations/swarm.js';
import {
  cleanupBed,
  ensureMultinode,
  execIn,
  type Multinode,
  pullImage,
  runningTasks,
  testLabels,
  uniqueId,
} from '../helpers/multinode.js';
import { waitFor } from '../helpers/ports.js';

// The bed as a flightdeck user needs it (issue #14): images from its registry on every node, a dnsrr
// service spread one task per node on an overlay network and reachable from a container on any node,
// Swarm's own error (and the node) for an image the registry lacks, and the nginx edge image on the
// edge-labelled nodes, with the Lua Redis client and DNS resolver an edge needs.

const ID = uniqueId('fdmn');
const labels = testLabels(ID);
const NET = `${ID}-net`;
const WEB = `${ID}-web`;
let bed: Multinode;

beforeAll(async () => {
  bed = await ensureMultinode();
});

afterAll(async () => {
  await cleanupBed(bed, ID);
});

/** busybox nslookup's answers (its server line, "Address: 127.0.0.11:53", has a port and is left out). */
const addressesIn = (out: string) =>
  [...out.matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1] ?? '').sort();

describe('the multi-node Swarm bed', () => {
  it('has three ready nodes with their own hostnames, the edge label on 2 and 3, and the images', async () => {
    expect(bed.nodes.map((n) => [n.index, n.hostname, n.address, n.role])).toEqual([
      [1, 'fdmn1', '10.77.0.11', 'manager'],
      [2, 'fdmn2', '10.77.0.12', 'worker'],
      [3, 'fdmn3', '10.77.0.13', 'worker'],
    ]);
    expect(bed.nodes.map((n) => n.labels['flightdeck.edge'] ?? '')).toEqual(['', 'true', 'true']);
    const tags = async (repo: string) =>
      ((await (await fetch(`http://${bed.registry}/v2/${repo}/tags/list`)).json()) as { tags: string[] })
        .tags;
    expect((await tags('flightdeck/testapp')).sort()).toEqual(
      ['1.0.0', '1.1.0', '1.2.0', '2.0.0', 'broken', 'errors', 'unhealthy'].sort(),
    );
    expect(await tags('flightdeck/nginx-local')).toEqual(['1']);
    expect(await tags('flightdeck/node-base')).toEqual(['20']);
  });

  it('runs a dnsrr service one task per node, and a container on another node reaches each task', async () => {
    const manager = bed.docker(1);
    await manager.createNetwork({ Name: NET, Driver: 'overlay', Attachable: true, Labels: labels });
    await manager.createService({
      Name: WEB,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: bed.image('testapp', '1.0.0'),
          // Swarm fills the template per task: each task's /colour says which node serves it.
          Env: ['PORT=8080', 'COLOUR={{.Node.Hostname}}'],
          Labels: labels,
        },
        Placement: { MaxReplicas: 1 },
        Networks: [{ Target: NET }],
        RestartPolicy: { Condition: 'any', Delay: 1_000_000_000 },
      },
      Mode: { Replicated: { Replicas: 3 } },
      // No IPVS on this machine: a virtual IP would not answer (see scripts/multinode.sh).
      EndpointSpec: { Mode: 'dnsrr' },
    } as never);
    const tasks = await waitFor(
      async () => {
        const t = await runningTasks(bed, WEB);
        return t.length === 3 && t.every((x) => x.state === 'running') && t;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `3 running tasks of ${WEB}` },
    );
    expect(tasks.map((t) => t.node?.hostname).sort()).toEqual(['fdmn1', 'fdmn2', 'fdmn3']);

    // A plain container (not a task) on node 2, on the same overlay network: pulled from the registry.
    const d2 = bed.docker(2);
    await pullImage(d2, bed.image('testapp', '1.0.0'));
    const probe = await d2.createContainer({
      name: `${ID}-probe`,
      Image: bed.image('testapp', '1.0.0'),
      Cmd: ['/bin/busybox', 'sleep', '3600'],
      Labels: labels,
      HostConfig: { NetworkMode: NET },
    });
    await probe.start();
    // Task records reach node 2's DNS through Swarm's gossip, a moment after the tasks run.
    const addresses = await waitFor(
      async () => {
        const r = await execIn(d2, probe.id, ['/bin/busybox', 'nslookup', `tasks.${WEB}`]);
        const a = addressesIn(r.stdout);
        return a.length === 3 && a;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: `tasks.${WEB} to resolve to 3 addresses on fdmn2` },
    );
    expect(new Set(addresses).size).toBe(3);
    const served: string[] = [];
    for (const address of addresses) {
      // busybox 1.35's static wget segfaults with -T: `timeout` bounds it instead.
      const get = (path: string) =>
        execIn(d2, probe.id, [
          '/bin/busybox',
          'timeout',
          '5',
          '/bin/busybox',
          'wget',
          '-q',
          '-O',
          '-',
          `http://${address}:8080${path}`,
        ]);
      expect((await get('/version')).stdout.trim()).toBe('1.0.0');
      served.push((await get('/colour')).stdout.trim());
    }
    expect(served.sort()).toEqual(['fdmn1', 'fdmn2', 'fdmn3']);
  });

  it('an image tag the registry lacks: Swarm’s task error and the node, in the convergence failure', async () => {
    const name = `${ID}-missing`;
    const image = bed.image('testapp', `no-such-tag-${ID}`);
    await bed.docker(1).createService({
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: { Image: image, Labels: labels },
        RestartPolicy: { Condition: 'any', Delay: 1_000_000_000 },
      },
      Mode: { Replicated: { Replicas: 1 } },
      EndpointSpec: { Mode: 'dnsrr' },
    } as never);
    // What Swarm itself says, task by task.
    const rejected = await waitFor(
      async () => {
        const all = (await bed.docker(1).listTasks({ filters: { service: [name] } })) as any[];
        return all.find((t) => t.Status?.State === 'rejected' && t.Status?.Err);
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `a rejected task of ${name}` },
    );
    expect(rejected.Status.Err).toMatch(/No such image|manifest unknown|not found/);
    const node = bed.nodeById(rejected.NodeID);
    expect(node?.hostname).toMatch(/^fdmn[123]$/);
    // What flightdeck makes of it: the error and the node by hostname.
    const c = await waitFor(
      async () => {
        const r = await new Swarm(bed.docker(1)).convergence(name, image);
        return r.state === 'failed' && r;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: `${name} to fail` },
    );
    expect(c.state === 'failed' && c.detail).toMatch(
      new RegExp(
        `new tasks failed; the last was rejected \\(No such image: ${image.replace(/[.]/g, '\\.')}\\); on nodes? fdmn[123]`,
      ),
    );
  });

  it('runs the nginx edge image on the edge nodes only, with the Lua Redis client and DNS resolver', async () => {
    const manager = bed.docker(1);
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    // nginx asks Docker's embedded DNS for the dnsrr service's tasks, as a Lua edge does.
    const conf = `server {
  listen 8080;
  location = /tasks {
    content_by_lua_block {
      local redis = require("nginx.redis")
      local resolver = require("nginx.dns.resolver")
      local r, err = resolver:new({ nameservers = { "127.0.0.11" }, retrans = 2, timeout = 1000 })
      if not r then ngx.status = 500 ngx.say(err) return end
      local answers, qerr = r:query("tasks.${WEB}", { qtype = r.TYPE_A })
      if not answers then ngx.status = 502 ngx.say(qerr) return end
      if answers.errcode then ngx.status = 502 ngx.say(answers.errstr) return end
      local out = {}
      for _, a in ipairs(answers) do if a.address then out[#out + 1] = a.address end end
      table.sort(out)
      ngx.say(type(redis.new) == "function" and "redis client" or "no redis client")
      ngx.say(table.concat(out, " "))
    }
  }
}
`;
    const config = await manager.createConfig({
      Name: `${ID}-edge.conf`,
      Labels: labels,
      Data: Buffer.from(conf).toString('base64'),
    });
    const name = `${ID}-edge`;
    await manager.createService({
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: bed.image('nginx-local', '1'),
          Labels: labels,
          Configs: [
            {
              ConfigID: config.id,
              ConfigName: `${ID}-edge.conf`,
              File: { Name: '/etc/nginx/conf.d/edge.conf', UID: '0', GID: '0', Mode: 0o444 },
            },
          ],
        },
        Placement: { Constraints: ['node.labels.flightdeck.edge==true'] },
        Networks: [{ Target: NET }],
      },
      Mode: { Global: {} },
      EndpointSpec: {
        Mode: 'dnsrr',
        Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: port, PublishMode: 'host' }],
      },
    } as never);
    const tasks = await waitFor(
      async () => {
        const t = await runningTasks(bed, name);
        return t.length === 2 && t.every((x) => x.state === 'running') && t;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `${name} running on both edge nodes` },
    );
    expect(tasks.map((t) => t.node?.hostname).sort()).toEqual(['fdmn2', 'fdmn3']);
    const web = await runningTasks(bed, WEB);
    expect(web).toHaveLength(3);
    for (const edge of bed.nodes.filter((n) => n.labels['flightdeck.edge'] === 'true')) {
      const body = await waitFor(
        async () => {
          const res = await fetch(`http://${edge.address}:${port}/tasks`, {
            signal: AbortSignal.timeout(3_000),
          });
          const text = await res.text();
          return res.ok && text.split('\n')[1]?.split(' ').length === 3 && text;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: `${edge.hostname}'s nginx to resolve tasks.${WEB}` },
      );
      expect(body.split('\n')[0]).toBe('redis client');
    }
  });
});
