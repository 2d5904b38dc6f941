/**
 * Scenario: nginx.driver: edge. (1) Propagation: from a weight change until every one of two
 * edges serves it, p50/p99 over 50 changes, beside the single-node paths (the Lua driver's live
 * update and the reload driver's write + nginx -t + reload, on one nginx). (2) wrk through both
 * edges while the weights go 10 → 50 → 100 → back, against the same edges with no change.
 * Real nginx edges and Redis on loopback; the edges are the ones the multi-node suite runs on Swarm.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NginxDriver, renderUpstreams, type Upstream, upstreamName } from '../../src/integrations/nginx.js';
import { NginxLuaDriver } from '../../src/integrations/nginx-lua.js';
import { renderLuaUpstreams } from '../../src/integrations/nginx-lua-render.js';
import { createEdgeUser, edgeDriver, startEdge } from '../../test/helpers/edge.js';
import { LUA_MODULES, TestNginx } from '../../test/helpers/nginx-server.js';
import { freePort } from '../../test/helpers/ports.js';
import { TestRedis } from '../../test/helpers/redis-server.js';
import { ms, type Row, type ScenarioResult, times } from '../lib/result.js';
import { median, pct, round, sleep } from '../lib/stats.js';
import { Wrk, type WrkSummary } from '../lib/wrk.js';

const CHANGES = 50;
const GROUP = 'fdbenchedge';
const UPSTREAM = upstreamName(GROUP, 'staging', 'api');

async function colourServers(): Promise<{ servers: Server[]; blue: string; green: string }> {
  const servers: Server[] = [];
  const out: Record<string, string> = {};
  for (const colour of ['blue', 'green']) {
    const port = await freePort();
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${colour}\n`);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    servers.push(server);
    out[colour] = `127.0.0.1:${port}`;
  }
  return { servers, blue: out.blue as string, green: out.green as string };
}

const upstreams = (name: string, a: { blue: string; green: string }, green: number): Upstream[] => [
  {
    name,
    servers: [
      { colour: 'blue', address: a.blue, weight: 100 - green },
      { colour: 'green', address: a.green, weight: green },
    ],
  },
];

/** Until a fresh request through `url` answers `colour`; ms since `t0`. */
async function servingSince(url: string, colour: string, t0: number): Promise<number> {
  for (;;) {
    const body = await fetch(url, { headers: { connection: 'close' } })
      .then((r) => r.text())
      .then(
        (t) => t.trim(),
        () => '',
      );
    if (body === colour) return performance.now() - t0;
  }
}

/** Times `apply` until every url serves the new colour, CHANGES times, alternating colours. */
async function propagation(urls: string[], apply: (green: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const green = i % 2 === 0 ? 100 : 0;
    const t0 = performance.now();
    const applied = apply(green);
    const each = await Promise.all(urls.map((u) => servingSince(u, green ? 'green' : 'blue', t0)));
    await applied;
    out.push(Math.max(...each));
  }
  return out;
}

async function underLoad(urls: string[], during: () => Promise<void>): Promise<WrkSummary[]> {
  const wrks = urls.map((u) => new Wrk(u, { connections: 4, close: false }).start());
  try {
    await sleep(500);
    await during();
    await sleep(500);
  } catch (err) {
    await Promise.allSettled(wrks.map((w) => w.stop()));
    throw err;
  }
  return Promise.all(wrks.map((w) => w.stop()));
}

