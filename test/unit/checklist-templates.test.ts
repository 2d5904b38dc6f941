import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadTemplate } from '../../src/checklists/load-template.js';
import { METRICS, metricQuery } from '../../src/checklists/metric-checks.js';
import { runCheck } from '../../src/checklists/run-check.js';
import type { ItemCheck, Template } from '../../src/checklists/schema.js';
import { unitConfig } from './helpers.js';

const allItems = (t: Template, id: string) => t.checklists[id]?.sections.flatMap((s) => s.items) ?? [];
const checkOf = (t: Template, cl: string, item: string) => allItems(t, cl).find((i) => i.id === item)?.check;

// The seed's three environments (examples/flightdeck.yml) and the suites' two.
const seedConfig = unitConfig((raw) => {
  raw.environments.preproduction = structuredClone(raw.environments.staging) as never;
  Object.assign(raw.environments.preproduction as object, { deployers: ['U0QA'] });
});
const twoEnvs = unitConfig();

describe('the shipped templates against a config', () => {
  it('bizosaas: the seed’s staging and pre-production thresholds are automatic, the rest is ticked', () => {
    const t = loadTemplate('bizosaas', seedConfig);
    expect(checkOf(t, 'staging', 'response-time')).toEqual({
      kind: 'metric',
      metric: 'response-time-p95',
      max: 2,
      environment: 'staging',
    });
    expect(checkOf(t, 'staging', 'memory-usage')).toMatchObject({ metric: 'memory', max: 80 });
    expect(checkOf(t, 'staging', 'cpu-usage')).toMatchObject({ metric: 'cpu', max: 70 });
    expect(checkOf(t, 'staging', 'containers-healthy')).toMatchObject({ kind: 'swarm-converged' });
    const pp = (id: string) => checkOf(t, 'preprod', id) as Extract<ItemCheck, { kind: 'metric' }>;
    expect(
      ['avg-response', 'error-rate', 'cpu-under-80', 'memory-under-85', 'disk-under-70'].map((id) => [
        pp(id).metric,
        pp(id).max,
        pp(id).environment,
      ]),
    ).toEqual([
      ['response-time-avg', 2, 'preproduction'],
      ['error-rate', 0.1, 'preproduction'],
      ['cpu', 80, 'preproduction'],
      ['memory', 85, 'preproduction'],
      ['disk', 70, 'preproduction'],
    ]);
    for (const manual of ['penetration-testing', 'vulnerability-scan', 'load-100'])
      expect(checkOf(t, 'staging', manual)).toBeUndefined();
    for (const manual of ['satisfaction', 'task-completion', 'throughput', 'no-critical-vulns'])
      expect(checkOf(t, 'preprod', manual)).toBeUndefined();
    expect(t.checklists.pre?.mayTick).toEqual(['lead', 'gate-deployers']);
    expect(t.checklists.preprod?.mayTick).toEqual(['lead', 'gate-deployers', 'deployers:preproduction']);
  });

  it('bizosaas on a config without preproduction: those items are ticked by hand, each said once', () => {
    const warnings: string[] = [];
    const t = loadTemplate('bizosaas', twoEnvs, (w) => warnings.push(w));
    expect(checkOf(t, 'preprod', 'error-rate')).toBeUndefined();
    expect(checkOf(t, 'staging', 'cpu-usage')).toMatchObject({ metric: 'cpu' });
    expect(t.checklists.preprod?.mayTick).toEqual(['lead', 'gate-deployers']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      `checklists.templates bizosaas (${join(import.meta.dirname, '../../templates/bizosaas.yml')}) names what the config lacks, so 6 part(s) are left out: `,
    );
    expect(warnings[0]).toContain(
      'checklists.preprod.sections.0.items.1.check.environment: preproduction is not a configured environment (configured: staging, production); “Error rate under 0.1%” is ticked by hand instead',
    );
    expect(warnings[0]).toContain(
      'checklists.preprod.mayTick.2: deployers:preproduction names an environment',
    );
  });

  it('teamflow: the API p95 target is measured in production, every list says who ticks', () => {
    const warnings: string[] = [];
    const t = loadTemplate('teamflow', twoEnvs, (w) => warnings.push(w));
    expect(warnings).toEqual([]);
    expect(checkOf(t, 'post', 'api-p95')).toEqual({
      kind: 'metric',
      metric: 'response-time-p95',
      max: 0.5,
      environment: 'production',
    });
    expect(checkOf(t, 'post', 'page-load')).toBeUndefined();
    for (const cl of Object.values(t.checklists)) expect(cl.mayTick).toEqual(['lead', 'gate-deployers']);
  });
});

