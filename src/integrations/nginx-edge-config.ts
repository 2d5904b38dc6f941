import type { NginxGroup } from '../config/infrastructure.js';
import type { FlightdeckConfig } from '../config/schema.js';
import { upstreamName } from './nginx.js';
import { edgeAclRule, renderEdgeConfig } from './nginx-edge-render.js';

/**
 * The static file of one edge group (`flightdeck edge-config`): every service of the environments
 * that share this nginx block, with its upstream settings, and the block's edge settings. An
 * operator deploys it to the edges as a Docker config; it changes only when services are added or
 * the edge settings change (the weights come from Redis).
 */
export function edgeFileFor(
  config: FlightdeckConfig,
  group: NginxGroup,
): { content: string; version: string } {
  const edge = group.nginx.edge;
  if (group.nginx.driver !== 'edge' || !edge) {
    throw new Error(`the nginx of ${group.environments.join(', ')} does not use driver: edge`);
  }
  const upstreams = group.environments.flatMap((env) =>
    Object.entries(config.environments[env]?.services ?? {}).map(([svc, def]) => ({
      name: upstreamName(group.nginx.upstreamPrefix, env, svc),
      addresses: [def.blue.address, def.green.address],
      keepalive: def.upstream.keepalive,
      maxFails: def.upstream.maxFails,
      failTimeoutMs: def.upstream.failTimeout,
    })),
  );
  return renderEdgeConfig(upstreams, {
    prefix: group.nginx.upstreamPrefix,
    redisPrefix: config.redis.prefix,
    redis: edge.redis,
    resolvers: edge.resolvers,
    syncIntervalMs: edge.syncInterval,
    resolveIntervalMs: edge.resolveInterval,
    staleAfterMs: edge.staleAfter,
    holdMs: edge.hold,
    nameFile: edge.nameFile,
    statusListen: edge.statusListen,
  });
}

/** The Redis ACL rule of a group's edge user (append `>password`), for Redis's config. */
export function edgeAclFor(config: FlightdeckConfig, group: NginxGroup): string {
  const edge = group.nginx.edge;
  if (group.nginx.driver !== 'edge' || !edge) {
    throw new Error(`the nginx of ${group.environments.join(', ')} does not use driver: edge`);
  }
  return edgeAclRule(config.redis.prefix, group.nginx.upstreamPrefix, edge.redis.user ?? 'default');
}
