import { join } from 'node:path';
import { z } from 'zod';
import { upstreamName } from '../integrations/nginx.js';
import { TaskList } from '../releases/task-schema.js';
import { EnvironmentChecks } from './checks-schema.js';
import { Duration } from './duration.js';
import {
  DEFAULT_DOCKER_SOCKET,
  type DockerEndpoint,
  type DockerTls,
  infrastructureProblems,
  nginxGroups,
  nginxOf,
  parseDockerHost,
} from './infrastructure.js';
import { Freeze, PromotionRule } from './pipeline-schema.js';
import { StickySessions } from './sticky-schema.js';

/** Slack user IDs (U…/W…); `*` in a deployer list means "anyone in the workspace". */
export const SlackUserId = z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'must be a Slack user ID like U012ABCDEF');
export const SlackChannelId = z
  .string()
  .regex(/^[CGD][A-Z0-9]{2,}$/, 'must be a Slack channel ID like C012ABCDEF');

const Name = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/, 'must be lower-case letters, digits and dashes, starting with a letter');

/** host:port that nginx and the health checks use to reach one colour. */
const Address = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:18001 or api-blue:8001');

const SwarmServiceName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a Docker Swarm service name');

/** An image repository without tag; the release version becomes the tag. */
const ImageRepository = z
  .string()
  .regex(
    /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/,
    'must be an image repository without a tag, e.g. registry.example.com/team/api',
  );

export const Colour = z.enum(['blue', 'green']);
export type Colour = z.infer<typeof Colour>;

export const ColourTarget = z.strictObject({
  swarmService: SwarmServiceName,
  address: Address,
});

export { Duration } from './duration.js';

/**
 * How nginx talks to a service's backends: idle keep-alive connections per nginx worker (the seed's
 * `keepalive 32`), and how many failed attempts within failTimeout take an address out for
 * failTimeout (nginx's max_fails / fail_timeout; the edge driver applies them to every task).
 */
export const UpstreamSettings = z.strictObject({
  keepalive: z.number().int().min(0).max(1024).default(32),
  maxFails: z.number().int().min(0).max(100).default(1),
  failTimeout: Duration.default(10_000),
});

export const ServiceConfig = z.strictObject({
  image: ImageRepository,
  port: z.number().int().min(1).max(65535),
  healthPath: z.string().startsWith('/', 'must start with /').default('/health'),
  blue: ColourTarget,
  green: ColourTarget,
  upstream: UpstreamSettings.prefault({}),
  /** Sticky canary sessions (nginx.driver: lua), see sticky-schema.ts. */
  sticky: StickySessions.optional(),
  /** One-off jobs of this service's releases; one named like an environment task replaces it. */
  tasks: TaskList.optional(),
});
export type ServiceConfig = z.infer<typeof ServiceConfig>;

export const Gate = z
  .strictObject({
    name: z.string().min(1),
    /** PromQL; {{environment}}, {{service}}, {{colour}} and {{swarmService}} are filled in. */
    query: z.string().min(1),
    max: z.number().optional(),
    min: z.number().optional(),
    /** An empty result fails the gate unless this says pass (no traffic is not proof of health). */
    noData: z.enum(['fail', 'pass']).default('fail'),
  })
  .refine((g) => g.max !== undefined || g.min !== undefined, 'needs max or min');
export type Gate = z.infer<typeof Gate>;

/** What both compare gates share: the canary judged against the stable colour over the same window. */
const CompareCommon = {
  name: z.string().min(1),
  /** Fail when the canary is worse (and beyond the margin) with this confidence. */
  confidence: z.number().gt(0.5).lt(1).default(0.95),
  /** Worse beyond the margin but significant only at this lower confidence: marginal (pause, a person decides). */
  marginalConfidence: z.number().gt(0).lt(1).default(0.8),
  /** Requests each colour needs in the window before the gate is judged. */
  minRequests: z.number().int().min(1).default(200),
  /** How long the gate may wait (soak extended) for minRequests; then it counts as noData. */
  maxExtension: Duration.default(600_000),
  /** The range {{window}} is filled with; default: the time since this step's traffic shift. */
  window: Duration.optional(),
  noData: z.enum(['fail', 'pass']).default('fail'),
};