export async function edgePropagation(): Promise<ScenarioResult> {
  const redis = await new TestRedis().start();
  const client = redis.client();
  const dir = mkdtempSync(join(tmpdir(), 'fdbench-edge-'));
  const colours = await colourServers();
  const edges: TestNginx[] = [];
  const single: TestNginx[] = [];
  try {
    await createEdgeUser(client, 'fdbench', GROUP);
    for (const name of ['edge-a', 'edge-b']) {
      edges.push(
        await startEdge({
          name,
          dir,
          group: GROUP,
          redisPrefix: 'fdbench',
          redisPort: redis.port,
          upstreams: [
            {
              name: UPSTREAM,
              addresses: [colours.blue, colours.green],
              keepalive: 16,
              maxFails: 1,
              failTimeoutMs: 10_000,
            },
          ],
        }),
      );
    }
    const driver = edgeDriver(client, { redisPrefix: 'fdbench', group: GROUP, minReplicas: 2 });
    const edgeUrls = edges.map((e) => `http://127.0.0.1:${e.port}/${UPSTREAM}/`);
    await driver.apply(upstreams(UPSTREAM, colours, 0));
    const edge = await propagation(edgeUrls, (g) => driver.apply(upstreams(UPSTREAM, colours, g)));

    // One nginx, the single-node drivers: Lua (live) and reload.
    const one = async (kind: 'lua' | 'reload') => {
      const nginx = new TestNginx();
      nginx.modules = LUA_MODULES;
      single.push(nginx);
      const name = upstreamName('fdbench', 'staging', kind);
      const proxy = `    location /x/ { proxy_pass http://${name}/; }`;
      const first = upstreams(name, colours, 0);
      if (kind === 'lua') {
        const statusListen = `127.0.0.1:${await freePort()}`;
        const opts = {
          upstreamFile: '',
          testCommand: [],
          reloadCommand: [],
          statusListen,
          upstreamPrefix: 'fdbench',
          adminToken: 'bench-admin-token-0123456789',
        };
        await nginx.start(
          proxy,
          renderLuaUpstreams(first, {
            prefix: 'fdbench',
            statusListen,
            weightsFile: '/nonexistent',
            adminToken: opts.adminToken,
          }).content,
        );
        const lua = new NginxLuaDriver({
          ...opts,
          upstreamFile: nginx.upstreamFile,
          testCommand: nginx.testCommand,
          reloadCommand: nginx.reloadCommand,
        });
        await lua.apply(first);
        return propagation([`http://127.0.0.1:${nginx.port}/x/`], (g) =>
          lua.apply(upstreams(name, colours, g)),
        );
      }
      await nginx.start(proxy, renderUpstreams(first, 'initial'));
      const reload = new NginxDriver({
        upstreamFile: nginx.upstreamFile,
        testCommand: nginx.testCommand,
        reloadCommand: nginx.reloadCommand,
        statusListen: nginx.statusListen,
      });
      await reload.apply(first);
      return propagation([`http://127.0.0.1:${nginx.port}/x/`], (g) =>
        reload.apply(upstreams(name, colours, g)),
      );
    };
    const lua = await one('lua');
    const reload = await one('reload');

    // wrk through both edges: no change, then 10 → 50 → 100 → 0 (a release and its rollback).
    const steady = await underLoad(edgeUrls, () => sleep(5_000));
    const shift = await underLoad(edgeUrls, async () => {
      for (const g of [10, 50, 100, 0]) {
        await driver.apply(upstreams(UPSTREAM, colours, g));
        await sleep(1_250);
      }
    });
    const rate = (ws: WrkSummary[]) => ws.reduce((a, w) => a + w.requests / w.seconds, 0);
    const failed = shift.reduce((a, w) => a + w.failed, 0);
    const ratio = rate(shift) / rate(steady);
    const p99 = pct(edge, 99);
    const rows: Row[] = [
      {
        scenario: `edge propagation, 2 edges (p50 / p99 of ${CHANGES})`,
        flightdeck: `${ms(median(edge))} / ${ms(p99)}`,
        baseline: `one nginx: lua ${ms(median(lua))} / ${ms(pct(lua, 99))}; reload ${ms(median(reload))} / ${ms(pct(reload, 99))}`,
        ratio: times(p99 / pct(reload, 99)),
        target: 'p99 ≤ 1.5 s (pull)',
        met: p99 <= 1_500,
      },
      {
        scenario: 'wrk through both edges while weights go 10→50→100→0',
        flightdeck: `${Math.round(rate(shift))} req/s, ${failed} failed`,
        baseline: `no change: ${Math.round(rate(steady))} req/s, ${steady.reduce((a, w) => a + w.failed, 0)} failed`,
        ratio: times(ratio),
        target: '0 failed, ≥ ×0.9',
        met: failed === 0 && ratio >= 0.9,
      },
    ];
    return {
      id: 'edges',
      rows,
      raw: {
        edgeMs: edge.map((x) => round(x, 1)),
        luaMs: lua.map((x) => round(x, 1)),
        reloadMs: reload.map((x) => round(x, 1)),
        steady,
        shift,
      },
    };
  } finally {
    for (const e of [...edges, ...single]) e.destroy();
    for (const s of colours.servers) await new Promise((r) => s.close(r));
    client.disconnect();
    await redis.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
