import type { FlightdeckConfig } from '../config/schema.js';
import type { ServiceStateStore } from '../releases/service-state-store.js';
import { type VersionTrail, versionOf } from '../releases/version-trail.js';
import type { BoardRow } from './render-home.js';

/** The environments in pipeline order, then the ones outside the pipeline. */
export function boardEnvironments(config: Pick<FlightdeckConfig, 'pipeline' | 'environments'>): string[] {
  const pipeline = config.pipeline ?? [];
  return [...pipeline, ...Object.keys(config.environments).filter((e) => !pipeline.includes(e))];
}

/**
 * Per service, which version runs in each environment and since when (from the version trail;
 * a service released before flightdeck kept trails shows its last good image without a date), and
 * what is in flight. Two Redis reads per service, plus one for all the states.
 */
export async function pipelineBoard(
  config: FlightdeckConfig,
  trail: VersionTrail,
  states: ServiceStateStore,
): Promise<BoardRow[]> {
  const envs = boardEnvironments(config);
  const services = [...new Set(envs.flatMap((e) => Object.keys(config.environments[e]?.services ?? {})))];
  const pairs = services.flatMap((svc) =>
    envs.filter((e) => config.environments[e]?.services[svc]).map((e) => [e, svc] as [string, string]),
  );
  const [running, stateList] = await Promise.all([
    Promise.all(services.map((svc) => trail.running(svc))),
    states.getMany(pairs),
  ]);
  const stateOf = new Map(pairs.map(([e, svc], i) => [`${e}/${svc}`, stateList[i]]));
  return services.map((svc, i) => ({
    service: svc,
    cells: envs
      .filter((e) => config.environments[e]?.services[svc])
      .map((environment) => {
        const r = running[i]?.[environment];
        const s = stateOf.get(`${environment}/${svc}`);
        const version = r?.version ?? versionOf(s?.lastGood.image);
        return {
          environment,
          ...(version ? { version } : {}),
          ...(r ? { since: r.since } : {}),
          ...(s?.inFlight ? { inFlight: s.inFlight.what } : {}),
        };
      }),
  }));
}