/** Error ratio, canary vs stable: a one-sided two-proportion test (Fisher's exact test on small counts). */
export const ErrorsCompareGate = z.strictObject({
  ...CompareCommon,
  compare: z.literal('errors'),
  /** PromQL of the requests in the window ({{colour}}, {{window}}, … filled in), summed over series. */
  requests: z.string().min(1),
  /** PromQL of the failed requests in the window. */
  errors: z.string().min(1),
  /** Worse by more than this many (ratio, 0.001 = 0.1 percentage point) to fail… */
  margin: z.number().min(0).default(0.001),
  /** …or by more than this share of the stable ratio (0.5 = 50% more errors), whichever is larger. */
  relativeMargin: z.number().min(0).default(0),
});
export type ErrorsCompareGate = z.infer<typeof ErrorsCompareGate>;

/** Latency distribution, canary vs stable, from histogram buckets: Mann-Whitney U and a quantile ratio. */
export const LatencyCompareGate = z.strictObject({
  ...CompareCommon,
  compare: z.literal('latency'),
  /** PromQL giving one series per `le`: e.g. sum by (le) (increase(…_bucket{…}[{{window}}])). */
  buckets: z.string().min(1),
  quantile: z.number().gt(0).lt(1).default(0.95),
  /** The canary's quantile may be this much above the stable one's (0.2 = 20% slower) before it fails. */
  tolerance: z.number().min(0).default(0.2),
});
export type LatencyCompareGate = z.infer<typeof LatencyCompareGate>;

export type CompareGate = ErrorsCompareGate | LatencyCompareGate;
/** An absolute gate (query against max/min) or a compare gate (`compare: errors | latency`). */
export const AnyGate = z
  .union([Gate, ErrorsCompareGate, LatencyCompareGate])
  .refine(
    (g) => !('compare' in g) || g.marginalConfidence < g.confidence,
    'marginalConfidence must be below confidence',
  );
export type AnyGate = z.infer<typeof AnyGate>;

export const SmokeCheck = z.strictObject({
  path: z.string().startsWith('/', 'must start with /'),
  status: z.number().int().min(100).max(599).default(200),
  contains: z.string().optional(),
});

/** How a release proceeds; set at the top level and overridden per environment. */
export const ReleasePolicy = z.strictObject({
  steps: z
    .array(z.number().int().min(1).max(100))
    .min(1)
    .refine((a) => a.every((v, i) => i === 0 || v > (a[i - 1] as number)), 'must increase')
    .refine((a) => a.at(-1) === 100, 'must end at 100'),
  soak: z.array(Duration),
  convergeTimeout: Duration,
  pollInterval: Duration,
  healthCheck: z.strictObject({
    attempts: z.number().int().min(1).max(50),
    interval: Duration,
    timeout: Duration,
  }),
  smoke: z.array(SmokeCheck),
  gates: z.array(AnyGate),
  afterRelease: z.enum(['keep', 'scale-down']),
  parallel: z.boolean(),
  approvalTimeout: Duration,
  maxStepRetries: z.number().int().min(0).max(20),
});
export type ReleasePolicy = z.infer<typeof ReleasePolicy>;

/** The seed's defaults: 10% → 50% → 100%, soaking 5, 10 and 5 minutes. */
export const DEFAULT_RELEASE_POLICY = {
  steps: [10, 50, 100],
  soak: ['5m', '10m', '5m'],
  convergeTimeout: '5m',
  pollInterval: '2s',
  healthCheck: { attempts: 3, interval: '2s', timeout: '2s' },
  smoke: [],
  gates: [],
  afterRelease: 'keep',
  parallel: true,
  approvalTimeout: '1h',
  maxStepRetries: 3,
} as const;

const PartialPolicy = z.strictObject({
  steps: z.array(z.unknown()).optional(),
  soak: z.array(z.unknown()).optional(),
  convergeTimeout: z.unknown().optional(),
  pollInterval: z.unknown().optional(),
  healthCheck: z.record(z.string(), z.unknown()).optional(),
  smoke: z.array(z.unknown()).optional(),
  gates: z.array(z.unknown()).optional(),
  afterRelease: z.unknown().optional(),
  parallel: z.unknown().optional(),
  approvalTimeout: z.unknown().optional(),
  maxStepRetries: z.unknown().optional(),
});

const Deployers = z.array(z.union([z.literal('*'), SlackUserId])).default([]);

