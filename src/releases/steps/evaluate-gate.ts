import { escapeMrkdwn } from '../../alerts/render-alert.js';
import {
  type CompareGate,
  type ErrorsCompareGate,
  type Gate,
  type LatencyCompareGate,
  releasePolicy,
} from '../../config/schema.js';
import type { Sample } from '../../integrations/prometheus.js';
import {
  compareProportions,
  histogramCount,
  histogramOf,
  histogramQuantile,
  mannWhitneyBuckets,
  verdictOf,
} from '../gate-stats.js';
import { type ReleaseContext, type StepHandler, serviceDef } from '../release-context.js';
import { formatValue, gateChartMessages } from '../render-gates.js';
import type { GateRecord, GateResult, Release, Step } from '../schema.js';

/** While a compare gate waits for enough requests, it looks again this often (or at its deadline). */
const RECHECK_MS = 15_000;
/** The shortest window a compare gate queries: increase() needs a few scrapes. */
const MIN_WINDOW_MS = 15_000;

/**
 * Health of the new colour plus every gate. Absolute gates compare a value with max/min; compare
 * gates judge the canary against the stable colour over the same window. Any failure rolls the
 * release back; a marginal compare verdict pauses it for a person (Resume accepts it, Abort rolls
 * back); a compare gate with too few requests is not judged yet and the step waits (the soak goes
 * on) up to its `maxExtension`, after which it counts as `noData`.
 */
export const evaluateGate: StepHandler = async (ctx, r, step) => {
  const policy = releasePolicy(ctx.config, r.environment);
  const def = serviceDef(ctx, r);
  const now = ctx.now();
  const startedAt = step.startedAt ?? now;
  const health = await ctx.traffic.checkColour(
    r.environment,
    r.service,
    r.toColour,
    policy.healthCheck.timeout,
  );
  const results: GateResult[] = [
    {
      name: `health of ${r.toColour}`,
      value: health.ok ? 1 : 0,
      limit: '= 1',
      ok: health.ok,
      kind: 'health',
      verdict: health.ok ? 'pass' : 'fail',
    },
  ];
  // A person resumed the release this marginal gate paused: its marginal verdicts are accepted.
  const accepted = r.gatePause?.stepIndex === r.stepIndex;
  const windowSince = shiftedAt(r, step) ?? startedAt;
  let deadline = Number.POSITIVE_INFINITY;
  for (const gate of policy.gates) {
    if ('compare' in gate && (step.percent ?? 0) >= 100) {
      // Everything is on the canary: the stable colour serves nothing to compare with.
      results.push({
        name: gate.name,
        value: null,
        limit: 'canary vs stable',
        ok: true,
        kind: gate.compare,
        verdict: 'skipped',
        test: 'not judged at 100%: the stable colour serves no traffic (judged at the steps before)',
      });
    } else if ('compare' in gate) {
      const windowMs = Math.max(gate.window ?? now - windowSince, MIN_WINDOW_MS);
      const vars = (colour: 'blue' | 'green') => ({
        environment: r.environment,
        service: r.service,
        colour,
        swarmService: def[colour].swarmService,
        window: `${Math.round(windowMs / 1000)}s`,
      });
      const query = (q: string, colour: 'blue' | 'green') =>
        queryVector(ctx, r.environment, fillTemplate(q, vars(colour)), now);
      const expired = now - startedAt >= gate.maxExtension;
      const res =
        gate.compare === 'errors'
          ? await judgeErrors(gate, query, r, expired)
          : await judgeLatency(gate, query, r, expired);
      if (res.verdict === 'marginal' && accepted) Object.assign(res, { ok: true, accepted: true });
      if (res.verdict === 'waiting') deadline = Math.min(deadline, startedAt + gate.maxExtension);
      results.push(res);
    } else {
      const query = fillTemplate(gate.query, vars0(r, def));
      const values = await ctx.promQuery(r.environment, query);
      const j = judge(gate, values);
      results.push({
        ...j,
        kind: 'threshold',
        verdict: j.ok ? 'pass' : j.value === null ? 'noData' : 'fail',
      });
    }
  }

  const record: GateRecord = {
    percent: step.percent ?? 0,
    at: now,
    canary: r.toColour,
    stable: r.fromColour,
    results,
  };
  const history = [...(r.gateHistory ?? []).filter((h) => h.percent !== record.percent), record].sort(
    (a, b) => a.percent - b.percent,
  );
  const recordOn = (rel: Release) => {
    rel.gateResults = results;
    rel.gateHistory = history;
  };
  const text = results.map(formatResult).join(', ');
  const failed = results.filter((x) => !x.ok && x.verdict !== 'waiting' && x.verdict !== 'marginal');
  const waiting = results.filter((x) => x.verdict === 'waiting');
  const marginal = results.filter((x) => x.verdict === 'marginal' && !x.accepted);

  if (failed.length === 0 && waiting.length > 0) {
    const until = Math.max(now + 1, Math.min(now + RECHECK_MS, deadline));
    const short = waiting
      .map(
        (g) =>
          `${escapeMrkdwn(g.name)} (${r.toColour} ${count(g.samples?.canary)}, ${r.fromColour} ${count(g.samples?.stable)})`,
      )
      .join(', ');
    return {
      kind: 'wait',
      until,
      detail: `too few requests to judge ${short}: soak extended, at most until ${hhmmss(deadline)} UTC`,
      patch: (rel) => recordOn(rel),
    };
  }

  if (policy.gates.some((g) => 'compare' in g))
    await postCharts(
      ctx,
      r,
      { gateHistory: history },
      `${step.percent ?? 0}-${accepted ? 'resumed' : 'first'}`,
    );
  if (failed.length > 0)
    return {
      kind: 'fail',
      reason: `gate failed: ${failed.map(formatResult).join(', ')}`,
      patch: (rel) => {
        recordOn(rel);
        rel.gatePause = undefined;
      },
    };
  if (marginal.length > 0) {
    const why = marginal.map(formatResult).join(', ');
    await ctx.states.describeLock(r.environment, r.service, r.id, `paused release ${r.version}`);
    return {
      kind: 'wait',
      until: now + 3_600_000,
      detail: `marginal: ${why} — paused for a person to decide`,
      patch: (rel) => {
        recordOn(rel);
        rel.status = 'paused';
        rel.gatePause = { stepIndex: rel.stepIndex, at: now };
        rel.outcome = `⚠️ Marginal gate at ${step.percent}%: ${why}. Resume to accept it and go on, or Abort to roll back.`;
        rel.events.push({ at: now, text: `⏸️ Paused by a marginal gate: ${why}` });
      },
    };
  }
  return {
    kind: 'done',
    detail: text,
    patch: (rel) => {
      recordOn(rel);
      rel.gatePause = undefined;
    },
  };
};

