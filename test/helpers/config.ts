import type { TestNginx } from './nginx-server.js';

/** A two-environment config like a small team's: staging open to all, production to named deployers. */
export function testConfig(
  nginx: Pick<TestNginx, 'upstreamFile' | 'testCommand' | 'reloadCommand' | 'probeUrl'>,
  prefix = 'fdtest',
) {
  const svc = (env: string, name: string, base: number) => ({
    image: 'flightdeck/testapp',
    port: 8080,
    healthPath: '/health',
    blue: { swarmService: `${prefix}-${env}-${name}-blue`, address: `127.0.0.1:${base}` },
    green: { swarmService: `${prefix}-${env}-${name}-green`, address: `127.0.0.1:${base + 1}` },
  });
  return {
    timezone: 'Europe/London',
    defaultEnvironment: 'staging',
    redis: { prefix },
    nginx: {
      upstreamFile: nginx.upstreamFile,
      testCommand: nginx.testCommand,
      reloadCommand: nginx.reloadCommand,
      probeUrl: nginx.probeUrl,
    },
    channels: { releases: 'C0RELEASES', alerts: 'C0ALERTS' },
    access: { leads: ['U0LEAD'] },
    environments: {
      staging: {
        deployers: ['*'],
        services: { api: svc('staging', 'api', 28001), web: svc('staging', 'web', 28011) },
      },
      production: {
        channel: 'C0PROD',
        deployers: ['U0DEV'],
        requireApproval: true,
        services: { api: svc('production', 'api', 28101), web: svc('production', 'web', 28111) },
      },
    },
  };
}
