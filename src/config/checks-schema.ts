import { z } from 'zod';
import { METRIC_NAMES, type MetricName } from '../checklists/metric-checks.js';

/**
 * `environments.<env>.checks`: this environment's own PromQL for the named metrics of checklist
 * items (`check: { kind: metric, … }`), replacing the defaults of src/checklists/metric-checks.ts.
 * A query may use `{{selector}}`, `{{environment}}` and `{{service}}`, and returns the metric's unit
 * (seconds for response times, percent 0–100 for the others).
 */
export const EnvironmentChecks = z.strictObject(
  Object.fromEntries(METRIC_NAMES.map((m) => [m, z.string().min(1).optional()])) as Record<
    MetricName,
    z.ZodOptional<z.ZodString>
  >,
);
export type EnvironmentChecks = z.infer<typeof EnvironmentChecks>;
