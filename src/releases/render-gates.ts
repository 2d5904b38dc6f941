import { escapeMrkdwn } from '../alerts/render-alert.js';
import type { GateRecord, GateResult, Release } from './schema.js';

/**
 * Every gate explained: one line per gate per step (canary's value, stable's, the test, the sample
 * sizes, the verdict), and the chart for the release's thread, a Block Kit `data_visualization` block
 * (docs.slack.dev/reference/block-kit/blocks/data-visualization-block: title ≤ 50 characters; chart
 * line/bar/area/pie; series 1–6, each named ≤ 20 characters with one data point per axis category,
 * labels ≤ 20 characters; at most two such blocks in a message), with a plain-text fallback.
 */

const VERDICT_ICON: Record<NonNullable<GateResult['verdict']>, string> = {
  pass: '✓',
  marginal: '⚠️',
  fail: '✗',
  noData: '∅',
  waiting: '⏳',
  skipped: '–',
};

export function formatValue(v: number | null | undefined, unit?: GateResult['unit']): string {
  if (v === null || v === undefined) return 'no data';
  if (unit === 'ratio') return `${v === 0 ? '0' : (v * 100).toPrecision(3)}%`;
  if (unit === 'seconds') return v < 1 ? `${(v * 1000).toPrecision(3)} ms` : `${v.toPrecision(3)} s`;
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

/** One gate's line, escaped: “✗ error rate: green 4.10% of 1,200 vs blue 0.50% of 10,800 · z-test p=0.0001 · …”. */
export function gateLine(g: GateResult, canary: string, stable: string): string {
  const verdict = g.verdict ?? (g.ok ? 'pass' : 'fail');
  const icon = VERDICT_ICON[verdict];
  const name = escapeMrkdwn(g.name);
  if (verdict === 'skipped') return `${icon} ${name}: ${escapeMrkdwn(g.test ?? 'not judged')} → skipped`;
  if (g.kind === 'errors' || g.kind === 'latency') {
    const n = g.samples;
    const c = `${canary} ${formatValue(g.value, g.unit)}${n ? ` of ${count(n.canary)}` : ''}`;
    const s = `${stable} ${formatValue(g.stable, g.unit)}${n ? ` of ${count(n.stable)}` : ''}`;
    const p =
      g.pValue !== undefined
        ? ` p=${g.pValue < 0.0001 ? g.pValue.toExponential(1) : g.pValue.toPrecision(2)}`
        : '';
    const accepted = g.accepted ? ' (accepted by a person)' : '';
    return `${icon} ${name}: ${c} vs ${s} ·${p} ${escapeMrkdwn(g.test ?? g.limit)} → ${verdict}${accepted}`;
  }
  return `${icon} ${name}: ${formatValue(g.value, g.unit)} (${escapeMrkdwn(g.limit)}) → ${verdict}`;
}

/** The gates of every step so far, newest first kept when it must be cut to `max` characters. */
export function gatesText(r: Pick<Release, 'gateHistory'>, max = 2900): string {
  const parts = (r.gateHistory ?? []).map(
    (h) => `*Gate at ${h.percent}%*\n${h.results.map((g) => gateLine(g, h.canary, h.stable)).join('\n')}`,
  );
  const kept: string[] = [];
  let len = 0;
  for (const part of [...parts].reverse()) {
    const cut = part.length > max ? `${part.slice(0, max - 1)}…` : part;
    if (len + cut.length + 2 > max) break;
    kept.unshift(cut);
    len += cut.length + 2;
  }
  const dropped = parts.length - kept.length;
  const head = dropped > 0 ? `(${dropped} earlier gate step${dropped > 1 ? 's' : ''} in the thread)\n` : '';
  return `${head}${kept.join('\n\n')}`;
}

export interface Chart {
  type: 'data_visualization';
  title: string;
  chart: {
    type: 'line' | 'bar' | 'area';
    series: Array<{ name: string; data: Array<{ label: string; value: number }> }>;
    axis_config: { categories: string[]; x_label?: string; y_label?: string };
  };
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** How a gate's values are charted: percent for ratios, milliseconds for seconds. */
const scaled = (v: number, unit?: GateResult['unit']) =>
  Number((unit === 'ratio' ? v * 100 : unit === 'seconds' ? v * 1000 : v).toPrecision(6));
const axisUnit = (unit?: GateResult['unit']) =>
  unit === 'ratio' ? '%' : unit === 'seconds' ? 'ms' : 'value';

/**
 * One bar chart per gated metric (health left out): categories are the steps with a value, canary
 * beside stable (compare gates) or the canary alone (absolute gates). Steps where either value is
 * missing are left out, since every series needs a point per category.
 */
export function gateCharts(history: GateRecord[]): Chart[] {
  const names = [
    ...new Set(history.flatMap((h) => h.results.filter((g) => g.kind !== 'health').map((g) => g.name))),
  ];
  const charts: Chart[] = [];
  for (const name of names) {
    const rows = history.flatMap((h) => {
      const g = h.results.find((x) => x.name === name);
      if (!g || g.value === null || g.value === undefined) return [];
      const compare = g.kind === 'errors' || g.kind === 'latency';
      if (compare && (g.stable === null || g.stable === undefined)) return [];
      return [{ h, g, compare }];
    });
    const first = rows[0];
    if (!first) continue;
    // A step may run more than once (a person resumed it): the category is its percent, once.
    const byStep = new Map(rows.map((row) => [`${row.h.percent}%`, row]));
    const categories = [...byStep.keys()].slice(-20);
    const canaryName = clip(`${first.h.canary} (canary)`, 20);
    const stableName = clip(`${first.h.stable} (stable)`, 20);
    const series = [
      {
        name: canaryName,
        data: categories.map((c) => {
          const row = byStep.get(c) as (typeof rows)[number];
          return { label: c, value: scaled(row.g.value as number, row.g.unit) };
        }),
      },
    ];
    if (first.compare)
      series.push({
        name: stableName,
        data: categories.map((c) => {
          const row = byStep.get(c) as (typeof rows)[number];
          return { label: c, value: scaled(row.g.stable as number, row.g.unit) };
        }),
      });
    charts.push({
      type: 'data_visualization',
      title: clip(`${name} per step (${axisUnit(first.g.unit)})`, 50),
      chart: {
        type: 'bar',
        series,
        axis_config: { categories, x_label: 'traffic step', y_label: clip(axisUnit(first.g.unit), 50) },
      },
    });
  }
  return charts;
}

/**
 * The thread replies for a release's gates: each holds at most two charts (Slack's limit) and the
 * text fallback of the same figures (the `text` of the message and a section under the charts).
 */
export function gateChartMessages(
  r: Pick<Release, 'gateHistory'>,
): Array<{ text: string; blocks: unknown[] }> {
  const charts = gateCharts(r.gateHistory ?? []);
  const fallback = gatesText(r, 2900);
  if (charts.length === 0) return [];
  const out: Array<{ text: string; blocks: unknown[] }> = [];
  for (let i = 0; i < charts.length; i += 2) {
    const pair = charts.slice(i, i + 2);
    const text = `📊 Gates per step, canary beside stable:\n${fallback}`.slice(0, 3900);
    out.push({
      text,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: '📊 *Gates per step*, canary beside stable' } },
        ...pair,
        ...(i === 0
          ? [{ type: 'section', text: { type: 'mrkdwn', text: fallback || 'no gate values yet' } }]
          : []),
      ],
    });
  }
  return out.slice(0, 3);
}
