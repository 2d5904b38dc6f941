import type { FlightdeckConfig } from '../config/schema.js';
import type { ReleaseStore } from '../releases/release-store.js';
import { TERMINAL } from '../releases/schema.js';
import type { ServiceStateStore } from '../releases/service-state-store.js';
import { alertTarget } from './route-alert.js';

/**
 * The service an alert message offers to roll back: the alert names a configured service, and that
 * service is mid-release or finished one within `alerts.rollbackWindow`.
 */
export async function rollbackOffer(
  labels: Record<string, string>,
  deps: { config: FlightdeckConfig; states: ServiceStateStore; releases: ReleaseStore; now: number },
): Promise<{ environment: string; service: string } | undefined> {
  const target = alertTarget(labels, deps.config);
  if (!target) return undefined;
  const state = await deps.states.get(target.environment, target.service);
  if (state.inFlight) return target;
  const [last] = await deps.releases.history(target.environment, target.service, 1);
  const recent =
    last &&
    TERMINAL.has(last.status) &&
    (last.finishedAt ?? 0) > deps.now - deps.config.alerts.rollbackWindow;
  return recent ? target : undefined;
}
