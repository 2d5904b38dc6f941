import { describe, expect, it } from 'vitest';
import { formatIssues } from '../../src/config/load-config.js';
import { FlightdeckConfig } from '../../src/config/schema.js';
import { upstreamName } from '../../src/integrations/nginx.js';
import { testConfig } from '../helpers/config.js';

const service = (name: string, base: number) => ({
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: `${name}-blue`, address: `127.0.0.1:${base}` },
  green: { swarmService: `${name}-green`, address: `127.0.0.1:${base + 1}` },
});

type Raw = ReturnType<typeof testConfig>;

/** The problems the schema reports for the suites' config with `edit` applied ([] if it is valid). */
function problems(edit: (raw: Raw) => void): string[] {
  const raw = testConfig({
    upstreamFile: '/tmp/flightdeck-unit/upstreams.conf',
    testCommand: ['true'],
    reloadCommand: ['true'],
    probeUrl: 'http://127.0.0.1:9/',
    statusListen: '',
  });
  edit(raw);
  const parsed = FlightdeckConfig.safeParse(raw);
  return parsed.success ? [] : formatIssues(parsed.error.issues, raw);
}

describe('nginx upstream names', () => {
  it('are <prefix>_<environment>_<service> with dashes as underscores, so two services can share one', () => {
    expect(upstreamName('flightdeck', 'prod-eu', 'api')).toBe('flightdeck_prod_eu_api');
    expect(upstreamName('flightdeck', 'prod', 'eu-api')).toBe('flightdeck_prod_eu_api');
    expect(upstreamName('fd', 'staging', 'brain-gateway')).toBe('fd_staging_brain_gateway');
  });

  it('that collide are refused at load, naming both services', () => {
    const found = problems((raw) => {
      raw.environments['prod-eu'] = { services: { api: service('prod-eu-api', 39001) } };
      raw.environments.prod = { services: { 'eu-api': service('prod-eu-api2', 39011) } };
    });
    expect(found).toEqual([
      "environments.prod.services.eu-api: its nginx upstream name flightdeck_prod_eu_api is the same as environments.prod-eu.services.api's; rename one",
    ]);
  });

  it('name the configured prefix, and names that differ pass', () => {
    const found = problems((raw) => {
      Object.assign(raw.nginx, { upstreamPrefix: 'edge' });
      raw.environments['a-b'] = { services: { c: service('abc1', 39001) } };
      raw.environments.a = { services: { 'b-c': service('abc2', 39011) } };
    });
    expect(found).toEqual([
      "environments.a.services.b-c: its nginx upstream name edge_a_b_c is the same as environments.a-b.services.c's; rename one",
    ]);
    expect(
      problems((raw) => {
        raw.environments['prod-eu'] = { services: { api: service('prod-eu-api', 39001) } };
        raw.environments.prod = { services: { 'us-api': service('prod-us-api', 39011) } };
      }),
    ).toEqual([]);
  });
});
