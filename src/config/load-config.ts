import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { dockerEndpointOf, infrastructureProblems, nginxGroups } from './infrastructure.js';
import { DockerConfig, FlightdeckConfig, Role, Secrets } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`Invalid flightdeck configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: FlightdeckConfig;
  secrets: Secrets;
  role: Role;
  configPath: string;
  /** Worth a line in the log at start-up, not worth refusing to start (e.g. plain tcp from DOCKER_HOST). */
  warnings?: string[];
}

type Env = Record<string, string | undefined>;

/** Reads flightdeck.yml (FLIGHTDECK_CONFIG) and the secrets; throws ConfigError naming every bad key. */
export function loadConfig(env: Env = process.env): LoadedConfig {
  const configPath = env.FLIGHTDECK_CONFIG ?? './flightdeck.yml';
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    throw new ConfigError(configPath, [
      `cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)}); set FLIGHTDECK_CONFIG or copy examples/flightdeck.yml to ./flightdeck.yml`,
    ]);
  }
  const config = parseConfigText(text, configPath);
  const warnings: string[] = [];
  if (!config.docker) {
    const fromEnv = dockerFromEnv(env);
    if (fromEnv) {
      config.docker = fromEnv.endpoint;
      warnings.push(...fromEnv.warnings);
      // Environments that share the top level's endpoint now share this one: check them again.
      const problems = infrastructureProblems(config).map(
        (p) =>
          `${p.path.join('.')}: ${p.message} (the top-level endpoint is DOCKER_HOST=${fromEnv.endpoint.host})`,
      );
      if (problems.length > 0) throw new ConfigError(configPath, problems);
    }
  }
  if (env.SLACK_API_URL) config.slack.apiUrl = env.SLACK_API_URL;
  if (env.PORT) {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new ConfigError('environment', ['PORT: must be a port number']);
    config.server.port = port;
  }
  const role = loadRole(env);
  const secrets = loadSecrets(env, role);
  // Workers set the weights; a web replica never talks to nginx's admin endpoint.
  const lua = nginxGroups(config).some((g) => g.nginx.driver === 'lua');
  if (lua && role !== 'web' && !secrets.nginxAdminToken) {
    throw new ConfigError('environment', [
      `${SECRET_ENV.nginxAdminToken}: is required with nginx.driver: lua (nginx's weights endpoint refuses requests without it; ${SECRET_ENV.nginxAdminToken}_FILE for a Docker secret)`,
    ]);
  }
  // Only workers talk to Docker, so only they need the TLS files (a web replica may not have them mounted).
  if (role !== 'web') {
    const problems = unreadableTlsFiles(config);
    if (problems.length > 0) throw new ConfigError(configPath, problems);
  }
  return { config, secrets, role, configPath, warnings };
}

/**
 * The top-level Docker endpoint from the process environment, as the docker CLI reads it, when the
 * file has no `docker` block: DOCKER_HOST (unix:// or tcp://), and for tcp:// DOCKER_TLS_VERIFY
 * (any non-empty value: TLS, verifying the manager's certificate) with the certificates in
 * DOCKER_CERT_PATH (default ~/.docker: ca.pem, cert.pem, key.pem). Without DOCKER_HOST: undefined
 * (the local socket).
 */
export function dockerFromEnv(
  env: Env,
): { endpoint: NonNullable<FlightdeckConfig['docker']>; warnings: string[] } | undefined {
  const host = env.DOCKER_HOST;
  if (!host) return undefined;
  const tcp = host.startsWith('tcp://');
  const verify = Boolean(env.DOCKER_TLS_VERIFY);
  const certPath = env.DOCKER_CERT_PATH || undefined;
  if (tcp && !verify && certPath) {
    // The docker CLI would ignore the certificates and talk plain tcp: surely not what was meant.
    throw new ConfigError('environment', [
      `DOCKER_CERT_PATH: is set but DOCKER_TLS_VERIFY is not, so ${host} would be used without TLS; set DOCKER_TLS_VERIFY=1 (or unset DOCKER_CERT_PATH)`,
    ]);
  }
  const raw = {
    host,
    // TLS variables mean nothing to a unix socket (the docker CLI ignores them there too).
    ...(tcp ? { tls: verify ? { certPath: certPath ?? `${env.HOME || homedir()}/.docker` } : false } : {}),
  };
  const parsed = DockerConfig.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      'environment',
      parsed.error.issues.map(
        (i) => `${i.path[0] === 'tls' ? 'DOCKER_CERT_PATH' : 'DOCKER_HOST'}: ${i.message}`,
      ),
    );
  }
  const warnings =
    tcp && !verify
      ? [
          `DOCKER_HOST=${host} without DOCKER_TLS_VERIFY: the Docker API is used without encryption or authentication`,
        ]
      : [];
  return { endpoint: parsed.data, warnings };
}

