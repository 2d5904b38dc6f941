import { describe, expect, it } from 'vitest';
import { releasePolicy } from '../../src/config/schema.js';
import type { Sample } from '../../src/integrations/prometheus.js';
import { gateChartMessages, gateCharts, gateLine, gatesText } from '../../src/releases/render-gates.js';
import { renderRelease } from '../../src/releases/render-release.js';
import type { GateRecord, Release } from '../../src/releases/schema.js';
import { evaluateGate } from '../../src/releases/steps/evaluate-gate.js';
import { blocksError } from '../../tools/slack-emulator/block-kit.js';
import { at, fakeContext, release, step, unitConfig } from './helpers.js';

const NOW = at('2026-01-01T12:00:00Z');
const config = unitConfig((raw) => {
  raw.prometheus = { url: 'http://prometheus.invalid:9090' };
  raw.release = {
    ...raw.release,
    gates: [
      {
        name: 'error rate',
        compare: 'errors',
        requests: 'sum(increase(req{colour="{{colour}}"}[{{window}}]))',
        errors: 'sum(increase(err{colour="{{colour}}"}[{{window}}]))',
        minRequests: 200,
        maxExtension: '2m',
      },
      {
        name: 'p95 latency',
        compare: 'latency',
        buckets: 'sum by (le) (increase(lat_bucket{colour="{{colour}}"}[{{window}}]))',
        minRequests: 200,
        maxExtension: '2m',
      },
    ],
  };
});

type Figures = Record<'blue' | 'green', { n: number; e: number; buckets: Record<string, number> }>;
const fast = { '0.1': 0.8, '0.25': 0.95, '0.5': 0.99, '+Inf': 1 };
const slow = { '0.1': 0.3, '0.25': 0.6, '0.5': 0.9, '+Inf': 1 };
const buckets = (n: number, shape: Record<string, number>) =>
  Object.fromEntries(Object.entries(shape).map(([le, f]) => [le, Math.round(n * f)]));

function run(figures: Figures, r: Partial<Release> = {}, startedAt = NOW) {
  const queries: Array<{ q: string; time?: number }> = [];
  const thread: Array<{ text: string; key: string; blocks?: unknown[] }> = [];
  const locks: string[] = [];
  const ctx = fakeContext({
    config,
    now: () => NOW,
    traffic: { checkColour: async () => ({ ok: true, status: 200, ms: 1, detail: 'ok' }) },
    states: { describeLock: async (_e: string, _s: string, _id: string, what: string) => locks.push(what) },
    promQuery: async () => [],
    promVector: async (_env: string, q: string, time?: number): Promise<Sample[]> => {
      queries.push({ q, time });
      const colour = q.includes('"green"') ? 'green' : 'blue';
      const f = figures[colour];
      if (q.startsWith('sum(increase(req')) return [{ metric: {}, value: f.n }];
      if (q.startsWith('sum(increase(err')) return [{ metric: {}, value: f.e }];
      return Object.entries(f.buckets).map(([le, value]) => ({ metric: { le }, value }));
    },
    releaseThread: async (_id: string, text: string, key: string, blocks?: unknown[]) => {
      thread.push({ text, key, blocks });
    },
  });
  const rel = release({
    steps: [
      step('shift', { percent: 10, status: 'done', finishedAt: NOW - 300_000 }),
      step('soak', { percent: 10, status: 'done' }),
      step('gate', { percent: 10 }),
    ],
    stepIndex: 2,
    ...r,
  });
  return {
    outcome: evaluateGate(ctx, rel, { ...step('gate', { percent: 10 }), startedAt }),
    queries,
    thread,
    locks,
    rel,
  };
}

const even = (n: number, errors: number, shape = fast) => ({ n, e: errors, buckets: buckets(n, shape) });