describe('a template of the team’s own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fd-tpl-'));
  const write = (name: string, edit: (t: Record<string, any>) => void) => {
    const t: Record<string, any> = {
      name: 'Own',
      phases: [1, 2, 3, 4].map((phase) => ({
        phase,
        title: `P${phase}`,
        checklist: phase === 3 ? 'pre' : phase === 4 ? 'post' : `p${phase}`,
      })),
      checklists: Object.fromEntries(
        ['p1', 'p2', 'pre', 'post'].map((id) => [
          id,
          { title: id, sections: [{ title: 'S', items: [{ id: 'a', text: 'A' }] }] },
        ]),
      ),
    };
    edit(t);
    const file = join(dir, `${name}.yml`);
    writeFileSync(file, stringify(t));
    return file;
  };

  it('naming an unknown environment or service is a config error naming the key', () => {
    const file = write('unknown', (t) => {
      t.checklists.p1.mayTick = ['lead', 'deployers:qa'];
      t.checklists.p2.sections[0].items[0].check = {
        kind: 'metric',
        metric: 'cpu',
        max: 70,
        environment: 'qa',
      };
      t.checklists.pre.sections[0].items[0].check = { kind: 'health', environment: 'staging', service: 'db' };
    });
    expect(() => loadTemplate(file, twoEnvs)).toThrow(
      /checklists\.p1\.mayTick\.1: deployers:qa names an environment that is not configured \(configured: staging, production\)/,
    );
    try {
      loadTemplate(file, twoEnvs);
    } catch (err) {
      expect((err as { problems: string[] }).problems).toEqual([
        'checklists.p1.mayTick.1: deployers:qa names an environment that is not configured (configured: staging, production)',
        'checklists.p2.sections.0.items.0.check.environment: qa is not a configured environment (configured: staging, production)',
        'checklists.pre.sections.0.items.0.check.service: db is not a service of staging (services: api, web)',
      ]);
    }
  });

  it('bad tick lists and metric checks are refused with the key', () => {
    const file = write('bad', (t) => {
      t.checklists.p1.sections[0].mayTick = ['leads'];
      t.checklists.p2.mayTick = [];
      t.checklists.pre.sections[0].items[0].check = {
        kind: 'metric',
        metric: 'latency',
        max: 1,
        environment: 'staging',
      };
      t.checklists.post.sections[0].items[0].check = {
        kind: 'metric',
        metric: 'cpu',
        environment: 'staging',
      };
    });
    let problems: string[] = [];
    try {
      loadTemplate(file);
    } catch (err) {
      problems = (err as { problems: string[] }).problems;
    }
    expect(problems.join('\n')).toMatch(
      /checklists\.p1\.sections\.0\.mayTick\.0: must be lead, owner, gate-deployers/,
    );
    expect(problems.join('\n')).toContain('checklists.p2.mayTick: names nobody');
    expect(problems.join('\n')).toMatch(/checklists\.pre\.sections\.0\.items\.0\.check\.metric: /);
    expect(problems.join('\n')).toContain(
      'checklists.post.sections.0.items.0.check: needs a threshold: max or min',
    );
  });
});

describe('metric checks', () => {
  const answer = (values: number[]) => {
    const asked: Array<[string | undefined, string]> = [];
    return {
      asked,
      deps: {
        promQuery: async (env: string | undefined, q: string) => {
          asked.push([env, q]);
          return values;
        },
        swarmFor: () => {
          throw new Error('unused');
        },
        liveColour: async () => 'blue' as const,
      },
    };
  };
  const p95 = { kind: 'metric', metric: 'response-time-p95', max: 2, environment: 'staging' } as const;

  it('runs the documented default against the environment’s Prometheus and shows value and threshold', async () => {
    const a = answer([0.41]);
    expect(await runCheck(p95, twoEnvs, a.deps)).toEqual({ ok: true, evidence: 'p95 0.41 s (< 2 s)' });
    expect(a.asked).toEqual([
      [
        'staging',
        'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{environment="staging"}[5m])))',
      ],
    ]);
    const cpu = answer([12.5, 71.04, 3]);
    expect(
      await runCheck({ kind: 'metric', metric: 'cpu', max: 70, environment: 'staging' }, twoEnvs, cpu.deps),
    ).toEqual({ ok: false, evidence: 'CPU 71% (< 70%, worst of 3)' });
    expect((await runCheck(p95, twoEnvs, answer([2]).deps)).ok).toBe(false); // "< 2 s" is strict
    const none = await runCheck(p95, twoEnvs, answer([]).deps);
    expect(none.ok).toBe(false);
    expect(none.evidence).toMatch(/^p95: no data in staging \(< 2 s; query histogram_quantile/);
  });

  it('uses the environment’s own query when the config gives one', async () => {
    const cfg = unitConfig((raw) => {
      Object.assign(raw.environments.staging as object, {
        checks: { 'error-rate': '100 * my_errors_ratio{env="{{environment}}",svc="{{service}}"}' },
      });
    });
    const a = answer([0.02]);
    const check = {
      kind: 'metric',
      metric: 'error-rate',
      max: 0.1,
      environment: 'staging',
      service: 'api',
    } as const;
    expect(await runCheck(check, cfg, a.deps)).toEqual({ ok: true, evidence: 'error rate 0.02% (< 0.1%)' });
    expect(a.asked[0]).toEqual(['staging', '100 * my_errors_ratio{env="staging",svc="api"}']);
    expect(() =>
      unitConfig((raw) => {
        Object.assign(raw.environments.staging as object, { checks: { latency: 'x' } });
      }),
    ).toThrow(/unrecognized|latency/i);
  });

  it('every default query fills its selector, with the service when the item names one', () => {
    for (const name of Object.keys(METRICS) as Array<keyof typeof METRICS>) {
      const q = metricQuery(name, 'preproduction', 'api', undefined);
      expect(q).not.toContain('{{');
      expect(q).toContain('{environment="preproduction",service="api"');
    }
  });
});
