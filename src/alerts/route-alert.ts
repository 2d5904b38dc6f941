import type { FlightdeckConfig } from '../config/schema.js';

/** The first route whose labels all match wins; otherwise the default alerts channel. */
export function routeAlert(labels: Record<string, string>, config: FlightdeckConfig): string {
  for (const route of config.alerts.routes) {
    if (Object.entries(route.match).every(([k, v]) => labels[k] === v)) return route.channel;
  }
  return config.alerts.defaultChannel ?? config.channels.alerts ?? config.channels.releases;
}

/**
 * An alert's severity as a key to count and show it by: trimmed and lower-cased, so `Critical` and
 * `critical` are one; missing or empty is `none`; anything that is not a short plain word (or is a
 * name Object.prototype has, such as `constructor` or `__proto__`) is `other`. Unlike the metric
 * label (severityLabel), common custom severities such as `page` or `p1` are kept.
 */
export function severityKey(raw: string | undefined): string {
  const s = (raw ?? '').trim().toLowerCase();
  if (s === '') return 'none';
  if (!/^[a-z0-9_-]{1,32}$/.test(s) || Object.hasOwn(Object.prototype, s)) return 'other';
  return s;
}

export const isCritical = (labels: Record<string, string>) => severityKey(labels.severity) === 'critical';

/** Slack mentions for escalation targets: users and user groups. */
export function mentions(ids: string[]): string {
  return ids.map((id) => (id.startsWith('S') ? `<!subteam^${id}>` : `<@${id}>`)).join(' ');
}

/**
 * The configured service an alert is about, from its environment and service labels (names set
 * by `alerts.environmentLabel` and `alerts.serviceLabel`), or undefined when it names none.
 */
export function alertTarget(
  labels: Record<string, string>,
  config: FlightdeckConfig,
): { environment: string; service: string } | undefined {
  const environment = labels[config.alerts.environmentLabel];
  const service = labels[config.alerts.serviceLabel];
  if (!environment || !service) return undefined;
  if (!Object.hasOwn(config.environments, environment)) return undefined;
  if (!Object.hasOwn(config.environments[environment]?.services ?? {}, service)) return undefined;
  return { environment, service };
}