/** argv arrays, run with execFile: never through a shell. */
const Argv = z.array(z.string().min(1)).min(1, 'must name a program, e.g. [nginx, -t]');

export const NginxConfig = z.strictObject({
  /** Required with driver reload and lua (the file nginx includes); not used with edge. */
  upstreamFile: z.string().startsWith('/', 'must be an absolute path').optional(),
  testCommand: Argv.default(['nginx', '-t']),
  reloadCommand: Argv.default(['nginx', '-s', 'reload']),
  /** Required with driver reload and lua; with edge, /readyz asks the edges' reports instead. */
  probeUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL nginx answers on' }).optional(),
  /**
   * host:port for a tiny status server flightdeck renders into the upstream file; after a reload
   * flightdeck polls it until the new generation answers, proving the new config is live.
   */
  statusListen: z
    .string()
    .regex(/^(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$/, 'must be a loopback host:port like 127.0.0.1:18089')
    .optional(),
  upstreamPrefix: z
    .string()
    .regex(/^[a-z][a-z0-9_]*$/, 'must be lower-case letters, digits and underscores')
    .default('flightdeck'),
  /**
   * How weights reach nginx. `reload`: rewrite the upstream file and reload (old workers drain, and
   * idle keep-alive connections to them are closed). `lua`: weights in a Lua shared dict, set over
   * the statusListen server without any reload (needs nginx's Lua module and IP addresses).
   */
  driver: z.enum(['reload', 'lua', 'edge']).default('reload'),
  /** driver: edge: nginx replicas anywhere pull the weights from Redis and report what they serve. */
  edge: z.lazy(() => EdgeConfig).optional(),
  /**
   * nginx runs as a Swarm service: testCommand and reloadCommand run inside each of its running
   * tasks through the Docker API (exec), not on the worker; the upstream file reaches nginx through
   * a shared mount.
   */
  exec: z
    .strictObject({
      swarmService: z
        .string()
        .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be a Swarm service name, e.g. flightdeck_nginx'),
    })
    .optional(),
});
export type NginxConfig = z.infer<typeof NginxConfig>;

const HostName = z
  .string()
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'must be a host name or IPv4 address');

/**
 * nginx.driver: edge. Each edge renders from `flightdeck edge-config` and reaches Redis as its own
 * ACL user (`flightdeck edge-config --acl`): it may read the published weights and write its report.
 */
export const EdgeConfig = z.strictObject({
  redis: z.strictObject({
    host: HostName,
    port: z.number().int().min(1).max(65535).default(6379),
    /** The edges' Redis user (ACL); without one they use the default user. */
    user: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be letters, digits, dots, dashes or underscores')
      .optional(),
    /** On the edge: a file holding that user's password (a Docker secret). */
    passwordFile: z.string().startsWith('/', 'must be an absolute path').optional(),
  }),
  /** DNS servers the edges resolve backend names with (Docker's embedded DNS by default). */
  resolvers: z
    .array(
      z
        .string()
        .regex(/^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/, 'must be an IPv4 address, optionally with :port'),
    )
    .min(1)
    .default(['127.0.0.11']),
  /** How often an edge reads the weights and reports (propagation is about this). */
  syncInterval: Duration.default(250),
  /** How often an edge looks its backend names up again (tasks come and go). */
  resolveInterval: Duration.default(1_000),
  /** An edge that has not reported for this long is not live (stopped, or cut off from Redis). */
  staleAfter: Duration.default(5_000),
  /** How long every live edge has to serve a change before the traffic step fails. */
  confirmTimeout: Duration.default(10_000),
  /** A change fails with fewer live edges than this. */
  minReplicas: z.number().int().min(1).max(100).default(1),
  /** Requests an edge gets before its first sync wait this long, then 503 (never a stale colour). */
  hold: Duration.default(5_000),
  /** The edge's name is this file's first line (/etc/hostname: set it with Swarm's hostname template). */
  nameFile: z.string().startsWith('/', 'must be an absolute path').default('/etc/hostname'),
  /** Where an edge answers /flightdeck/status and /flightdeck/ready, inside its container. */
  statusListen: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/, 'must be ip:port, e.g. 127.0.0.1:18089')
    .default('127.0.0.1:18089'),
});
export type EdgeConfig = z.infer<typeof EdgeConfig>;

const AbsolutePath = z.string().startsWith('/', 'must be an absolute path');

