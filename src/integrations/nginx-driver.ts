import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { NginxConfig, Secrets } from '../config/schema.js';
import { type ApplyResult, NginxDriver, probeNginx, runArgv, type Upstream } from './nginx.js';
import { EdgeDriver } from './nginx-edge.js';
import { SwarmExecRunner } from './nginx-exec.js';
import { NginxLuaDriver } from './nginx-lua.js';
import { procTable } from './nginx-workers.js';

/** One nginx as the release engine sees it: take these upstreams, and answer (for /readyz). */
export interface Nginx {
  apply(upstreams: Upstream[], opts?: { keepOnReloadFailure?: boolean }): Promise<ApplyResult>;
  /** Resolves when this nginx answers (with what its edges report, for the edge driver); throws saying why not. */
  probe(): Promise<unknown>;
  /** nginx.driver: edge: what each replica reports (for /traffic status and /metrics). */
  edges?: Pick<EdgeDriver, 'status'>;
}

export interface NginxDeps {
  secrets: Pick<Secrets, 'nginxAdminToken'>;
  /** The Docker endpoint of this nginx's environments (nginx.exec), asked for on first use only. */
  docker: () => Docker;
  redis: Redis;
  redisPrefix: string;
}

/** The driver one nginx block asks for (`driver`), with nginx's commands run where `exec` says. */
export function createNginxDriver(nginx: NginxConfig, deps: NginxDeps): Nginx {
  // nginx.exec: nginx -t / -s reload run inside the nginx service's tasks, not in this process.
  const exec = nginx.exec;
  let runner: SwarmExecRunner | undefined;
  const run = exec
    ? (argv: string[]) => {
        runner ??= new SwarmExecRunner(deps.docker(), exec.swarmService);
        return runner.run(argv);
      }
    : runArgv;
  if (nginx.driver === 'edge') return edgeNginx(nginx, deps);
  // The schema requires upstreamFile and probeUrl with these drivers.
  const files = { ...nginx, upstreamFile: nginx.upstreamFile ?? '' };
  const probe = () => probeNginx(nginx.probeUrl ?? '');
  switch (nginx.driver) {
    case 'reload': {
      // nginx.exec runs nginx in containers, whose pids mean nothing in this machine's /proc.
      const driver = new NginxDriver(files, run, exec ? undefined : procTable);
      return { apply: (upstreams, opts) => driver.apply(upstreams, opts), probe };
    }
    case 'lua': {
      const driver = new NginxLuaDriver(
        {
          ...files,
          // The schema requires statusListen with lua.
          statusListen: nginx.statusListen ?? '',
          // Required at load except for a web replica, which never sets weights.
          adminToken: deps.secrets.nginxAdminToken ?? '',
        },
        run,
      );
      return { apply: (upstreams, opts) => driver.apply(upstreams, opts), probe };
    }
  }
}

/**
 * nginx.driver: edge: changes are published to Redis and count once every live edge serves them;
 * /readyz passes while enough edges report, all healthy and on the published weights.
 */
function edgeNginx(nginx: NginxConfig, deps: NginxDeps): Nginx & { edges: EdgeDriver } {
  const edge = nginx.edge;
  if (!edge) throw new Error('nginx.edge is required with driver: edge'); // the schema says so first
  const edges = new EdgeDriver(deps.redis, {
    redisPrefix: deps.redisPrefix,
    group: nginx.upstreamPrefix,
    confirmTimeoutMs: edge.confirmTimeout,
    minReplicas: edge.minReplicas,
  });
  return {
    edges,
    apply: (upstreams, opts) => edges.apply(upstreams, opts),
    probe: async () => {
      const status = await edges.status();
      const problem = status.desired ? edges.confirmed(status, status.desired) : undefined;
      if (!status.desired) throw new Error('no weights published yet (a worker publishes them at start)');
      if (problem && !problem.ok) throw new Error(problem.why);
      // Each edge, the generation it serves and for how long, for an operator reading /readyz.
      const now = Date.now();
      return status.live
        .map(
          (r) =>
            `${r.name} ${r.generation.slice(0, 8)} for ${Math.max(0, Math.round((now - r.appliedAt) / 1000))} s`,
        )
        .concat(status.missing.map((m) => `${m.name} silent`))
        .join(', ');
    },
  };
}
