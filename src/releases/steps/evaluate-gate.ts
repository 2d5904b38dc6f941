import { type Gate, releasePolicy } from '../../config/schema.js';
import { type StepHandler, serviceDef } from '../release-context.js';
import type { GateResult } from '../schema.js';

/** Health of the new colour plus every PromQL gate; any failure rolls the release back. */
export const evaluateGate: StepHandler = async (ctx, r) => {
  const policy = releasePolicy(ctx.config, r.environment);
  const def = serviceDef(ctx, r);
  const health = await ctx.traffic.checkColour(
    r.environment,
    r.service,
    r.toColour,
    policy.healthCheck.timeout,
  );
  const results: GateResult[] = [
    { name: `health of ${r.toColour}`, value: health.ok ? 1 : 0, limit: '= 1', ok: health.ok },
  ];
  for (const gate of policy.gates) {
    const query = fillTemplate(gate.query, {
      environment: r.environment,
      service: r.service,
      colour: r.toColour,
      swarmService: def[r.toColour].swarmService,
    });
    const values = await ctx.promQuery(r.environment, query);
    results.push(judge(gate, values));
  }
  const text = results.map(formatResult).join(', ');
  const failed = results.filter((x) => !x.ok);
  const patch = (rel: typeof r) => {
    rel.gateResults = results;
  };
  if (failed.length > 0)
    return { kind: 'fail', reason: `gate failed: ${failed.map(formatResult).join(', ')}`, patch };
  return { kind: 'done', detail: text, patch };
};

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
  const v =
    g.value === null ? 'no data' : Number.isInteger(g.value) ? String(g.value) : g.value.toPrecision(3);
  return `${g.ok ? '✓' : '✗'} ${g.name} ${v} (${g.limit})`;
}

/** Only values from the config (validated names) are substituted, never user text. */
export function fillTemplate(query: string, values: Record<string, string>): string {
  return query.replace(/\{\{(\w+)\}\}/g, (m, k: string) => values[k] ?? m);
}