/** Where the TLS material of a tcp:// Docker endpoint is: one directory as Docker's DOCKER_CERT_PATH, or each file. */
const DockerTlsConfig = z.strictObject({
  /** A directory holding ca.pem, cert.pem and key.pem (what `docker --tlsverify` reads from DOCKER_CERT_PATH). */
  certPath: AbsolutePath.optional(),
  caFile: AbsolutePath.optional(),
  certFile: AbsolutePath.optional(),
  keyFile: AbsolutePath.optional(),
  /** Check the manager's certificate (against caFile, or the system's CAs without one); false is `docker --tls`. */
  verify: z.boolean().default(true),
});

/**
 * The Docker endpoint of a Swarm manager: `host` as Docker's DOCKER_HOST (`socketPath` is the older
 * spelling of a unix:// host). A tcp:// host must say how it is protected: `tls`, or `tls: false`
 * to accept an API without encryption or authentication (which gives root on the manager to anyone
 * who can reach the port), so plain tcp is never the result of a forgotten key.
 */
export const DockerConfig = z
  .strictObject({
    host: z.string().optional(),
    socketPath: AbsolutePath.optional(),
    tls: z
      .union([z.literal(false), DockerTlsConfig], {
        error: 'must be false, or a mapping with certPath or caFile/certFile/keyFile (and verify)',
      })
      .optional(),
  })
  .transform((d, ctx): DockerEndpoint => {
    if (d.host !== undefined && d.socketPath !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['socketPath'],
        message: `and host are both set; keep one (socketPath: ${d.socketPath} is host: unix://${d.socketPath})`,
      });
      return z.NEVER;
    }
    const host = d.host ?? `unix://${d.socketPath ?? DEFAULT_DOCKER_SOCKET}`;
    const parsed = parseDockerHost(host);
    if ('error' in parsed) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: parsed.error });
      return z.NEVER;
    }
    if (parsed.transport === 'unix') {
      if (d.tls) {
        ctx.addIssue({
          code: 'custom',
          path: ['tls'],
          message: `applies to tcp:// hosts only (${host} is a local socket)`,
        });
        return z.NEVER;
      }
      return { transport: 'unix', host, socketPath: parsed.socketPath };
    }
    if (d.tls === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: `is required with ${host}: give tls.certPath (a directory with ca.pem, cert.pem, key.pem) or tls.caFile/certFile/keyFile, or write tls: false to accept a Docker API without encryption or authentication`,
      });
      return z.NEVER;
    }
    const endpoint = { transport: 'tcp' as const, host, hostname: parsed.hostname, port: parsed.port };
    if (d.tls === false) return { ...endpoint, tls: false };
    const { certPath, caFile, certFile, keyFile, verify } = d.tls;
    if (certPath !== undefined && (caFile ?? certFile ?? keyFile) !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', 'certPath'],
        message:
          'and caFile/certFile/keyFile are both set; keep one (certPath means its ca.pem, cert.pem and key.pem)',
      });
      return z.NEVER;
    }
    if ((certFile === undefined) !== (keyFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', certFile === undefined ? 'certFile' : 'keyFile'],
        message: `is required with ${certFile === undefined ? 'keyFile' : 'certFile'} (the client certificate and its key go together)`,
      });
      return z.NEVER;
    }
    const tls: DockerTls =
      certPath !== undefined
        ? {
            certPath,
            caFile: join(certPath, 'ca.pem'),
            certFile: join(certPath, 'cert.pem'),
            keyFile: join(certPath, 'key.pem'),
            verify,
          }
        : { caFile, certFile, keyFile, verify };
    return { ...endpoint, tls };
  });

export const PrometheusConfig = z.strictObject({ url: z.url({ protocol: /^https?$/ }) });
export type PrometheusConfig = z.infer<typeof PrometheusConfig>;

