import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { edgeConfigCommand } from '../../src/cli/edge-config.js';
import { formatIssues } from '../../src/config/load-config.js';
import { FlightdeckConfig } from '../../src/config/schema.js';
import { renderEdges } from '../../src/releases/render-traffic.js';

const dir = mkdtempSync(join(tmpdir(), 'fd-edge-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const service = {
  image: 'registry.example.com/api',
  port: 8080,
  blue: { swarmService: 'api-blue', address: 'tasks.api-blue:8080' },
  green: { swarmService: 'api-green', address: 'tasks.api-green:8080' },
};
const edgeNginx = { driver: 'edge', edge: { redis: { host: 'redis', user: 'flightdeck-edge' } } };
const config = (nginx: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  nginx,
  channels: { releases: 'C0RELEASES' },
  environments: { staging: { services: { api: { ...service, upstream: { keepalive: 8 } } } }, ...extra },
});

function run(cfg: unknown, ...argv: string[]) {
  const path = join(dir, `${Math.random()}.yml`);
  writeFileSync(path, stringify(cfg));
  let out = '';
  let err = '';
  const code = edgeConfigCommand(
    argv,
    { FLIGHTDECK_CONFIG: path },
    (s) => (out += s),
    (s) => (err += s),
  );
  return { code, out, err };
}

const problems = (raw: unknown) => {
  const parsed = FlightdeckConfig.safeParse(raw);
  return parsed.success ? [] : formatIssues(parsed.error.issues, raw);
};

describe('flightdeck edge-config', () => {
  it('prints the edge file of the config: its services, their keep-alive, names allowed as addresses', () => {
    const { code, out } = run(config(edgeNginx));
    expect(code).toBe(0);
    expect(out).toMatch(/^# Managed by flightdeck \(nginx\.driver: edge\)/);
    expect(out).toMatch(
      /upstream flightdeck_staging_api \{\n.*\n.*balancer_by_lua_block.*\n {4}keepalive 8;\n\}/,
    );
    expect(out).toContain('["tasks.api-blue:8080"] = true');
  });

  it('prints the Redis ACL rule of the edge user with --acl', () => {
    expect(run(config(edgeNginx), '--acl').out).toBe(
      'user flightdeck-edge on resetkeys %R~flightdeck:edge:flightdeck:desired %W~flightdeck:edge:flightdeck:replica:* %W~flightdeck:edge:flightdeck:members resetchannels -@all +get +set +sadd +ping\n',
    );
  });

  it('asks which group when environments have edges of their own, and says what is wrong', () => {
    const two = config(edgeNginx, {
      production: {
        nginx: { ...edgeNginx, upstreamPrefix: 'prod' },
        services: { api: service },
      },
    });
    expect(run(two)).toMatchObject({
      code: 2,
      err: expect.stringMatching(/several edge groups \(staging; production\): pick one with --environment/),
    });
    expect(run(two, '--environment', 'production').out).toContain('upstream prod_production_api {');
    expect(run(config({ upstreamFile: '/x.conf', probeUrl: 'http://127.0.0.1:1/' }))).toMatchObject({
      code: 2,
      err: expect.stringMatching(/no nginx block of .* uses driver: edge/),
    });
    expect(run(config(edgeNginx), '--bogus').code).toBe(2);
    expect(run({ nginx: {} }).code).toBe(78);
  });
});

describe('nginx.driver: edge in the config', () => {
  it('needs the edge block and no upstream file; the other drivers need theirs', () => {
    expect(problems(config(edgeNginx))).toEqual([]);
    expect(problems(config({ driver: 'edge' }))).toEqual([
      'nginx.edge: is required with driver: edge (at least edge.redis.host: where the edges reach Redis)',
    ]);
    expect(problems(config({ driver: 'reload', edge: edgeNginx.edge }))).toEqual([
      'nginx.upstreamFile: is required with driver: reload',
      'nginx.probeUrl: is required with driver: reload',
      'nginx.edge: applies to driver: edge only',
    ]);
    expect(
      problems(config({ ...edgeNginx, edge: { redis: { host: 'redis' }, resolvers: ['dns.local'] } })),
    ).toEqual(['nginx.edge.resolvers.0: must be an IPv4 address, optionally with :port, got "dns.local"']);
  });
});

describe('/traffic status of the edges', () => {
  it('shows each replica, its generation and for how long, and the silent ones', () => {
    const now = 1_000_000;
    const line = renderEdges(
      {
        desired: 'abcdef0123456789',
        live: [
          {
            name: 'edge1',
            generation: 'abcdef0123456789',
            config: 'c',
            appliedAt: now - 4_000,
            health: 'ok',
          },
          {
            name: 'edge2',
            generation: '0000000011111111',
            config: 'c',
            appliedAt: now - 600_000,
            health: 'redis: timeout',
          },
        ],
        missing: [{ name: 'edge3', lastSeen: now - 30_000 }],
      },
      now,
    );
    expect(line).toBe(
      'edges: ✅ edge1 generation `abcdef01` for 4 s · ⚠️ edge2 old generation `00000000` for 10 min (redis: timeout) · ❌ edge3 silent for 30 s',
    );
  });
});
