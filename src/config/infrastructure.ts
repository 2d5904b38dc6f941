// Which Docker endpoint, nginx and Prometheus each environment uses: its own, else the top level's.
// Pure (no I/O), so the schema, the composition root and the unit tests share one answer.
import type { FlightdeckConfig, NginxConfig } from './schema.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface DockerTls {
  /** The directory the three files come from, when the config named one (for messages). */
  certPath?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Check the manager's certificate; false is `docker --tls` (encrypted, server not verified). */
  verify: boolean;
}

/** One Docker Engine API endpoint (a Swarm manager), normalised: what createDocker connects to. */
export type DockerEndpoint =
  | { transport: 'unix'; host: string; socketPath: string }
  | { transport: 'tcp'; host: string; hostname: string; port: number; tls: DockerTls | false };

export const DEFAULT_DOCKER_ENDPOINT: DockerEndpoint = {
  transport: 'unix',
  host: `unix://${DEFAULT_DOCKER_SOCKET}`,
  socketPath: DEFAULT_DOCKER_SOCKET,
};

/** `unix:///path` or `tcp://host:port` (the DOCKER_HOST forms flightdeck speaks), or why not. */
export function parseDockerHost(
  host: string,
):
  | { transport: 'unix'; socketPath: string }
  | { transport: 'tcp'; hostname: string; port: number }
  | { error: string } {
  const unix = /^unix:\/\/(\/\S+)$/.exec(host);
  if (unix) return { transport: 'unix', socketPath: unix[1] as string };
  const tcp = /^tcp:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/.exec(host);
  if (tcp) {
    const port = Number(tcp[2]);
    // Docker's CLI would assume 2375 (plain) here; a port written out says which one is meant.
    if (tcp[2] === undefined || port < 1 || port > 65535)
      return { error: `must name a port, e.g. tcp://manager-1.example.com:2376 (got "${host}")` };
    return { transport: 'tcp', hostname: tcp[1] as string, port };
  }
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(host)?.[1];
  if (scheme)
    return {
      error: `${scheme}:// is not supported: use unix:///path/to/docker.sock, or tcp://host:port with TLS (got "${host}")`,
    };
  return { error: `must be unix:///path/to/docker.sock or tcp://host:port (got "${host}")` };
}

/** Same key, same endpoint: one Docker client serves every environment with that key. */
export const endpointKey = (e: DockerEndpoint): string => JSON.stringify(e);

export function dockerEndpointOf(config: FlightdeckConfig, environment: string): DockerEndpoint {
  return config.environments[environment]?.docker ?? config.docker ?? DEFAULT_DOCKER_ENDPOINT;
}

export function nginxOf(config: FlightdeckConfig, environment: string): NginxConfig {
  return config.environments[environment]?.nginx ?? config.nginx;
}

/** The Prometheus base URL of an environment's gates; without one, the top level's (checklist queries). */
export function prometheusOf(config: FlightdeckConfig, environment?: string): string | undefined {
  return (
    (environment ? config.environments[environment]?.prometheus : undefined)?.url ?? config.prometheus?.url
  );
}

/** The environments one nginx serves: one driver, one mutex, one upstream file. */
export interface NginxGroup {
  /** `default` for the top-level nginx; otherwise the first environment (in file order) naming this block. */
  id: string;
  nginx: NginxConfig;
  environments: string[];
}

/**
 * Environments grouped by the nginx they use, in file order. An environment's block written the
 * same as another's (or as the top level's) is the same nginx: the group is the block's content.
 */
export function nginxGroups(config: FlightdeckConfig): NginxGroup[] {
  const top = JSON.stringify(config.nginx);
  const groups = new Map<string, NginxGroup>();
  for (const [env, e] of Object.entries(config.environments)) {
    const nginx = e.nginx ?? config.nginx;
    const key = JSON.stringify(nginx);
    const group = groups.get(key);
    if (group) group.environments.push(env);
    else groups.set(key, { id: key === top ? 'default' : env, nginx, environments: [env] });
  }
  return [...groups.values()];
}

/** One entry of a worker's /readyz: a part (docker, nginx, prometheus) checked once per distinct key. */
export interface ReadinessPart<T> {
  /** `docker` when every environment uses the same one; otherwise `docker:<environment>`, one per environment. */
  name: string;
  key: string;
  value: T;
  environments: string[];
}