export const EnvironmentConfig = z.strictObject({
  channel: SlackChannelId.optional(),
  deployers: Deployers,
  requireApproval: z.boolean().default(false),
  /** Overrides of the top-level `release` policy for this environment. */
  release: PartialPolicy.optional(),
  /** This environment's own infrastructure; each missing one is the top level's. */
  docker: DockerConfig.optional(),
  nginx: NginxConfig.optional(),
  prometheus: PrometheusConfig.optional(),
  /** One-off jobs (migrations, warm-ups) of every release in this environment (src/releases/task-schema.ts). */
  tasks: TaskList.optional(),
  /** What a version must have done in the pipeline's previous environment to enter this one. */
  promotion: PromotionRule.optional(),
  /** PromQL of the named metrics of checklist checks, replacing the defaults (docs/configuration.md). */
  checks: EnvironmentChecks.optional(),
  services: z
    .record(Name, ServiceConfig)
    .refine((s) => Object.keys(s).length > 0, 'needs at least one service'),
});
export type EnvironmentConfig = z.infer<typeof EnvironmentConfig>;

export const AlertRoute = z.strictObject({
  match: z.record(z.string().min(1), z.string()).refine((m) => Object.keys(m).length > 0, 'needs a label'),
  channel: SlackChannelId,
});

const IsoDate = z.iso.date({ error: 'must be a date like 2026-11-02' });

