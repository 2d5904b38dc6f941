import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeApply, type Upstream, upstreamName } from '../src/integrations/nginx.js';
import type { EdgeDriver } from '../src/integrations/nginx-edge.js';
import { edgeKeys } from '../src/integrations/nginx-edge-render.js';
import { createEdgeUser, EDGE_PASSWORD, edgeDriver, startEdge as startTestEdge } from './helpers/edge.js';
import type { TestNginx } from './helpers/nginx-server.js';
import { freePort, waitFor } from './helpers/ports.js';
import { TestRedis } from './helpers/redis-server.js';
import { measureSplit } from './helpers/release.js';

// nginx.driver: edge on one machine: two real nginx edges pull their weights from a real Redis
// through an ACL user that may only read the published weights and write its own reports. The
// colours are two small HTTP servers; the multi-node suite runs the same edges on a Swarm.
const PREFIX = 'fdedge';
const redis = new TestRedis();
const dir = mkdtempSync(join(tmpdir(), 'fd-edge-'));
const colours: Server[] = [];
const edges: Record<string, TestNginx> = {};
let client: Redis;
let addresses: { blue: string; green: string };
const UPSTREAM = upstreamName(PREFIX, 'staging', 'api');
const WEB = upstreamName(PREFIX, 'staging', 'web');
const keys = edgeKeys('fdtest', PREFIX);

function upstreams(blue: number, green: number): Upstream[] {
  return [
    {
      name: UPSTREAM,
      servers: [
        { colour: 'blue', address: addresses.blue, weight: blue },
        { colour: 'green', address: addresses.green, weight: green },
      ],
    },
  ];
}

function driver(opts: { minReplicas?: number; confirmTimeoutMs?: number } = {}): EdgeDriver {
  return edgeDriver(client, { redisPrefix: 'fdtest', group: PREFIX, ...opts });
}

/** An edge named `name` whose static file knows `names` (default: both upstreams). */
async function startEdge(name: string, known = [UPSTREAM, WEB]): Promise<TestNginx> {
  const nginx = await startTestEdge({
    name,
    dir,
    group: PREFIX,
    redisPrefix: 'fdtest',
    redisPort: redis.port,
    upstreams: known.map((n) => ({
      name: n,
      addresses: [addresses.blue, addresses.green],
      keepalive: 16,
      maxFails: 3,
      failTimeoutMs: 10_000,
    })),
  });
  edges[name] = nginx;
  return nginx;
}

const through = (edge: TestNginx, n = 100) => measureSplit(`http://127.0.0.1:${edge.port}/${UPSTREAM}/`, n);

beforeAll(async () => {
  await redis.start();
  client = redis.client();
  // The edge's Redis user: read the published weights, write its own report and its name; nothing else.
  await createEdgeUser(client, 'fdtest', PREFIX);
  const ports = { blue: await freePort(), green: await freePort() };
  for (const [colour, port] of Object.entries(ports)) {
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.url === '/health' ? 'ok\n' : `${colour}\n`);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    colours.push(server);
  }
  addresses = { blue: `127.0.0.1:${ports.blue}`, green: `127.0.0.1:${ports.green}` };
  await startEdge('edge-a');
  await startEdge('edge-b');
}, 120_000);

