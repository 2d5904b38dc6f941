/**
 * The named metrics a checklist item can judge itself (`check: { kind: metric, metric: cpu, max: 70,
 * environment: staging }`): what each measures, its unit and the PromQL it runs by default. The
 * defaults follow the seed's own monitoring stack and alert rules (an app histogram
 * `http_request_duration_seconds` and counter `http_requests_total{status}`, cAdvisor's
 * `container_*`, node_exporter's `node_filesystem_*`) and select by an `environment` label (a
 * scrape-config label, as the release gates' examples use). A team whose metrics differ overrides a
 * query per environment: `environments.<env>.checks.<metric>` (docs/configuration.md).
 *
 * In a query, `{{selector}}` is `environment="<env>"` (and `,service="<svc>"` when the item names a
 * service); `{{environment}}` and `{{service}}` are the names alone. Every query returns the value
 * already in the metric's unit (seconds, or percent 0–100); with several series the worst counts.
 */
export const METRICS = {
  'response-time-p95': {
    label: 'p95',
    unit: 's',
    what: '95th percentile response time over 5 minutes (the seed’s HighResponseTime alert)',
    query:
      'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{selector}}}[5m])))',
  },
  'response-time-avg': {
    label: 'average',
    unit: 's',
    what: 'mean response time over 5 minutes (the seed’s averageResponseTime)',
    query:
      'sum(rate(http_request_duration_seconds_sum{{{selector}}}[5m])) / sum(rate(http_request_duration_seconds_count{{{selector}}}[5m]))',
  },
  'error-rate': {
    label: 'error rate',
    unit: '%',
    what: 'share of 5xx answers over 5 minutes (the seed’s HighErrorRate alert)',
    query:
      '100 * sum(rate(http_requests_total{{{selector}},status=~"5.."}[5m])) / sum(rate(http_requests_total{{{selector}}}[5m]))',
  },
  cpu: {
    label: 'CPU',
    unit: '%',
    what: 'CPU of each container over 5 minutes, in percent of one core (the seed’s ContainerHighCPU alert)',
    query: '100 * sum by (name) (rate(container_cpu_usage_seconds_total{{{selector}},name!=""}[5m]))',
  },
  memory: {
    label: 'memory',
    unit: '%',
    what: 'working set of each container in percent of its memory limit (containers without a limit are left out)',
    query:
      '100 * container_memory_working_set_bytes{{{selector}},name!=""} / (container_spec_memory_limit_bytes{{{selector}},name!=""} > 0)',
  },
  disk: {
    label: 'disk',
    unit: '%',
    what: 'used space of each real filesystem of the nodes (node_exporter)',
    query:
      '100 * (1 - node_filesystem_avail_bytes{{{selector}},fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{{{selector}},fstype!~"tmpfs|overlay|squashfs"})',
  },
} as const satisfies Record<string, { label: string; unit: 's' | '%'; what: string; query: string }>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as [MetricName, ...MetricName[]];

/** The query of a metric check: the environment's override or the default, placeholders filled. */
export function metricQuery(
  metric: MetricName,
  environment: string,
  service: string | undefined,
  overrides: Partial<Record<MetricName, string>> | undefined,
): string {
  const template = overrides?.[metric] ?? METRICS[metric].query;
  const selector = `environment="${environment}"${service ? `,service="${service}"` : ''}`;
  const values: Record<string, string> = { selector, environment, service: service ?? '' };
  return template.replace(/\{\{(\w+)\}\}/g, (m, k: string) => values[k] ?? m);
}

/** "0.41 s", "43.2%": three significant digits, no exponent for ordinary values. */
export function formatValue(value: number, unit: 's' | '%'): string {
  const n = Number.isFinite(value) ? Number(value.toPrecision(3)).toString() : String(value);
  return unit === '%' ? `${n}%` : `${n} ${unit}`;
}