export const FlightdeckConfig = z
  .strictObject({
    timezone: z
      .string()
      .refine((tz) => isTimeZone(tz), 'must be an IANA time zone like Europe/London')
      .default('UTC'),
    defaultEnvironment: Name.optional(),
    server: z
      .strictObject({
        port: z.number().int().min(1).max(65535).default(3000),
        host: z.string().default('0.0.0.0'),
      })
      .prefault({}),
    redis: z.strictObject({ prefix: Name.default('flightdeck') }).prefault({}),
    slack: z.strictObject({ apiUrl: z.url().default('https://slack.com/api/') }).prefault({}),
    /**
     * The Docker endpoint of every environment that names none of its own. Absent from the file, it
     * comes from DOCKER_HOST (see loadConfig), else the local socket.
     */
    docker: DockerConfig.optional(),
    /** The nginx of every environment that names none of its own. */
    nginx: NginxConfig,
    channels: z.strictObject({ releases: SlackChannelId, alerts: SlackChannelId.optional() }),
    access: z.strictObject({ leads: z.array(SlackUserId).default([]) }).prefault({}),
    environments: z
      .record(Name, EnvironmentConfig)
      .refine((e) => Object.keys(e).length > 0, 'needs at least one environment'),
    alerts: z
      .strictObject({
        defaultChannel: SlackChannelId.optional(),
        routes: z.array(AlertRoute).default([]),
        /** Labels that name the service and environment an alert is about. */
        serviceLabel: z.string().default('service'),
        environmentLabel: z.string().default('environment'),
        /** Critical alerts nobody acknowledged are escalated in their thread. */
        escalation: z
          .strictObject({
            after: Duration.default(600_000),
            repeat: Duration.default(600_000),
            maxTimes: z.number().int().min(1).max(20).default(3),
            notify: z
              .array(
                z.string().regex(/^[UWS][A-Z0-9]{2,}$/, 'must be a Slack user (U…) or user group (S…) ID'),
              )
              .default([]),
          })
          .prefault({}),
        /** What a critical alert does to a release in flight of its service. */
        duringRelease: z.enum(['pause', 'rollback', 'none']).default('pause'),
        /** A notification with more alerts than this becomes one summary message with the alerts in its thread. */
        summariseAbove: z.number().int().min(1).default(5),
        /** The Roll back button shows for this long after a release of the alert's service finished. */
        rollbackWindow: Duration.default(3_600_000),
        /**
         * How often open alerts are compared with Alertmanager's own list: a silenced alert that
         * resolves sends no notification, so this is how its message learns it ended.
         */
        reconcileEvery: Duration.default(60_000),
      })
      .prefault({}),
    alertmanager: z.strictObject({ url: z.url({ protocol: /^https?$/ }) }).optional(),
    checklists: z
      .strictObject({
        /** `bizosaas` (default) or `teamflow`, shipped in templates/, or a path to your own YAML file. */
        templates: z.string().min(1).default('bizosaas'),
        /** Where digests and phase announcements go (default channels.releases). */
        channel: SlackChannelId.optional(),
        /** Hour of the daily digest, in `timezone`. */
        reminderHour: z.number().int().min(0).max(23).default(9),
        /** Environments whose deploys wait for the pre-deployment checklist. */
        gateEnvironments: z.array(Name).default(['production']),
      })
      .prefault({}),
    rollout: z.strictObject({ startDate: IsoDate.optional() }).prefault({}),
    /** The Prometheus of every environment that names none of its own, and of checklist queries. */
    prometheus: PrometheusConfig.optional(),
    jobs: z
      .strictObject({
        /** How long a worker holds a job before another replica may take it over after a crash. */
        lockDuration: Duration.default(30_000),
      })
      .prefault({}),
    release: PartialPolicy.optional(),
    /** The order versions are promoted in, e.g. [staging, preproduction, production]. */
    pipeline: z.array(Name).optional(),
    /** Deploy freezes (one-off or recurring), in `timezone`. */
    freezes: z.array(Freeze).default([]),
    /** DORA figures from flightdeck's own records (`/deploy stats`, App Home, /metrics). */
    dora: z
      .strictObject({
        /** A /rollback or a critical alert this long after a release counts as that release failing. */
        failureWindow: Duration.default(86_400_000),
        /**
         * The image label holding its creation time (RFC 3339), for lead time; `docker:created` takes
         * the image's own Created time instead.
         */
        imageCreatedLabel: z.string().min(1).max(200).default('org.opencontainers.image.created'),
        /** The window of the /metrics gauges and App Home's section. */
        metricsWindow: Duration.default(30 * 86_400_000),
      })
      .prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const envs = Object.keys(cfg.environments);
    for (const problem of pipelineProblems(cfg)) ctx.addIssue({ code: 'custom', ...problem });
    if (cfg.defaultEnvironment && !envs.includes(cfg.defaultEnvironment)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultEnvironment'],
        message: `names an environment that is not defined (defined: ${envs.join(', ')})`,
      });
    }
    const nginxBlocks: Array<[PropertyKey[], NginxConfig]> = [
      [['nginx'], cfg.nginx],
      ...Object.entries(cfg.environments).flatMap(
        ([name, env]): Array<[PropertyKey[], NginxConfig]> =>
          env.nginx ? [[['environments', name, 'nginx'], env.nginx]] : [],
      ),
    ];
    for (const [path, nginx] of nginxBlocks) {
      if (nginx.driver === 'edge') {
        if (!nginx.edge) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, 'edge'],
            message: 'is required with driver: edge (at least edge.redis.host: where the edges reach Redis)',
          });
        }
      } else {
        for (const field of ['upstreamFile', 'probeUrl'] as const) {
          if (!nginx[field]) {
            ctx.addIssue({
              code: 'custom',
              path: [...path, field],
              message: `is required with driver: ${nginx.driver}`,
            });
          }
        }
        if (nginx.edge) {
          ctx.addIssue({ code: 'custom', path: [...path, 'edge'], message: 'applies to driver: edge only' });
        }
      }
      if (nginx.driver === 'lua' && !nginx.statusListen) {
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'statusListen'],
          message: 'is required with driver: lua (flightdeck sets the weights through it)',
        });
      }
    }
    for (const problem of infrastructureProblems(cfg)) ctx.addIssue({ code: 'custom', ...problem });
    // An upstream name joins environment and service with `_` and turns dashes into `_` as well, so
    // prod-eu/api and prod/eu-api would share one (and `nginx -t` would fail on every change): within
    // each nginx, since every nginx renders only its own environments' upstreams.
    const groupOf = new Map(nginxGroups(cfg).flatMap((g) => g.environments.map((env) => [env, g.id])));
    const upstreamOwners = new Map<string, string>();
    // Each environment's policy is validated merged, so a mistake in the top-level `release` shows
    // up once per environment that inherits it: report each (path, problem) once.
    const reported = new Set<string>();
    const reportPolicy = (issue: z.core.$ZodSuperRefineIssue) => {
      const key = JSON.stringify([issue.path, issue.code, issue.message, issue.keys]);
      if (reported.has(key)) return;
      reported.add(key);
      ctx.addIssue(issue);
    };
    for (const [envName, env] of Object.entries(cfg.environments)) {
      const merged = mergePolicy(cfg.release, env.release);
      const parsed = ReleasePolicy.safeParse(merged);
      // Where the user wrote a policy value: the environment's block, or the top-level `release`.
      const at = (path: PropertyKey[]) =>
        env.release && writtenInEnvironment(env.release, path)
          ? ['environments', envName, 'release']
          : ['release'];
      if (parsed.success) {
        if (parsed.data.soak.length !== parsed.data.steps.length) {
          const own =
            env.release && (Object.hasOwn(env.release, 'steps') || Object.hasOwn(env.release, 'soak'));
          reportPolicy({
            code: 'custom',
            path: [...(own ? ['environments', envName, 'release'] : ['release']), 'soak'],
            message: `needs one soak per traffic step (${parsed.data.steps.length} steps, ${parsed.data.soak.length} soaks)`,
          });
        }
        if (parsed.data.gates.length > 0 && !cfg.prometheus && !env.prometheus) {
          ctx.addIssue({
            code: 'custom',
            path: ['prometheus'],
            message: `is required because ${envName} has metric gates (or give environments.${envName}.prometheus)`,
          });
        }
      } else {
        for (const issue of parsed.error.issues) {
          // Report the issue at the level where the user wrote the value, keeping its code so that
          // formatIssues words it like any other (an unknown key, a wrong value and what it got).
          if (issue.code === 'unrecognized_keys') {
            // healthCheck is merged key by key: each unknown key is the environment's or the top level's.
            const { message: _all, ...rest } = issue;
            for (const own of [true, false]) {
              const keys = issue.keys.filter((k) => (at([...issue.path, k])[0] === 'environments') === own);
              if (keys.length === 0) continue;
              const where = own ? ['environments', envName, 'release'] : ['release'];
              // No message: zod words it again for just these keys.
              reportPolicy({ ...rest, keys, path: [...where, ...issue.path] });
            }
          } else {
            reportPolicy({ ...issue, path: [...at(issue.path), ...issue.path] });
          }
        }
      }
      for (const [svcName, svc] of Object.entries(env.services)) {
        const nginx = nginxOf(cfg, envName);
        const upstream = upstreamName(nginx.upstreamPrefix, envName, svcName);
        const owner = upstreamOwners.get(`${groupOf.get(envName)}\n${upstream}`);
        if (owner) {
          ctx.addIssue({
            code: 'custom',
            path: ['environments', envName, 'services', svcName],
            message: `its nginx upstream name ${upstream} is the same as ${owner}'s; rename one`,
          });
        } else {
          upstreamOwners.set(
            `${groupOf.get(envName)}\n${upstream}`,
            `environments.${envName}.services.${svcName}`,
          );
        }
        if (svc.blue.swarmService === svc.green.swarmService) {
          ctx.addIssue({
            code: 'custom',
            path: ['environments', envName, 'services', svcName, 'green', 'swarmService'],
            message: 'must differ from blue.swarmService (blue and green are two Swarm services)',
          });
        }
        for (const colour of ['blue', 'green'] as const) {
          // Lua's balancer connects to an IP; it cannot resolve names per request.
          if (nginx.driver === 'lua' && !/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(svc[colour].address)) {
            ctx.addIssue({
              code: 'custom',
              path: ['environments', envName, 'services', svcName, colour, 'address'],
              message: `must be an IPv4 address and port (e.g. 10.0.0.12:8001) with ${env.nginx ? `environments.${envName}.` : ''}nginx.driver: lua`,
            });
          }
        }
        if (svc.sticky?.enabled && nginx.driver !== 'lua') {
          ctx.addIssue({
            code: 'custom',
            path: ['environments', envName, 'services', svcName, 'sticky'],
            message: `needs ${env.nginx ? `environments.${envName}.` : ''}nginx.driver: lua (the cookie is set by nginx's Lua balancer)`,
          });
        }
        if (svc.blue.address === svc.green.address) {
          ctx.addIssue({
            code: 'custom',
            path: ['environments', envName, 'services', svcName, 'green', 'address'],
            message: 'must differ from blue.address (nginx must reach each colour separately)',
          });
        }
      }
    }
  });