const hhmmss = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString().slice(11, 19) : '—');
const count = (n: number | undefined) => String(Math.round(n ?? 0));

const vars0 = (r: Release, def: ReturnType<typeof serviceDef>) => ({
  environment: r.environment,
  service: r.service,
  colour: r.toColour,
  swarmService: def[r.toColour].swarmService,
});

/** When this gate's traffic step moved the weights: the start of its window. */
function shiftedAt(r: Release, step: Step): number | undefined {
  return r.steps.find((s) => s.kind === 'shift' && s.percent === step.percent)?.finishedAt;
}

async function queryVector(ctx: ReleaseContext, env: string, q: string, time: number): Promise<Sample[]> {
  if (ctx.promVector) return ctx.promVector(env, q, time);
  return (await ctx.promQuery(env, q)).map((value) => ({ metric: {}, value }));
}

type Query = (q: string, colour: 'blue' | 'green') => Promise<Sample[]>;
const sum = (s: Sample[]) => s.reduce((a, x) => a + x.value, 0);
const pct = (v: number) => `${Number((v * 100).toPrecision(3))}`;

function notJudged(gate: CompareGate, base: GateResult, expired: boolean): GateResult {
  if (!expired) return { ...base, ok: true, verdict: 'waiting' };
  return { ...base, ok: gate.noData === 'pass', verdict: 'noData' };
}

async function judgeErrors(
  gate: ErrorsCompareGate,
  query: Query,
  r: Release,
  expired: boolean,
): Promise<GateResult> {
  const [n1, e1, n0, e0] = (
    await Promise.all([
      query(gate.requests, r.toColour),
      query(gate.errors, r.toColour),
      query(gate.requests, r.fromColour),
      query(gate.errors, r.fromColour),
    ])
  ).map(sum) as [number, number, number, number];
  const c = { n: n1, e: Math.min(e1, n1) };
  const s = { n: n0, e: Math.min(e0, n0) };
  const stableRatio = s.n > 0 ? s.e / s.n : null;
  const allowed = Math.max(gate.margin, gate.relativeMargin * (stableRatio ?? 0));
  const conf = `${Number((gate.confidence * 100).toPrecision(3))}%`;
  const base: GateResult = {
    name: gate.name,
    value: c.n > 0 ? c.e / c.n : null,
    stable: stableRatio,
    limit: `worse by more than ${pct(allowed)} pp with ${conf}`,
    ok: false,
    kind: 'errors',
    unit: 'ratio',
    samples: { canary: c.n, stable: s.n },
  };
  if (c.n < gate.minRequests || s.n < gate.minRequests)
    return notJudged(gate, { ...base, test: `needs ${gate.minRequests} requests per colour` }, expired);
  const t = compareProportions(c.e, c.n, s.e, s.n);
  const beyond = t.canaryRatio - t.stableRatio > allowed;
  const verdict = verdictOf(t.pValue, beyond, gate.confidence, gate.marginalConfidence);
  return {
    ...base,
    ok: verdict === 'pass',
    verdict,
    pValue: t.pValue,
    test: `${t.test === 'z' ? 'one-sided z-test' : 'one-sided Fisher exact test'}; fails if worse with ${conf} and by more than ${pct(allowed)} pp`,
  };
}

