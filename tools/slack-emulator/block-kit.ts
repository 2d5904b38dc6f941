/**
 * The Block Kit rules the emulator enforces, as Slack documents them, so a message Slack would refuse
 * (`invalid_blocks`) is refused here too and fails the tests:
 * - at most 50 blocks in a message; a section's text at most 3000 characters;
 * - the `data_visualization` block (docs.slack.dev/reference/block-kit/blocks/data-visualization-block,
 *   changelog 2026-06-16): `title` (required, ≤ 50 characters), `chart` (required: `pie` with 1–6
 *   `segments` {label ≤ 20, value > 0}; or `bar` / `area` / `line` with 1–6 `series` and a required
 *   `axis_config`), optional `block_id`; at most two in one message. The Data Series and Axis Config
 *   limits below the page's first table are taken from the SDKs that implement it (slack-messaging,
 *   slack-morphism): series `name` ≤ 20 and unique, `data` 1–20 points {label ≤ 20, value a number},
 *   one point per `axis_config.categories` entry (each ≤ 20), `x_label` / `y_label` ≤ 50.
 * Returns why the blocks are invalid, or undefined.
 */
export function blocksError(blocks: unknown[]): string | undefined {
  if (blocks.length > 50) return 'more than 50 blocks';
  let charts = 0;
  for (const [i, raw] of blocks.entries()) {
    if (!isObject(raw) || typeof raw.type !== 'string') return `block ${i}: no type`;
    if (raw.type === 'section') {
      const t = isObject(raw.text) ? raw.text.text : undefined;
      if (typeof t === 'string' && t.length > 3000) return `block ${i}: section text over 3000 characters`;
    }
    if (raw.type === 'data_visualization') {
      charts += 1;
      const why = chartError(raw);
      if (why) return `block ${i} (data_visualization): ${why}`;
    }
  }
  if (charts > 2) return `${charts} data_visualization blocks (at most 2 per message)`;
  return undefined;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number) => typeof v === 'string' && v.length >= 1 && v.length <= max;
const extra = (o: Obj, allowed: string[]) => Object.keys(o).find((k) => !allowed.includes(k));

function chartError(b: Obj): string | undefined {
  const unknown = extra(b, ['type', 'title', 'chart', 'block_id']);
  if (unknown) return `unknown field ${unknown}`;
  if (!str(b.title, 50)) return 'title must be 1–50 characters';
  if (b.block_id !== undefined && !str(b.block_id, 255)) return 'block_id must be 1–255 characters';
  const c = b.chart;
  if (!isObject(c)) return 'chart is required';
  if (c.type === 'pie') {
    const u = extra(c, ['type', 'segments']);
    if (u) return `unknown chart field ${u}`;
    if (!Array.isArray(c.segments) || c.segments.length < 1 || c.segments.length > 6)
      return 'pie needs 1–6 segments';
    for (const s of c.segments) {
      if (!isObject(s) || extra(s, ['label', 'value']))
        return 'a segment has fields other than label and value';
      if (!str(s.label, 20)) return 'segment label must be 1–20 characters';
      if (typeof s.value !== 'number' || !Number.isFinite(s.value) || s.value <= 0)
        return 'segment value must be a number > 0';
    }
    return undefined;
  }
  if (c.type !== 'bar' && c.type !== 'area' && c.type !== 'line')
    return 'chart type must be pie, bar, area or line';
  const u = extra(c, ['type', 'series', 'axis_config']);
  if (u) return `unknown chart field ${u}`;
  const ax = c.axis_config;
  if (!isObject(ax)) return 'axis_config is required';
  const ua = extra(ax, ['categories', 'x_label', 'y_label']);
  if (ua) return `unknown axis_config field ${ua}`;
  if (!Array.isArray(ax.categories) || ax.categories.length === 0 || !ax.categories.every((x) => str(x, 20)))
    return 'axis_config.categories must be labels of 1–20 characters';
  if (new Set(ax.categories).size !== ax.categories.length) return 'axis_config.categories repeat';
  for (const k of ['x_label', 'y_label'] as const)
    if (ax[k] !== undefined && !str(ax[k], 50)) return `axis_config.${k} must be 1–50 characters`;
  if (!Array.isArray(c.series) || c.series.length < 1 || c.series.length > 6) return 'needs 1–6 series';
  const names = new Set<string>();
  for (const s of c.series) {
    if (!isObject(s) || extra(s, ['name', 'data'])) return 'a series has fields other than name and data';
    if (!str(s.name, 20)) return 'series name must be 1–20 characters';
    if (names.has(s.name as string)) return `series name ${s.name} repeats`;
    names.add(s.name as string);
    if (!Array.isArray(s.data) || s.data.length < 1 || s.data.length > 20)
      return 'series data must hold 1–20 points';
    const labels: string[] = [];
    for (const p of s.data) {
      if (!isObject(p) || extra(p, ['label', 'value']))
        return 'a data point has fields other than label and value';
      if (!str(p.label, 20)) return 'data point label must be 1–20 characters';
      if (typeof p.value !== 'number' || !Number.isFinite(p.value))
        return 'data point value must be a number';
      labels.push(p.label as string);
    }
    const cats = ax.categories as string[];
    if (labels.length !== cats.length || !cats.every((x) => labels.includes(x)))
      return `series ${s.name}: one data point per axis category`;
  }
  return undefined;
}