export type FlightdeckConfig = z.infer<typeof FlightdeckConfig>;

/** The pipeline names known environments once each; freezes name known environments. */
function pipelineProblems(cfg: {
  environments: Record<string, EnvironmentConfig>;
  pipeline?: string[];
  freezes: Freeze[];
  checklists: { gateEnvironments: string[] };
}): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  const envs = Object.keys(cfg.environments);
  const seen = new Map<string, number>();
  (cfg.pipeline ?? []).forEach((env, i) => {
    if (!envs.includes(env))
      out.push({
        path: ['pipeline', i],
        message: `names an environment that is not defined (defined: ${envs.join(', ')})`,
      });
    const first = seen.get(env);
    if (first !== undefined)
      out.push({
        path: ['pipeline', i],
        message: `${env} is already stage ${first + 1}: a pipeline that comes back to an environment is a cycle`,
      });
    else seen.set(env, i);
  });
  for (const [name, env] of Object.entries(cfg.environments)) {
    if (!env.promotion) continue;
    const at = cfg.pipeline?.indexOf(name) ?? -1;
    const before = at > 0 ? cfg.pipeline?.[at - 1] : undefined;
    if (at === -1)
      out.push({
        path: ['environments', name, 'promotion'],
        message: `${name} is not in \`pipeline\`, so it has no environment to promote from`,
      });
    else if (!before)
      out.push({
        path: ['environments', name, 'promotion'],
        message: `${name} is the pipeline's first stage: there is no environment before it to promote from`,
      });
    else if (env.promotion.postChecklist && !cfg.checklists.gateEnvironments.includes(before))
      out.push({
        path: ['environments', name, 'promotion', 'postChecklist'],
        message: `needs ${before} in checklists.gateEnvironments: only releases there get a post-deployment checklist`,
      });
  }
  cfg.freezes.forEach((f, i) => {
    for (const [j, env] of (f.environments ?? []).entries())
      if (!envs.includes(env))
        out.push({
          path: ['freezes', i, 'environments', j],
          message: `names an environment that is not defined (defined: ${envs.join(', ')})`,
        });
  });
  return out;
}

