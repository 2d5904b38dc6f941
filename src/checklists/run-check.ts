import type { FlightdeckConfig } from '../config/schema.js';
import { checkBackend } from '../integrations/http-check.js';
import type { Swarm } from '../integrations/swarm.js';
import { formatValue, METRICS, metricQuery } from './metric-checks.js';
import type { ItemCheck } from './schema.js';

/** What automatic checks need from the rest of flightdeck. */
export interface RunCheckDeps {
  /** The Swarm of an environment's Docker endpoint. */
  swarmFor: (environment: string) => Swarm;
  /** A PromQL instant query against an environment's Prometheus (undefined: the top-level one). */
  promQuery: (environment: string | undefined, q: string) => Promise<number[]>;
  /** The colour that carries the traffic of a service (the one that must be healthy). */
  liveColour: (environment: string, service: string) => Promise<'blue' | 'green'>;
}

export interface CheckResult {
  ok: boolean;
  evidence: string;
}

/** Runs one automatic item: what it saw becomes the item's evidence. */
export async function runCheck(
  check: ItemCheck,
  config: FlightdeckConfig,
  deps: RunCheckDeps,
): Promise<CheckResult> {
  if (check.kind === 'promql') {
    // Written in the template with no environment: the top-level Prometheus.
    const values = await deps.promQuery(undefined, check.query);
    if (values.length === 0) return { ok: false, evidence: 'no data' };
    const worst = check.max !== undefined ? Math.max(...values) : Math.min(...values);
    const ok =
      (check.max === undefined || worst <= check.max) && (check.min === undefined || worst >= check.min);
    return {
      ok,
      evidence: `${worst.toPrecision(3)} (${check.max !== undefined ? `≤ ${check.max}` : `≥ ${check.min}`})`,
    };
  }
  const env = config.environments[check.environment];
  if (!env) return { ok: false, evidence: `no environment ${check.environment}` };
  if (check.kind === 'metric') return runMetric(check, env.checks, deps);
  const services = Object.entries(env.services).filter(([name]) => !check.service || name === check.service);
  const results = await Promise.all(
    services.map(async ([name, svc]) => {
      const colour = await deps.liveColour(check.environment, name);
      if (check.kind === 'health') {
        const r = await checkBackend(svc[colour].address, svc.healthPath, { timeoutMs: 2_000 });
        return { ok: r.ok, line: `${name}/${colour} ${r.ok ? 'healthy' : r.detail}` };
      }
      const swarm = deps.swarmFor(check.environment);
      const info = await swarm.inspect(svc[colour].swarmService);
      const c = await swarm.convergence(svc[colour].swarmService, info.image);
      return {
        ok: c.state === 'converged',
        line: `${svc[colour].swarmService} ${c.state === 'converged' ? `${c.running}/${c.desired} running` : c.detail}`,
      };
    }),
  );
  const ok = results.every((r) => r.ok);
  return {
    ok,
    evidence: `${results.filter((r) => r.ok).length}/${results.length}: ${results.map((r) => r.line).join(', ')}`,
  };
}

/**
 * A named metric against the environment's Prometheus: the worst series must be under `max` (and
 * over `min`), strictly, as the seed words its thresholds ("< 2 s", "< 80%"). Evidence: "p95 0.41 s
 * (< 2 s)"; with several series, which counted ("worst of 4").
 */
export async function runMetric(
  check: Extract<ItemCheck, { kind: 'metric' }>,
  overrides: Partial<Record<keyof typeof METRICS, string>> | undefined,
  deps: Pick<RunCheckDeps, 'promQuery'>,
): Promise<CheckResult> {
  const m = METRICS[check.metric];
  const query = metricQuery(check.metric, check.environment, check.service, overrides);
  const values = await deps.promQuery(check.environment, query);
  const limits = [
    check.min !== undefined ? `> ${formatValue(check.min, m.unit)}` : '',
    check.max !== undefined ? `< ${formatValue(check.max, m.unit)}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (values.length === 0) {
    const q = query.length > 160 ? `${query.slice(0, 159)}…` : query;
    return { ok: false, evidence: `${m.label}: no data in ${check.environment} (${limits}; query ${q})` };
  }
  const worst = check.max !== undefined ? Math.max(...values) : Math.min(...values);
  const ok = (check.max === undefined || worst < check.max) && (check.min === undefined || worst > check.min);
  const of = values.length > 1 ? `, worst of ${values.length}` : '';
  return { ok, evidence: `${m.label} ${formatValue(worst, m.unit)} (${limits}${of})` };
}
