import { renderUpstreams } from '../../src/integrations/nginx.js';
import type { TestNginx } from './nginx-server.js';

export interface TestConfigOptions {
  prefix?: string;
  /** First host port of the colour services; each file picks its own range. */
  basePort?: number;
}

/** One service of the test image, its blue colour on `base` and green on `base + 1`, Swarm services named `<prefix>-<env>-<name>-<colour>`. */
export const colourService = (prefix: string, env: string, name: string, base: number) => ({
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: `${prefix}-${env}-${name}-blue`, address: `127.0.0.1:${base}` },
  green: { swarmService: `${prefix}-${env}-${name}-green`, address: `127.0.0.1:${base + 1}` },
});

/** A two-environment config like a small team's: staging open to all, production to named deployers. */
export function testConfig(
  nginx: Pick<TestNginx, 'upstreamFile' | 'testCommand' | 'reloadCommand' | 'probeUrl' | 'statusListen'>,
  { prefix = 'fdtest', basePort = 28000 }: TestConfigOptions = {},
) {
  const svc = (env: string, name: string, base: number) => colourService(prefix, env, name, base);
  return {
    timezone: 'Europe/London',
    defaultEnvironment: 'staging',
    redis: { prefix },
    nginx: {
      upstreamFile: nginx.upstreamFile,
      testCommand: nginx.testCommand,
      reloadCommand: nginx.reloadCommand,
      probeUrl: nginx.probeUrl,
      ...(nginx.statusListen ? { statusListen: nginx.statusListen } : {}),
    },
    channels: { releases: 'C0RELEASES', alerts: 'C0ALERTS' },
    access: { leads: ['U0LEAD'] },
    jobs: { lockDuration: '5s' },
    // Fast but real: soaks are long so tests move on with /deploy promote, deterministically.
    release: {
      steps: [10, 50, 100],
      soak: ['1h', '1h', '1h'],
      convergeTimeout: '90s',
      pollInterval: '500ms',
      healthCheck: { attempts: 2, interval: '300ms', timeout: '1s' },
    },
    environments: {
      staging: {
        deployers: ['*'],
        services: { api: svc('staging', 'api', basePort + 1), web: svc('staging', 'web', basePort + 11) },
      },
      production: {
        channel: 'C0PROD',
        deployers: ['U0DEV'],
        requireApproval: true,
        services: {
          api: svc('production', 'api', basePort + 101),
          web: svc('production', 'web', basePort + 111),
        },
      },
    } as Record<string, { services: Record<string, ReturnType<typeof svc>> } & Record<string, unknown>>,
  };
}
export type TestConfig = ReturnType<typeof testConfig>;

/** The upstream file as flightdeck renders it for the initial state (all on blue). */
export function initialUpstreams(cfg: TestConfig): string {
  const ups = Object.entries(cfg.environments).flatMap(([env, e]) =>
    Object.entries(e.services).map(([name, s]) => ({
      name: `flightdeck_${env}_${name}`.replace(/-/g, '_'),
      servers: [
        { colour: 'blue', address: s.blue.address, weight: 100 },
        { colour: 'green', address: s.green.address, weight: 0 },
      ],
    })),
  );
  return renderUpstreams(ups, 'initial');
}

/** nginx locations that proxy /<env>/<service>/ to flightdeck's upstreams. */
export function proxyLocations(cfg: TestConfig): string {
  return Object.entries(cfg.environments)
    .flatMap(([env, e]) =>
      Object.keys(e.services).map(
        (name) =>
          `    location /${env}/${name}/ { proxy_pass http://flightdeck_${env}_${name.replace(/-/g, '_')}/; proxy_next_upstream off; }`,
      ),
    )
    .join('\n');
}