/** Top-level policy, then the environment's overrides, over the seed's defaults. */
export function mergePolicy(top: unknown, env: unknown): Record<string, unknown> {
  const t = (top ?? {}) as Record<string, unknown>;
  const e = (env ?? {}) as Record<string, unknown>;
  return {
    ...DEFAULT_RELEASE_POLICY,
    ...t,
    ...e,
    healthCheck: {
      ...DEFAULT_RELEASE_POLICY.healthCheck,
      ...((t.healthCheck as object) ?? {}),
      ...((e.healthCheck as object) ?? {}),
    },
  };
}

const policies = new WeakMap<FlightdeckConfig, Map<string, ReleasePolicy>>();

/**
 * The effective release policy of an environment, parsed once per loaded config (validated at load
 * time, so parse cannot fail; every step of every release asks for it).
 */
export function releasePolicy(config: FlightdeckConfig, environment: string): ReleasePolicy {
  let byEnv = policies.get(config);
  if (!byEnv) {
    byEnv = new Map();
    policies.set(config, byEnv);
  }
  let policy = byEnv.get(environment);
  if (!policy) {
    policy = ReleasePolicy.parse(mergePolicy(config.release, config.environments[environment]?.release));
    byEnv.set(environment, policy);
  }
  return policy;
}

/**
 * Whether a policy value at `path` came from the environment's own `release:` block. mergePolicy
 * replaces every key whole except `healthCheck`, which it merges one level down: so the environment
 * wrote it if it has the path's first key, or for `healthCheck` the first two.
 */
export function writtenInEnvironment(envRelease: unknown, path: PropertyKey[]): boolean {
  return hasPath(envRelease, path.slice(0, path[0] === 'healthCheck' ? 2 : 1));
}

/** Whether `obj` has every key of `path`, one inside the other. */
function hasPath(obj: unknown, path: PropertyKey[]): boolean {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return true;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const Role = z.enum(['all', 'web', 'worker']);
export type Role = z.infer<typeof Role>;

/** Secrets and switches that come from the environment, never from the YAML file. */
export const Secrets = z.object({
  slackSigningSecret: z.string().min(1).optional(),
  slackBotToken: z.string().min(1),
  slackAppToken: z.string().startsWith('xapp-', 'must be an app-level token starting with xapp-').optional(),
  redisUrl: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }),
  /** Redis's `requirepass` (or an ACL user's password), kept out of the URL: REDIS_PASSWORD(_FILE). */
  redisPassword: z.string().min(1).optional(),
  alertmanagerWebhookToken: z.string().min(16, 'must be at least 16 characters').optional(),
  /** nginx.driver: lua: the bearer token nginx's weights endpoint asks of every request. */
  nginxAdminToken: z
    .string()
    .regex(/^[\x21-\x7e]{16,}$/, 'must be at least 16 characters, printable ASCII without spaces')
    .optional(),
});
export type Secrets = z.infer<typeof Secrets>;
