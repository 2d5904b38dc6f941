import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from './helpers/ports.js';
import { TestPrometheus } from './helpers/prometheus-server.js';

const run = promisify(execFile);
const RULES = resolve('deploy/prometheus/alerts.yml');
const RULE_TESTS = resolve('test/fixtures/prometheus/alerts.test.yml');
const SEED_RULES = [
  'ServiceDown',
  'ContainerHighCPU',
  'ContainerHighMemory',
  'HighErrorRate',
  'HighResponseTime',
  'DatabaseConnectionHigh',
  'DatabaseSlowQueries',
  'RedisHighMemory',
  'WizardCompletionRateLow',
  'AIResponseTimeSlow',
];

const prom = new TestPrometheus();
afterAll(() => prom.destroy());

describe("the seed's alert rules, shipped in deploy/prometheus/alerts.yml", () => {
  it('pass promtool check rules and its rule tests (they fire with environment and service labels)', async () => {
    const check = await run('promtool', ['check', 'rules', RULES]);
    console.log(check.stdout.trim());
    expect(check.stdout).toContain(`SUCCESS: ${SEED_RULES.length} rules found`);
    const tests = await run('promtool', ['test', 'rules', RULE_TESTS]);
    console.log(tests.stdout.trim());
    expect(tests.stdout).toContain('SUCCESS');
  });

  it('are loaded by a real Prometheus, and ServiceDown goes pending for a dead target with its labels', async () => {
    // Nothing listens on this port: `up` is 0 for the target.
    const dead = `127.0.0.1:${await freePort()}`;
    await prom.start([{ address: dead, labels: { job: 'api', environment: 'staging', service: 'api' } }], {
      ruleFiles: [RULES],
    });
    const rules = await waitFor(
      async () => {
        const body = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
          data: {
            groups: Array<{ name: string; file: string; rules: Array<{ name: string; health: string }> }>;
          };
        };
        const all = body.data.groups.flatMap((g) =>
          g.rules.map((r) => ({ ...r, group: g.name, file: g.file })),
        );
        return all.length === SEED_RULES.length && all.every((r) => r.health === 'ok') ? all : undefined;
      },
      { timeoutMs: 20_000, what: 'the rules loaded and evaluated' },
    );
    console.log(
      `Prometheus /api/v1/rules: ${rules.length} rules, health ${[...new Set(rules.map((r) => r.health))].join(',')}: ${rules.map((r) => `${r.group}/${r.name}`).join(', ')}`,
    );
    expect(rules.map((r) => r.name).sort()).toEqual([...SEED_RULES].sort());
    expect(new Set(rules.map((r) => r.file))).toEqual(new Set([RULES]));
    const down = await waitFor(
      async () => {
        const body = (await (await fetch(`${prom.url}/api/v1/alerts`)).json()) as {
          data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
        };
        return body.data.alerts.find((a) => a.labels.alertname === 'ServiceDown');
      },
      { timeoutMs: 20_000, what: 'ServiceDown pending' },
    );
    console.log(`ServiceDown ${down.state}: ${JSON.stringify(down.labels)}`);
    expect(down.state).toBe('pending');
    expect(down.labels).toMatchObject({
      severity: 'critical',
      environment: 'staging',
      service: 'api',
      instance: dead,
    });
  }, 60_000);
});