/**
 * Names each environment's infrastructure for /readyz. A part every environment shares keeps its
 * bare name (`docker`, as before environments had their own); once they differ, each environment
 * gets its own entry (`docker:staging`, `docker:production`), and entries with the same endpoint
 * share one check. An environment without the part (no Prometheus) has no entry.
 */
export function readinessParts<T>(
  config: FlightdeckConfig,
  part: string,
  partOf: (environment: string) => T | undefined,
  keyOf: (value: T) => string,
): ReadinessPart<T>[] {
  const envs = Object.keys(config.environments);
  const values = envs.map((env) => ({ env, value: partOf(env) }));
  const byKey = new Map<string, string[]>();
  for (const { env, value } of values) {
    if (value === undefined) continue;
    const key = keyOf(value);
    byKey.set(key, [...(byKey.get(key) ?? []), env]);
  }
  const shared = byKey.size === 1 && values.every((v) => v.value !== undefined);
  return values.flatMap(({ env, value }) => {
    if (value === undefined) return [];
    const key = keyOf(value);
    if (shared && env !== envs[0]) return [];
    return [{ name: shared ? part : `${part}:${env}`, key, value, environments: byKey.get(key) as string[] }];
  });
}

/** Problems the schema cannot see field by field: which nginx and Docker endpoint go together. */
export function infrastructureProblems(config: FlightdeckConfig): Array<{ path: string[]; message: string }> {
  const problems: Array<{ path: string[]; message: string }> = [];
  const where = (g: NginxGroup) => (g.id === 'default' ? ['nginx'] : ['environments', g.id, 'nginx']);
  const seen = { upstreamFile: new Map<string, NginxGroup>(), statusListen: new Map<string, NginxGroup>() };
  for (const g of nginxGroups(config)) {
    // Two different blocks writing one file (or listening on one admin address) would undo each
    // other's upstreams on every change.
    for (const field of ['upstreamFile', 'statusListen'] as const) {
      const value = g.nginx[field];
      if (!value) continue;
      const first = seen[field].get(value);
      if (first) {
        problems.push({
          path: [...where(g), field],
          message: `is the same as ${[...where(first), field].join('.')}, but the two nginx blocks differ; give ${g.environments.join(', ')} the same block (or none, for the top level's) or another ${field}`,
        });
      } else seen[field].set(value, g);
    }
    // nginx -t and reload run in nginx's tasks through one Docker endpoint: all its environments' one.
    if (g.nginx.exec) {
      const endpoints = new Map(
        g.environments.map((env) => [endpointKey(dockerEndpointOf(config, env)), env]),
      );
      if (endpoints.size > 1) {
        const list = [...endpoints.values()]
          .map((env) => `${env} uses ${dockerEndpointOf(config, env).host}`)
          .join(', ');
        problems.push({
          path: [...where(g), 'exec'],
          message: `runs nginx's commands through one Docker endpoint, but the environments on this nginx use several (${list}); give them one docker endpoint or their own nginx`,
        });
      }
    }
  }
  return problems;
}

/**
 * What a command for `environment` is told when its Docker endpoint does not answer, e.g.
 * "staging's Docker endpoint unix:///run/x.sock does not answer (ECONNREFUSED); other environments
 * are not affected". Which others share the endpoint is said, since they are affected too.
 */
export function dockerDownMessage(config: FlightdeckConfig, environment: string, reason: string): string {
  const endpoint = dockerEndpointOf(config, environment);
  const key = endpointKey(endpoint);
  const others = Object.keys(config.environments).filter((env) => env !== environment);
  const sharing = others.filter((env) => endpointKey(dockerEndpointOf(config, env)) === key);
  const head = `${environment}'s Docker endpoint ${endpoint.host} does not answer (${reason})`;
  if (others.length === 0) return head;
  if (sharing.length === 0) return `${head}; other environments are not affected`;
  const also = `${sharing.join(', ')} ${sharing.length === 1 ? 'uses' : 'use'} it too`;
  return sharing.length === others.length
    ? `${head}; ${also}`
    : `${head}; ${also}, other environments are not affected`;
}