afterAll(async () => {
  for (const e of Object.values(edges)) e.destroy();
  for (const s of colours) await new Promise((r) => s.close(r));
  client?.disconnect();
  await redis.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('nginx.driver: edge', () => {
  it('counts a change once every edge serves it, and each edge serves exactly the split', async () => {
    const apply = await driver().apply(upstreams(90, 10));
    expect(apply.changed).toBe(true);
    expect(apply.edges?.live).toEqual(['edge-a', 'edge-b']);
    expect(describeApply(apply)).toMatch(/^taken by 2 edges \(edge-a, edge-b\) in \d+ ms$/);
    for (const edge of [edges['edge-a'], edges['edge-b']] as TestNginx[]) {
      expect(await through(edge)).toEqual({ blue: 90, green: 10, other: 0 });
    }
    const status = await driver().status();
    expect(status.desired).toBe(apply.generation);
    expect(status.live.map((r) => [r.name, r.generation, r.health])).toEqual([
      ['edge-a', apply.generation, 'ok'],
      ['edge-b', apply.generation, 'ok'],
    ]);
    // The same weights again: nothing to do.
    expect((await driver().apply(upstreams(90, 10))).changed).toBe(false);
  });

  it('keeps keep-alive requests answered while the weights move', async () => {
    let stop = false;
    const seen = { blue: 0, green: 0, failed: 0 };
    const load = (async () => {
      while (!stop) {
        const res = await fetch(`http://127.0.0.1:${edges['edge-a']?.port}/${UPSTREAM}/`).catch(
          () => undefined,
        );
        const body = res ? (await res.text()).trim() : '';
        if (res?.ok && (body === 'blue' || body === 'green')) seen[body] += 1;
        else seen.failed += 1;
      }
    })();
    for (const [b, g] of [
      [50, 50],
      [10, 90],
      [0, 100],
      [100, 0],
    ] as const)
      await driver().apply(upstreams(b, g));
    stop = true;
    await load;
    expect(seen.failed).toBe(0);
    expect(seen.blue + seen.green).toBeGreaterThan(20);
  });

  it('an edge that stops is named, does not hold the others back, and comes back on the current split before it serves', async () => {
    const b = edges['edge-b'] as TestNginx;
    b.stop();
    // `nginx -s stop` only signals the master: wait until it is gone (it may take a while on a
    // loaded machine), then its report lapses after staleAfter (2 s) and the change goes on without it.
    await waitFor(
      () =>
        fetch(b.probeUrl).then(
          () => false,
          () => true,
        ),
      { timeoutMs: 60_000, what: 'edge-b to stop' },
    );
    const apply = await driver().apply(upstreams(50, 50));
    expect(apply.edges).toEqual({ live: ['edge-a'], missing: ['edge-b'] });
    expect(describeApply(apply)).toMatch(/taken by 1 edge \(edge-a\) in \d+ ms; not reporting: edge-b/);

    // With two edges required, a change now fails, says which edge is missing, and changes nothing.
    await expect(
      driver({ minReplicas: 2, confirmTimeoutMs: 1_000 }).apply(upstreams(20, 80)),
    ).rejects.toThrow(
      /1 edge reports, at least 2 needed \(not reporting: edge-b, last report \d+ s ago\).*the previous weights are published again/,
    );
    expect(await through(edges['edge-a'] as TestNginx)).toEqual({ blue: 50, green: 50, other: 0 });

    // Back: its very first requests already follow the published 50/50 (no stale colour, no 503).
    await b.restart();
    expect(await through(b)).toEqual({ blue: 50, green: 50, other: 0 });
    await waitFor(async () => (await driver().status()).live.length === 2, {
      what: 'edge-b reporting again',
    });
  });

  it('an edge whose file lacks a service refuses the whole change, is named with the reason, and nothing changes', async () => {
    const stale = await startEdge('edge-old', [UPSTREAM]);
    await waitFor(
      async () => (await driver().status()).live.some((r) => r.name === 'edge-old' && r.health === 'ok'),
      {
        what: 'edge-old reporting',
      },
    );
    const next: Upstream[] = [
      ...upstreams(30, 70),
      { name: WEB, servers: upstreams(30, 70)[0]?.servers ?? [] },
    ];
    await expect(driver().apply(next)).rejects.toThrow(
      /edge edge-old refused generation \S+: this edge's config has no upstream fdedge_staging_web \(redeploy the edges.*the previous weights are published again and every edge serves them/,
    );
    for (const edge of [edges['edge-a'], stale] as TestNginx[])
      expect(await through(edge)).toEqual({ blue: 50, green: 50, other: 0 });
    stale.destroy();
    delete edges['edge-old'];
  });

  it('an edge cannot publish weights: its Redis user may only read them and report', async () => {
    const { Redis } = await import('ioredis');
    const edge = new Redis({
      port: redis.port,
      username: 'edge',
      password: EDGE_PASSWORD,
      lazyConnect: true,
      enableReadyCheck: false,
    });
    edge.on('error', () => {});
    await edge.connect();
    expect(await edge.get(keys.desired)).toMatch(/^generation /);
    await expect(edge.set(keys.desired, 'generation x\n')).rejects.toThrow(/NOPERM/);
    await expect(edge.lpush('fdtest:bull:commands:wait', 'x')).rejects.toThrow(/NOPERM/);
    edge.disconnect();
  });
});