describe('compare gates', () => {
  it('passes an equal canary, querying both colours over the same window at the same instant', async () => {
    const { outcome, queries, thread } = run({ green: even(1_000, 5), blue: even(9_000, 45) });
    const out = await outcome;
    expect(out.kind).toBe('done');
    expect(queries[0]?.q).toBe('sum(increase(req{colour="green"}[300s]))');
    expect(new Set(queries.map((q) => q.time))).toEqual(new Set([NOW]));
    const r = release();
    out.patch?.(r, step('gate'));
    const errors = r.gateResults.find((g) => g.name === 'error rate');
    expect(errors).toMatchObject({
      verdict: 'pass',
      samples: { canary: 1_000, stable: 9_000 },
      kind: 'errors',
    });
    expect(errors?.value).toBeCloseTo(0.005);
    expect(errors?.stable).toBeCloseTo(0.005);
    expect(r.gateHistory?.[0]?.percent).toBe(10);
    // The chart goes to the thread, and the emulator's Block Kit rules accept it.
    expect(thread).toHaveLength(1);
    expect(blocksError(thread[0]?.blocks ?? [])).toBeUndefined();
    expect(thread[0]?.text).toContain('error rate: green 0.500% of 1,000 vs blue 0.500% of 9,000');
  });

  it('fails a canary significantly worse beyond the margin, showing the figures', async () => {
    const out = await run({ green: even(1_000, 40), blue: even(9_000, 45) }).outcome;
    expect(out.kind).toBe('fail');
    const reason = out.kind === 'fail' ? out.reason : '';
    console.log(reason);
    expect(reason).toMatch(
      /✗ error rate 4\.00% vs stable 0\.500% \(fail, p=[0-9.e-]+, n 1000 vs 9000; worse by more than 0\.1 pp/,
    );
  });

  it('passes a canary worse by less than the margin, however certain', async () => {
    const out = await run({ green: even(100_000, 550), blue: even(900_000, 4_500) }).outcome;
    expect(out.kind).toBe('done');
  });

  it('pauses on a marginal verdict, and a resume accepts it', async () => {
    // 2.5% vs 1.5% on 600 each: beyond the margin, p ≈ 0.1 (between 0.05 and 0.2).
    const figures = { green: even(600, 15), blue: even(600, 9) };
    const first = run(figures);
    const out = await first.outcome;
    expect(out.kind).toBe('wait');
    const r = release({ stepIndex: 2 });
    out.patch?.(r, step('gate'));
    expect(r.status).toBe('paused');
    expect(r.gatePause?.stepIndex).toBe(2);
    expect(r.outcome).toMatch(/Marginal gate at 10%.*Resume/);
    expect(first.locks).toEqual(['paused release 1.2.0']);
    expect(r.gateResults.find((g) => g.name === 'error rate')?.verdict).toBe('marginal');
    const again = await run(figures, { gatePause: { stepIndex: 2, at: NOW } }).outcome;
    expect(again.kind).toBe('done');
    const r2 = release();
    again.patch?.(r2, step('gate'));
    expect(r2.gateResults.find((g) => g.name === 'error rate')).toMatchObject({ accepted: true, ok: true });
    expect(r2.gatePause).toBeUndefined();
  });

  it('waits with too few requests (the soak goes on), then counts it as no data', async () => {
    const few = { green: even(50, 0), blue: even(5_000, 10) };
    const waiting = await run(few).outcome;
    expect(waiting.kind).toBe('wait');
    expect(waiting.kind === 'wait' && waiting.until).toBe(NOW + 15_000);
    expect(waiting.kind === 'wait' && waiting.detail).toMatch(
      /too few requests to judge error rate \(green 50, blue 5000\)/,
    );
    const late = await run(few, {}, NOW - 120_000).outcome;
    expect(late.kind).toBe('fail');
    expect(late.kind === 'fail' && late.reason).toMatch(
      /✗ error rate 0% vs stable 0\.200% \(noData, n 50 vs 5000/,
    );
  });

  it('fails a latency regression and passes the same distribution', async () => {
    const slower = await run({ green: even(1_000, 0, slow), blue: even(9_000, 0, fast) }).outcome;
    expect(slower.kind).toBe('fail');
    expect(slower.kind === 'fail' && slower.reason).toMatch(/✗ p95 latency .* ms vs stable .* ms \(fail/);
    const same = await run({ green: even(1_000, 0, fast), blue: even(9_000, 0, fast) }).outcome;
    expect(same.kind).toBe('done');
  });
});

const record = (percent: number, canaryErr: number): GateRecord => ({
  percent,
  at: NOW,
  canary: 'green',
  stable: 'blue',
  results: [
    { name: 'health of green', value: 1, limit: '= 1', ok: true, kind: 'health', verdict: 'pass' },
    {
      name: 'error rate',
      value: canaryErr,
      stable: 0.005,
      limit: 'x',
      ok: true,
      kind: 'errors',
      verdict: 'pass',
      unit: 'ratio',
      samples: { canary: 1200, stable: 10800 },
      pValue: 0.41,
      test: 'one-sided z-test; fails if worse with 95% and by more than 0.1 pp',
    },
    {
      name: 'p95 <latency>',
      value: 0.21,
      stable: 0.2,
      limit: 'x',
      ok: true,
      kind: 'latency',
      verdict: 'pass',
      unit: 'seconds',
      samples: { canary: 1200, stable: 10800 },
    },
    { name: 'rps', value: 12, limit: '≥ 1', ok: true, kind: 'threshold', verdict: 'pass' },
  ],
});

describe('rendering the gates', () => {
  it('explains every gate: canary, stable, samples, test, verdict, escaped', () => {
    const r = record(10, 0.0042);
    expect(gateLine(r.results[1] as never, 'green', 'blue')).toBe(
      '✓ error rate: green 0.420% of 1,200 vs blue 0.500% of 10,800 · p=0.41 one-sided z-test; fails if worse with 95% and by more than 0.1 pp → pass',
    );
    expect(gateLine(r.results[2] as never, 'green', 'blue')).toContain('p95 &lt;latency&gt;: green 210 ms');
    expect(gateLine(r.results[3] as never, 'green', 'blue')).toBe('✓ rps: 12 (≥ 1) → pass');
  });

  it('keeps the newest steps within a section’s limit', () => {
    const many = { gateHistory: Array.from({ length: 60 }, (_, i) => record(i + 1, 0.004)) };
    const text = gatesText(many, 2900);
    expect(text.length).toBeLessThanOrEqual(2900);
    expect(text).toMatch(/^\(\d+ earlier gate steps in the thread\)/);
    expect(text).toContain('*Gate at 60%*');
  });

  it('shows every step’s gates in the release message, within Slack’s limits', () => {
    const r = release({
      gateHistory: [record(10, 0.004), record(50, 0.006)],
      gateResults: record(50, 0.006).results,
    });
    const { blocks } = renderRelease(r);
    expect(blocksError(blocks)).toBeUndefined();
    const text = JSON.stringify(blocks);
    expect(text).toContain('*Gate at 10%*');
    expect(text).toContain('*Gate at 50%*');
  });

  it('charts each gated metric per step, canary beside stable, in the documented shape', () => {
    const charts = gateCharts([record(10, 0.004), record(50, 0.006), record(100, 0.005)]);
    expect(charts.map((c) => c.title)).toEqual([
      'error rate per step (%)',
      'p95 <latency> per step (ms)',
      'rps per step (value)',
    ]);
    expect(charts[0]).toEqual({
      type: 'data_visualization',
      title: 'error rate per step (%)',
      chart: {
        type: 'bar',
        series: [
          {
            name: 'green (canary)',
            data: [
              { label: '10%', value: 0.4 },
              { label: '50%', value: 0.6 },
              { label: '100%', value: 0.5 },
            ],
          },
          {
            name: 'blue (stable)',
            data: [
              { label: '10%', value: 0.5 },
              { label: '50%', value: 0.5 },
              { label: '100%', value: 0.5 },
            ],
          },
        ],
        axis_config: { categories: ['10%', '50%', '100%'], x_label: 'traffic step', y_label: '%' },
      },
    });
    const messages = gateChartMessages({ gateHistory: [record(10, 0.004)] });
    // Three charts: two messages, two charts at most in each, all valid.
    expect(messages).toHaveLength(2);
    for (const m of messages) expect(blocksError(m.blocks)).toBeUndefined();
    expect(messages[0]?.text).toContain('error rate: green 0.400% of 1,200 vs blue 0.500% of 10,800');
  });
});

describe('the emulator’s data_visualization rules', () => {
  const good = gateCharts([record(10, 0.004)])[0] as unknown as Record<string, any>;
  const broken = (edit: (b: Record<string, any>) => void) => {
    const b = structuredClone(good);
    edit(b);
    return blocksError([b]);
  };
  it('accepts the documented shape and refuses what Slack would', () => {
    expect(blocksError([good])).toBeUndefined();
    expect(broken((b) => (b.title = 'x'.repeat(51)))).toMatch(/title/);
    expect(broken((b) => delete b.title)).toMatch(/title/);
    expect(broken((b) => (b.chart.type = 'scatter'))).toMatch(/chart type/);
    expect(broken((b) => delete b.chart.axis_config)).toMatch(/axis_config is required/);
    expect(broken((b) => (b.chart.series[0].name = 'a very long series name'))).toMatch(/series name/);
    expect(broken((b) => (b.chart.series[1].name = b.chart.series[0].name))).toMatch(/repeats/);
    expect(broken((b) => (b.chart.series[0].data[0].value = 'high'))).toMatch(/value must be a number/);
    expect(broken((b) => b.chart.series[0].data.push({ label: '50%', value: 1 }))).toMatch(
      /one data point per axis category/,
    );
    expect(
      broken(
        (b) =>
          (b.chart.series = Array.from({ length: 7 }, (_, i) => ({
            name: `s${i}`,
            data: [{ label: '10%', value: 1 }],
          }))),
      ),
    ).toMatch(/1–6 series/);
    expect(broken((b) => (b.chart.colour = 'red'))).toMatch(/unknown chart field/);
    expect(
      blocksError([
        {
          type: 'data_visualization',
          title: 'pie',
          chart: { type: 'pie', segments: [{ label: 'a', value: 0 }] },
        },
      ]),
    ).toMatch(/> 0/);
    expect(blocksError([good, good, good])).toMatch(/at most 2/);
    expect(blocksError([{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }])).toMatch(
      /3000/,
    );
  });
});

describe('compare gate config', () => {
  it('ships the example with the seed’s check-metrics as compare gates', async () => {
    const { readFileSync } = await import('node:fs');
    const { parseConfigText } = await import('../../src/config/load-config.js');
    const cfg = parseConfigText(
      readFileSync(new URL('../../examples/flightdeck.yml', import.meta.url), 'utf8'),
    );
    const gates = releasePolicy(cfg, 'production').gates;
    expect(gates.map((g) => ('compare' in g ? `${g.name}: ${g.compare}` : g.name))).toEqual([
      'error rate: errors',
      'p95 latency: latency',
    ]);
    expect(gates[0]).toMatchObject({
      confidence: 0.95,
      margin: 0.001,
      minRequests: 200,
      maxExtension: 600_000,
    });
  });

  it('fills the defaults and refuses a marginal bar at or above the confidence', () => {
    const gate = { name: 'e', compare: 'errors', requests: 'a', errors: 'b' };
    const cfg = unitConfig((raw) => {
      raw.prometheus = { url: 'http://p.invalid:9090' };
      raw.release = { ...raw.release, gates: [gate] };
    });
    expect(releasePolicy(cfg, 'staging').gates[0]).toMatchObject({
      confidence: 0.95,
      marginalConfidence: 0.8,
      margin: 0.001,
      relativeMargin: 0,
      minRequests: 200,
      maxExtension: 600_000,
      noData: 'fail',
    });
    expect(() =>
      unitConfig((raw) => {
        raw.prometheus = { url: 'http://p.invalid:9090' };
        raw.release = { ...raw.release, gates: [{ ...gate, marginalConfidence: 0.95 }] };
      }),
    ).toThrow(/marginalConfidence must be below confidence/);
    expect(() =>
      unitConfig((raw) => {
        raw.release = { ...raw.release, gates: [{ ...gate, compare: 'cpu' }] };
      }),
    ).toThrow();
  });
});
