import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Upstream, upstreamName } from '../src/integrations/nginx.js';
import { TestDns } from './helpers/dns-server.js';
import { createEdgeUser, edgeDriver, startEdge } from './helpers/edge.js';
import type { TestNginx } from './helpers/nginx-server.js';
import { freePort, waitFor } from './helpers/ports.js';
import { TestRedis } from './helpers/redis-server.js';

// Backends addressed by name, as Swarm's dnsrr services are (`tasks.<service>` answers every task):
// a real nginx edge resolves them through a DNS server that the test changes as tasks come and go.
// Each "task" is an HTTP server on its own loopback address, all on one port, as tasks are.
const PREFIX = 'fdnames';
const UPSTREAM = upstreamName(PREFIX, 'staging', 'api');
const redis = new TestRedis();
const dns = new TestDns();
const dir = mkdtempSync(join(tmpdir(), 'fd-edge-names-'));
const tasks = new Map<string, Server>();
let port = 0;
let client: Redis;
let edge: TestNginx;
const BLUE = 'tasks.api-blue';
const GREEN = 'tasks.api-green';

async function startTask(colour: string, ip: string): Promise<void> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-task': ip });
    res.end(req.url === '/health' ? 'ok\n' : `${colour}\n`);
  });
  await new Promise<void>((r) => server.listen(port, ip, () => r()));
  tasks.set(ip, server);
}

async function stopTask(ip: string): Promise<void> {
  const server = tasks.get(ip);
  tasks.delete(ip);
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
}

const upstreams = (blue: number, green: number): Upstream[] => [
  {
    name: UPSTREAM,
    servers: [
      { colour: 'blue', address: `${BLUE}:${port}`, weight: blue },
      { colour: 'green', address: `${GREEN}:${port}`, weight: green },
    ],
  },
];
const driver = () => edgeDriver(client, { redisPrefix: 'fdtest', group: PREFIX, confirmTimeoutMs: 5_000 });

/** n requests (keep-alive, as a browser or another proxy sends them): colour and task of each. */
async function sample(n: number) {
  const out = { blue: 0, green: 0, failed: 0, byTask: new Map<string, number>() };
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${edge.port}/${UPSTREAM}/`).catch(() => undefined);
    const body = res ? (await res.text()).trim() : '';
    if (!res?.ok || (body !== 'blue' && body !== 'green')) {
      out.failed += 1;
      continue;
    }
    out[body] += 1;
    const task = res.headers.get('x-task') ?? '?';
    out.byTask.set(task, (out.byTask.get(task) ?? 0) + 1);
  }
  return out;
}

beforeAll(async () => {
  await redis.start();
  client = redis.client();
  await createEdgeUser(client, 'fdtest', PREFIX);
  await dns.start();
  port = await freePort();
  for (const [colour, ip] of [
    ['blue', '127.0.1.1'],
    ['blue', '127.0.1.2'],
    ['green', '127.0.2.1'],
    ['green', '127.0.2.2'],
  ] as const)
    await startTask(colour, ip);
  dns.records.set(BLUE, ['127.0.1.1', '127.0.1.2']);
  dns.records.set(GREEN, ['127.0.2.1', '127.0.2.2']);
  edge = await startEdge({
    name: 'edge-names',
    dir,
    group: PREFIX,
    redisPrefix: 'fdtest',
    redisPort: redis.port,
    resolvers: [dns.address],
    resolveIntervalMs: 300,
    upstreams: [
      {
        name: UPSTREAM,
        addresses: [`${BLUE}:${port}`, `${GREEN}:${port}`],
        keepalive: 8,
        maxFails: 1,
        failTimeoutMs: 30_000,
      },
    ],
  });
}, 120_000);

afterAll(async () => {
  edge?.destroy();
  for (const ip of [...tasks.keys()]) await stopTask(ip);
  dns.stop();
  client?.disconnect();
  await redis.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('backends by service name (nginx.driver: edge)', () => {
  it('splits by colour exactly and spreads each colour over all its tasks', async () => {
    await driver().apply(upstreams(80, 20));
    const s = await sample(100);
    expect([s.blue, s.green, s.failed]).toEqual([80, 20, 0]);
    expect(s.byTask.get('127.0.1.1')).toBe(40);
    expect(s.byTask.get('127.0.1.2')).toBe(40);
    expect(s.byTask.get('127.0.2.1')).toBe(10);
    expect(s.byTask.get('127.0.2.2')).toBe(10);
  });

  it('a task that dies before DNS drops it costs no request: the retry stays on its colour', async () => {
    await stopTask('127.0.1.2'); // still resolvable, refuses connections
    const s = await sample(100);
    expect([s.blue, s.green, s.failed]).toEqual([80, 20, 0]);
    expect(s.byTask.get('127.0.1.2')).toBeUndefined();
    expect(s.byTask.get('127.0.1.1')).toBe(80);
    dns.records.set(BLUE, ['127.0.1.1']);
  });

  it('follows tasks as they come and go', async () => {
    await startTask('green', '127.0.2.3');
    dns.records.set(GREEN, ['127.0.2.1', '127.0.2.2', '127.0.2.3']);
    await waitFor(async () => ((await sample(20)).byTask.get('127.0.2.3') ?? 0) > 0, {
      what: 'the new green task receiving requests',
      timeoutMs: 10_000,
    });
    dns.records.set(GREEN, ['127.0.2.3']);
    await waitFor(
      async () => {
        const s = await sample(20);
        return (
          s.green > 0 && [...s.byTask.keys()].every((t) => !t.startsWith('127.0.2.') || t === '127.0.2.3')
        );
      },
      { what: 'green traffic only on the remaining task', timeoutMs: 10_000 },
    );
    const s = await sample(50);
    expect([s.blue, s.green, s.failed]).toEqual([40, 10, 0]);
  });

  it('refuses to count a change that sends traffic to a colour with no task, and undoes it', async () => {
    await driver().apply(upstreams(100, 0));
    dns.records.set(GREEN, []); // green's tasks are gone; at 0% that harms nobody
    await expect(driver().apply(upstreams(50, 50))).rejects.toThrow(
      /edge edge-names took generation \S+ but fdnames_staging_api: tasks\.api-green has no address; the previous weights are published again and every edge serves them/,
    );
    const s = await sample(20);
    expect([s.blue, s.green, s.failed]).toEqual([20, 0, 0]);
  });
});