async function judgeLatency(
  gate: LatencyCompareGate,
  query: Query,
  r: Release,
  expired: boolean,
): Promise<GateResult> {
  const [cs, ss] = await Promise.all([query(gate.buckets, r.toColour), query(gate.buckets, r.fromColour)]);
  const hist = (x: Sample[]) =>
    histogramOf(x.flatMap((s) => (s.metric.le !== undefined ? [{ le: s.metric.le, value: s.value }] : [])));
  const c = hist(cs);
  const s = hist(ss);
  const qc = histogramQuantile(gate.quantile, c) ?? null;
  const qs = histogramQuantile(gate.quantile, s) ?? null;
  const q = `p${Number((gate.quantile * 100).toPrecision(3))}`;
  const conf = `${Number((gate.confidence * 100).toPrecision(3))}%`;
  const base: GateResult = {
    name: gate.name,
    value: qc,
    stable: qs,
    limit: `${q} ≤ ${1 + gate.tolerance}× stable`,
    ok: false,
    kind: 'latency',
    unit: 'seconds',
    samples: { canary: histogramCount(c), stable: histogramCount(s) },
  };
  if (histogramCount(c) < gate.minRequests || histogramCount(s) < gate.minRequests)
    return notJudged(gate, { ...base, test: `needs ${gate.minRequests} requests per colour` }, expired);
  const mw = mannWhitneyBuckets(c, s);
  const beyond = qc !== null && qs !== null && (qs > 0 ? qc > qs * (1 + gate.tolerance) : qc > 0);
  const verdict = verdictOf(mw.pValue, beyond, gate.confidence, gate.marginalConfidence);
  return {
    ...base,
    ok: verdict === 'pass',
    verdict,
    pValue: mw.pValue,
    test: `Mann-Whitney U, P(canary slower) ${mw.effect.toFixed(2)}; fails if slower with ${conf} and ${q} > ${1 + gate.tolerance}× stable`,
  };
}

/** The chart replies in the release's thread, once per step and verdict (a resumed step posts again). */
async function postCharts(ctx: ReleaseContext, r: Release, h: Pick<Release, 'gateHistory'>, key: string) {
  const messages = gateChartMessages(h);
  if (messages.length === 0 || !ctx.releaseThread) return;
  for (const [i, m] of messages.entries())
    await ctx.releaseThread(r.id, m.text, `${r.id}-gates-${key}-${i}`, m.blocks);
}

/** Worst value across series: the largest for a max gate, the smallest for a min gate. */
export function judge(gate: Gate, values: number[]): GateResult {
  const limit = [gate.max !== undefined ? `≤ ${gate.max}` : '', gate.min !== undefined ? `≥ ${gate.min}` : '']
    .filter(Boolean)
    .join(' and ');
  if (values.length === 0) return { name: gate.name, value: null, limit, ok: gate.noData === 'pass' };
  const worst = gate.max !== undefined ? Math.max(...values) : Math.min(...values);
  const ok = (gate.max === undefined || worst <= gate.max) && (gate.min === undefined || worst >= gate.min);
  return { name: gate.name, value: worst, limit, ok };
}

export function formatResult(g: GateResult): string {
  const name = escapeMrkdwn(g.name);
  if (g.verdict === 'skipped') return `– ${name} not judged (the stable colour serves nothing)`;
  if (g.kind === 'errors' || g.kind === 'latency') {
    const icon = g.verdict === 'marginal' ? (g.accepted ? '✓' : '⚠️') : g.ok ? '✓' : '✗';
    const n = g.samples ? `, n ${Math.round(g.samples.canary)} vs ${Math.round(g.samples.stable)}` : '';
    const p = g.pValue !== undefined ? `, p=${g.pValue.toPrecision(2)}` : '';
    return `${icon} ${name} ${formatValue(g.value, g.unit)} vs stable ${formatValue(g.stable, g.unit)} (${g.verdict}${p}${n}; ${g.limit})`;
  }
  const v =
    g.value === null ? 'no data' : Number.isInteger(g.value) ? String(g.value) : g.value.toPrecision(3);
  return `${g.ok ? '✓' : '✗'} ${name} ${v} (${g.limit})`;
}

/** Only values from the config (validated names) are substituted, never user text. */
export function fillTemplate(query: string, values: Record<string, string>): string {
  return query.replace(/\{\{(\w+)\}\}/g, (m, k: string) => values[k] ?? m);
}
