import { describe, expect, it } from 'vitest';
import type { Gate } from '../../src/config/schema.js';
import { evaluateGate, fillTemplate, formatResult, judge } from '../../src/releases/steps/evaluate-gate.js';
import { fakeContext, release, step, unitConfig } from './helpers.js';

const gate = (g: Partial<Gate>): Gate => ({ name: 'g', query: 'q', noData: 'fail', ...g });

describe('judge', () => {
  it('passes a max gate at or under the limit and fails it above', () => {
    expect(judge(gate({ max: 0.01 }), [0.01]).ok).toBe(true);
    expect(judge(gate({ max: 0.01 }), [0.0101]).ok).toBe(false);
  });

  it('passes a min gate at or over the limit and fails it below', () => {
    expect(judge(gate({ min: 5 }), [5]).ok).toBe(true);
    expect(judge(gate({ min: 5 }), [4.99]).ok).toBe(false);
  });

  it('judges the worst series: the largest for a max gate', () => {
    expect(judge(gate({ max: 1 }), [0.1, 3, 0.2])).toMatchObject({ value: 3, ok: false });
  });

  it('judges the worst series: the smallest for a min gate', () => {
    expect(judge(gate({ min: 1 }), [5, 0.5, 9])).toMatchObject({ value: 0.5, ok: false });
  });

  it('checks both bounds of a range gate', () => {
    const range = gate({ min: 1, max: 10 });
    expect(judge(range, [5]).ok).toBe(true);
    expect(judge(range, [11]).ok).toBe(false);
    expect(judge(range, [0]).ok).toBe(false);
    expect(judge(range, [5]).limit).toBe('≤ 10 and ≥ 1');
  });

  it('fails on no data unless the gate says noData: pass', () => {
    expect(judge(gate({ max: 1 }), [])).toEqual({ name: 'g', value: null, limit: '≤ 1', ok: false });
    expect(judge(gate({ max: 1, noData: 'pass' }), []).ok).toBe(true);
  });
});

describe('formatResult', () => {
  it('shows a tick or cross, the name, the value and the limit', () => {
    expect(formatResult({ name: 'error rate', value: 0.000123456, limit: '≤ 0.001', ok: true })).toBe(
      '✓ error rate 0.000123 (≤ 0.001)',
    );
    expect(formatResult({ name: 'p95', value: 3, limit: '≤ 2', ok: false })).toBe('✗ p95 3 (≤ 2)');
    expect(formatResult({ name: 'rps', value: null, limit: '≥ 1', ok: false })).toBe('✗ rps no data (≥ 1)');
  });
});

describe('fillTemplate', () => {
  it('fills known placeholders and leaves unknown ones as written', () => {
    expect(
      fillTemplate('x{service="{{service}}",c="{{colour}}",o="{{other}}"}', {
        service: 'api',
        colour: 'green',
      }),
    ).toBe('x{service="api",c="green",o="{{other}}"}');
  });

  it('does not substitute text that merely looks like a placeholder inside a value', () => {
    expect(fillTemplate('{{a}}', { a: '{{b}}', b: 'oops' })).toBe('{{b}}');
  });
});

describe('evaluateGate step', () => {
  const config = unitConfig((raw) => {
    raw.prometheus = { url: 'http://prometheus.invalid:9090' };
    raw.release = {
      ...raw.release,
      gates: [
        { name: 'error rate', query: 'err{svc="{{swarmService}}",env="{{environment}}"}', max: 0.01 },
        { name: 'throughput', query: 'rps{service="{{service}}",colour="{{colour}}"}', min: 1 },
      ],
    };
  });

  function run(opts: { healthy?: boolean; values?: Record<string, number[]> } = {}) {
    const queries: string[] = [];
    const environments: Array<string | undefined> = [];
    const health: unknown[][] = [];
    const ctx = fakeContext({
      config,
      traffic: {
        checkColour: async (...args: unknown[]) => {
          health.push(args);
          return { ok: opts.healthy ?? true, status: 200, ms: 1, detail: 'ok' };
        },
      },
      promQuery: async (environment: string | undefined, q: string) => {
        environments.push(environment);
        queries.push(q);
        const key = q.split('{')[0] as string;
        return opts.values?.[key] ?? [0.001];
      },
    });
    return {
      outcome: evaluateGate(ctx, release(), step('gate', { percent: 50 })),
      queries,
      environments,
      health,
    };
  }

  it('queries every gate with the release’s names filled in', async () => {
    const { outcome, queries, environments, health } = run({ values: { err: [0.001], rps: [12] } });
    expect((await outcome).kind).toBe('done');
    expect(queries).toEqual([
      'err{svc="fdunit-staging-api-green",env="staging"}',
      'rps{service="api",colour="green"}',
    ]);
    // Each query goes to the release's environment's Prometheus.
    expect(environments).toEqual(['staging', 'staging']);
    expect(health).toEqual([['staging', 'api', 'green', 1_000]]);
  });

  it('is done with every result listed when all pass, and records them on the release', async () => {
    const out = await run({ values: { err: [0.001], rps: [12] } }).outcome;
    expect(out).toMatchObject({
      kind: 'done',
      detail: '✓ health of green 1 (= 1), ✓ error rate 0.00100 (≤ 0.01), ✓ throughput 12 (≥ 1)',
    });
    const r = release();
    out.patch?.(r, step('gate'));
    expect(r.gateResults.map((g) => [g.name, g.ok])).toEqual([
      ['health of green', true],
      ['error rate', true],
      ['throughput', true],
    ]);
  });

  it('fails naming only the failed gates when a metric is over its limit', async () => {
    const out = await run({ values: { err: [0.2, 0.001], rps: [12] } }).outcome;
    expect(out.kind).toBe('fail');
    expect(out.kind === 'fail' && out.reason).toBe('gate failed: ✗ error rate 0.200 (≤ 0.01)');
  });

  it('fails when the new colour is unhealthy even if every metric passes', async () => {
    const out = await run({ healthy: false, values: { err: [0], rps: [12] } }).outcome;
    expect(out.kind === 'fail' && out.reason).toBe('gate failed: ✗ health of green 0 (= 1)');
  });

  it('fails a gate that has no data (no traffic is not proof of health)', async () => {
    const out = await run({ values: { err: [0], rps: [] } }).outcome;
    expect(out.kind === 'fail' && out.reason).toBe('gate failed: ✗ throughput no data (≥ 1)');
  });

  it('records the results on a failure too, so the message shows why', async () => {
    const out = await run({ values: { err: [1], rps: [12] } }).outcome;
    const r = release();
    out.patch?.(r, step('gate'));
    expect(r.gateResults.find((g) => g.name === 'error rate')).toMatchObject({ value: 1, ok: false });
  });

  it('with no gates configured, judges health alone and never queries Prometheus', async () => {
    const ctx = fakeContext({
      traffic: { checkColour: async () => ({ ok: true, status: 200, ms: 1, detail: 'ok' }) },
    });
    const out = await evaluateGate(ctx, release(), step('gate'));
    expect(out).toMatchObject({ kind: 'done', detail: '✓ health of green 1 (= 1)' });
  });
});
