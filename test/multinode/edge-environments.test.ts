import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstreamName } from '../../src/integrations/nginx.js';
import { createEdgeUser, startEdge } from '../helpers/edge.js';
import type { TestNginx } from '../helpers/nginx-server.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { deployRelease, promoteRelease, soakingAt, waitRelease } from '../helpers/release.js';
import { createColourServices, removeServicesAndWait, serviceImage } from '../helpers/swarm.js';
import { EdgeBed, HOST, Probe } from './helpers/edge-bed.js';

// One flightdeck, two Swarms: staging on the 3-node bed (its edges on the edge nodes), production on
// this host's own single-node Swarm (its Docker endpoint is the host engine's socket, mounted into
// the worker's container; its edge an nginx on this host pulling from the same Redis). A release in
// each goes through its own Docker, its own edges, and leaves the other environment alone.
const PROD_GROUP = 'fdprod';
const dir = mkdtempSync(join(tmpdir(), 'fd-envs-'));
let prodServices: string[] = [];
let prodEdge: TestNginx | undefined;
let prodPorts: { blue: number; green: number };
const bed = new EdgeBed({
  workerMounts: [{ source: '/var/run/docker.sock', target: '/var/run/host-docker.sock' }],
  configure: async (cfg, b) => {
    prodPorts = { blue: await freePort(), green: await freePort() };
    // What is under test is where production runs, not its pre-deployment checklist gate.
    cfg.checklists = { gateEnvironments: [] };
    const name = (c: string) => `${b.id}-production-api-${c}`;
    cfg.environments.production = {
      deployers: ['*'],
      docker: { host: 'unix:///var/run/host-docker.sock' },
      nginx: {
        driver: 'edge',
        upstreamPrefix: PROD_GROUP,
        edge: {
          redis: {
            host: HOST,
            port: b.redis.port,
            user: 'edgeprod',
            passwordFile: join(dir, 'edge-password'),
          },
          staleAfter: '3s',
          confirmTimeout: '20s',
          resolvers: ['127.0.0.1'],
        },
      },
      services: {
        api: {
          image: 'flightdeck/testapp',
          port: 8080,
          // Host-mode ports of the host's Swarm, reached on the bridge by the worker and this nginx.
          blue: { swarmService: name('blue'), address: `${HOST}:${prodPorts.blue}` },
          green: { swarmService: name('green'), address: `${HOST}:${prodPorts.green}` },
        },
      },
    };
  },
});
let probe: Probe;
const prodUrl = () =>
  `http://127.0.0.1:${prodEdge?.port}/${upstreamName(PROD_GROUP, 'production', 'api')}/colour`;

beforeAll(async () => {
  await bed.start();
  probe = new Probe(() => [bed.edgeUrl(2), bed.edgeUrl(3), ...(prodEdge ? [prodUrl()] : [])]).start();
}, 900_000);

afterAll(async () => {
  await probe?.stop();
  prodEdge?.destroy();
  await removeServicesAndWait(prodServices);
  await bed.stop();
  rmSync(dir, { recursive: true, force: true });
}, 300_000);

describe('one flightdeck, staging on the 3-node Swarm and production on another', () => {
  it('names each environment and part in /readyz, all answering', async () => {
    const cfg = bed.config.environments.production;
    prodServices = await createColourServices([cfg.services.api]);
    await createEdgeUser(bed.client, bed.id, PROD_GROUP, 'edgeprod');
    writeFileSync(join(dir, 'edge-password'), 'edge-password-for-tests\n');
    prodEdge = await startEdge({
      name: 'prod-edge',
      dir,
      group: PROD_GROUP,
      redisPrefix: bed.id,
      redisHost: HOST,
      redisPort: bed.redis.port,
      redisUser: 'edgeprod',
      upstreams: [
        {
          name: upstreamName(PROD_GROUP, 'production', 'api'),
          addresses: [cfg.services.api.blue.address, cfg.services.api.green.address],
          keepalive: 8,
          maxFails: 1,
          failTimeoutMs: 10_000,
        },
      ],
    });
    const ready = await waitFor(
      async () => {
        const res = await fetch(`${bed.workerUrl}/readyz`);
        const body = (await res.json()) as { ready: boolean; checks: Record<string, string> };
        return body.ready ? body : undefined;
      },
      { timeoutMs: 60_000, what: "the worker's /readyz with both environments ready" },
    );
    // Each edge with the generation it serves and since when.
    expect(ready.checks['nginx:staging']).toMatch(
      /^ok: edge\d-\w+ [0-9a-f]{8} for \d+ s, edge\d-\w+ [0-9a-f]{8} for \d+ s$/,
    );
    expect(ready.checks['nginx:production']).toMatch(/^ok: prod-edge [0-9a-f]{8} for \d+ s$/);
    expect(Object.keys(ready.checks).sort()).toEqual(
      ['docker:production', 'docker:staging', 'nginx:production', 'nginx:staging', 'redis'].sort(),
    );
  });

  it('releases production on its own Swarm and edge while staging stays where it was', async () => {
    const stagingBefore = await bed.client.get(`${bed.id}:edge:${bed.group}:desired`);
    const id = await deployRelease(bed, 'api 1.1.0 to production');
    for (const percent of [10, 50, 100]) {
      const r = await waitRelease(bed, id, soakingAt(percent), `soaking at ${percent}%`, 240_000);
      const s = await probe.measure(prodUrl(), 200);
      expect(s.failed).toBe(0);
      expect(
        Math.abs((100 * s[r.toColour]) / (s.blue + s.green) - percent),
        JSON.stringify(s),
      ).toBeLessThanOrEqual(4);
      await promoteRelease(bed, 'api in production');
    }
    const done = await waitRelease(bed, id, (r) => r.status === 'completed', 'completed', 240_000);
    // The host Swarm's service has the new image; staging's published weights never moved.
    expect(
      await serviceImage(bed.config.environments.production.services.api[done.toColour].swarmService),
    ).toBe('flightdeck/testapp:1.1.0');
    expect(await bed.client.get(`${bed.id}:edge:${bed.group}:desired`)).toBe(stagingBefore);
    expect(probe.failed).toEqual([]);
  });
});
