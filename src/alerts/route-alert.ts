import type { FlightdeckConfig } from '../config/schema.js';

/** The first route whose labels all match wins; otherwise the default alerts channel. */
export function routeAlert(labels: Record<string, string>, config: FlightdeckConfig): string {
  for (const route of config.alerts.routes) {
    if (Object.entries(route.match).every(([k, v]) => labels[k] === v)) return route.channel;
  }
  return config.alerts.defaultChannel ?? config.channels.alerts ?? config.channels.releases;
}

export const isCritical = (labels: Record<string, string>) =>
  (labels.severity ?? '').toLowerCase() === 'critical';

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
