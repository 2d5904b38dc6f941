import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { EdgeDriver } from '../../src/integrations/nginx-edge.js';
import {
  type EdgeUpstream,
  edgeAclRule,
  renderEdgeConfig,
} from '../../src/integrations/nginx-edge-render.js';
import { LUA_MODULES, TestNginx } from './nginx-server.js';
import { freePort } from './ports.js';

export const EDGE_PASSWORD = 'edge-password-for-tests';

/** Creates the edge group's Redis user with the rule `flightdeck edge-config --acl` prints. */
export async function createEdgeUser(
  client: Redis,
  redisPrefix: string,
  group: string,
  user = 'edge',
): Promise<void> {
  const rule = edgeAclRule(redisPrefix, group, user).split(' ').slice(1);
  await client.call('ACL', 'SETUSER', ...rule, `>${EDGE_PASSWORD}`);
}

/**
 * A real nginx edge on loopback: the rendered edge file, named `name`, pulling from Redis as the
 * `edge` user, with a `location /<upstream>/` proxying (keep-alive) to each upstream it knows.
 */
export async function startEdge(opts: {
  name: string;
  dir: string;
  group: string;
  redisPrefix: string;
  redisPort: number;
  /** Default 127.0.0.1, user `edge`. */
  redisHost?: string;
  redisUser?: string;
  upstreams: EdgeUpstream[];
  resolvers?: string[];
  resolveIntervalMs?: number;
}): Promise<TestNginx> {
  const nameFile = join(opts.dir, `${opts.name}.name`);
  writeFileSync(nameFile, `${opts.name}\n`);
  const passwordFile = join(opts.dir, 'edge-password');
  writeFileSync(passwordFile, `${EDGE_PASSWORD}\n`);
  const { content } = renderEdgeConfig(opts.upstreams, {
    prefix: opts.group,
    redisPrefix: opts.redisPrefix,
    redis: {
      host: opts.redisHost ?? '127.0.0.1',
      port: opts.redisPort,
      user: opts.redisUser ?? 'edge',
      passwordFile,
    },
    resolvers: opts.resolvers ?? ['127.0.0.1'],
    syncIntervalMs: 200,
    resolveIntervalMs: opts.resolveIntervalMs ?? 1_000,
    staleAfterMs: 2_000,
    holdMs: 5_000,
    nameFile,
    statusListen: `127.0.0.1:${await freePort()}`,
  });
  const nginx = new TestNginx();
  nginx.modules = LUA_MODULES;
  const proxy = opts.upstreams
    .map(
      (u) =>
        `    location /${u.name}/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://${u.name}/; }`,
    )
    .join('\n');
  await nginx.start(proxy, content);
  return nginx;
}

export function edgeDriver(
  client: Redis,
  opts: { redisPrefix: string; group: string; minReplicas?: number; confirmTimeoutMs?: number },
): EdgeDriver {
  return new EdgeDriver(client, {
    redisPrefix: opts.redisPrefix,
    group: opts.group,
    confirmTimeoutMs: opts.confirmTimeoutMs ?? 10_000,
    minReplicas: opts.minReplicas ?? 1,
  });
}