/** Each TLS file an endpoint in use names, if it cannot be read, at the key that names it. */
export function unreadableTlsFiles(config: FlightdeckConfig, read = readFileSync): string[] {
  const problems = new Set<string>();
  for (const envName of Object.keys(config.environments)) {
    const endpoint = dockerEndpointOf(config, envName);
    if (endpoint.transport !== 'tcp' || !endpoint.tls) continue;
    const key =
      config.environments[envName]?.docker !== undefined
        ? `environments.${envName}.docker.tls`
        : 'docker.tls';
    const tls = endpoint.tls;
    for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
      const file = tls[field];
      if (!file) continue;
      try {
        read(file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        problems.add(`${key}.${tls.certPath ? 'certPath' : field}: cannot read ${file} (${code})`);
      }
    }
  }
  return [...problems];
}

export function parseConfigText(text: string, source = 'flightdeck.yml'): FlightdeckConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, ['the file must be a YAML mapping with environments, nginx and channels']);
  }
  const parsed = FlightdeckConfig.safeParse(raw);
  if (!parsed.success) throw new ConfigError(source, formatIssues(parsed.error.issues, raw));
  return parsed.data;
}

/** `environments.production.services.api.port: expected a number, got "80a"` */
export function formatIssues(issues: z.core.$ZodIssue[], input?: unknown): string[] {
  return issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    let message = issue.message;
    if (issue.code === 'invalid_key') {
      message = `"${String(issue.path.at(-1))}" is not a valid name: ${issue.issues[0]?.message ?? 'invalid'}`;
    } else if (issue.code === 'unrecognized_keys') {
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling against docs/configuration.md)`;
    } else if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
      message = `is required (${issue.expected})`;
    } else if (issue.code !== 'custom') {
      const got = valueAt(input, issue.path);
      if (got !== undefined && typeof got !== 'object') message += `, got ${JSON.stringify(got)}`;
    }
    return `${key}: ${message}`;
  });
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/** NAME or NAME_FILE (Docker secrets); both set is an error because it is ambiguous. */
export function readSecret(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && direct !== '' && file) {
    throw new ConfigError('environment', [`${name} and ${name}_FILE are both set; keep one`]);
  }
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError('environment', [
        `${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      ]);
    }
  }
  return direct === '' ? undefined : direct;
}

const SECRET_ENV = {
  slackSigningSecret: 'SLACK_SIGNING_SECRET',
  slackBotToken: 'SLACK_BOT_TOKEN',
  slackAppToken: 'SLACK_APP_TOKEN',
  redisUrl: 'REDIS_URL',
  redisPassword: 'REDIS_PASSWORD',
  alertmanagerWebhookToken: 'ALERTMANAGER_WEBHOOK_TOKEN',
  nginxAdminToken: 'NGINX_ADMIN_TOKEN',
} as const;

/**
 * The secrets of the environment. Each role is given, and needs, only its own: a worker never sees
 * Slack's requests (no signing secret) nor Alertmanager's webhook (no webhook token).
 */
export function loadSecrets(env: Env, role: Role = 'all'): Secrets {
  const raw = {
    slackSigningSecret: readSecret(env, SECRET_ENV.slackSigningSecret),
    slackBotToken: readSecret(env, SECRET_ENV.slackBotToken),
    slackAppToken: readSecret(env, SECRET_ENV.slackAppToken),
    redisUrl: readSecret(env, SECRET_ENV.redisUrl) ?? 'redis://127.0.0.1:6379',
    redisPassword: readSecret(env, SECRET_ENV.redisPassword),
    alertmanagerWebhookToken: readSecret(env, SECRET_ENV.alertmanagerWebhookToken),
    nginxAdminToken: readSecret(env, SECRET_ENV.nginxAdminToken),
  };
  const parsed = Secrets.safeParse(raw);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((i) => {
        const name = SECRET_ENV[i.path[0] as keyof typeof SECRET_ENV] ?? String(i.path[0]);
        return `${name}: ${raw[i.path[0] as keyof typeof raw] === undefined ? 'is required' : i.message}`;
      });
  // HTTP mode verifies every request with the signing secret; Socket Mode does not need it.
  if (parsed.success && role !== 'worker' && !raw.slackAppToken && !raw.slackSigningSecret) {
    problems.push('SLACK_SIGNING_SECRET: is required unless SLACK_APP_TOKEN selects Socket Mode');
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError('environment', problems);
  return parsed.data;
}

function loadRole(env: Env): Role {
  const parsed = Role.safeParse(env.FLIGHTDECK_ROLE ?? 'all');
  if (!parsed.success) {
    throw new ConfigError('environment', [
      `FLIGHTDECK_ROLE: must be one of all, web, worker, got "${env.FLIGHTDECK_ROLE}"`,
    ]);
  }
  return parsed.data;
}
