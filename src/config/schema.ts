import { z } from 'zod';

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

export const ServiceConfig = z.strictObject({
  image: ImageRepository,
  port: z.number().int().min(1).max(65535),
  healthPath: z.string().startsWith('/', 'must start with /').default('/health'),
  blue: ColourTarget,
  green: ColourTarget,
});
export type ServiceConfig = z.infer<typeof ServiceConfig>;

const Deployers = z.array(z.union([z.literal('*'), SlackUserId])).default([]);

export const EnvironmentConfig = z.strictObject({
  channel: SlackChannelId.optional(),
  deployers: Deployers,
  requireApproval: z.boolean().default(false),
  services: z
    .record(Name, ServiceConfig)
    .refine((s) => Object.keys(s).length > 0, 'needs at least one service'),
});
export type EnvironmentConfig = z.infer<typeof EnvironmentConfig>;

/** argv arrays, run with execFile: never through a shell. */
const Argv = z.array(z.string().min(1)).min(1, 'must name a program, e.g. [nginx, -t]');

export const NginxConfig = z.strictObject({
  upstreamFile: z.string().startsWith('/', 'must be an absolute path'),
  testCommand: Argv.default(['nginx', '-t']),
  reloadCommand: Argv.default(['nginx', '-s', 'reload']),
  probeUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL nginx answers on' }),
});

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
    docker: z.strictObject({ socketPath: z.string().default('/var/run/docker.sock') }).prefault({}),
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
      })
      .prefault({}),
    rollout: z.strictObject({ startDate: IsoDate.optional() }).prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const envs = Object.keys(cfg.environments);
    if (cfg.defaultEnvironment && !envs.includes(cfg.defaultEnvironment)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultEnvironment'],
        message: `names an environment that is not defined (defined: ${envs.join(', ')})`,
      });
    }
    for (const [envName, env] of Object.entries(cfg.environments)) {
      for (const [svcName, svc] of Object.entries(env.services)) {
        if (svc.blue.swarmService === svc.green.swarmService) {
          ctx.addIssue({
            code: 'custom',
            path: ['environments', envName, 'services', svcName, 'green', 'swarmService'],
            message: 'must differ from blue.swarmService (blue and green are two Swarm services)',
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
  alertmanagerWebhookToken: z.string().min(16, 'must be at least 16 characters').optional(),
});
export type Secrets = z.infer<typeof Secrets>;
