import type { FlightdeckConfig } from '../config/schema.js';
import { type DoraFigures, doraFigures, doraLine, doraSamples, mergeSamples } from './dora.js';
import type { DoraLog } from './dora-log.js';

export interface EnvironmentDora {
  environment: string;
  days: number;
  total: DoraFigures;
  services: Array<{ service: string; figures: DoraFigures }>;
}

/** The DORA figures of one environment, per configured service and in total, over the last `days`. */
export async function environmentDora(
  config: FlightdeckConfig,
  log: DoraLog,
  environment: string,
  days: number,
  now: number,
): Promise<EnvironmentDora> {
  const window = { from: now - days * 86_400_000, to: now, failureWindowMs: config.dora.failureWindow };
  const names = Object.keys(config.environments[environment]?.services ?? {});
  const samples = await Promise.all(
    names.map(async (service) => ({
      service,
      samples: doraSamples(await log.read(environment, service, window.from, window.to), window),
    })),
  );
  return {
    environment,
    days,
    total: doraFigures(
      mergeSamples(
        samples.map((s) => s.samples),
        days,
      ),
    ),
    services: samples.map((s) => ({ service: s.service, figures: doraFigures(s.samples) })),
  };
}

/** `/deploy stats`: the environment's figures, then one line per service. */
export function doraReport(d: EnvironmentDora, failureWindowMs: number): string {
  const hours = Math.round(failureWindowMs / 3_600_000);
  return [
    `*DORA figures for ${d.environment}, last ${d.days} day${d.days === 1 ? '' : 's'}*`,
    `*all services*: ${doraLine(d.total)}`,
    ...d.services.map((s) => `• *${s.service}*: ${doraLine(s.figures)}`),
    `_CFR: releases rolled back, or followed within ${hours} h by a /rollback or a critical alert · restore and lead: medians (samples) · lead from the image's creation time_`,
  ].join('\n');
}

/** The gauges /metrics carries, set from the figures over dora.metricsWindow (service `all`: the total). */
export interface DoraGauges {
  doraDeployments: GaugeLike;
  doraDeploysPerDay: GaugeLike;
  doraChangeFailureRate: GaugeLike;
  doraTimeToRestore: GaugeLike;
  doraLeadTime: GaugeLike;
}
interface GaugeLike {
  set(labels: { environment: string; service: string }, value: number): void;
  reset(): void;
}

/** Sets the DORA gauges of every configured environment and service (labels from the config only). */
export async function setDoraGauges(
  config: FlightdeckConfig,
  log: DoraLog,
  m: DoraGauges,
  now: number,
): Promise<void> {
  const days = config.dora.metricsWindow / 86_400_000;
  const all = await Promise.all(
    Object.keys(config.environments).map((env) => environmentDora(config, log, env, days, now)),
  );
  // `m` may be the whole metrics object: only the DORA gauges are reset.
  for (const g of [
    m.doraDeployments,
    m.doraDeploysPerDay,
    m.doraChangeFailureRate,
    m.doraTimeToRestore,
    m.doraLeadTime,
  ])
    g.reset();
  for (const d of all) {
    for (const { service, figures } of [...d.services, { service: 'all', figures: d.total }]) {
      const labels = { environment: d.environment, service };
      m.doraDeployments.set(labels, figures.deployments);
      m.doraDeploysPerDay.set(labels, figures.perDay);
      if (figures.changeFailureRate !== undefined)
        m.doraChangeFailureRate.set(labels, figures.changeFailureRate);
      if (figures.timeToRestoreMs !== undefined)
        m.doraTimeToRestore.set(labels, figures.timeToRestoreMs / 1000);
      if (figures.leadTimeMs !== undefined) m.doraLeadTime.set(labels, figures.leadTimeMs / 1000);
    }
  }
}

/** App Home's DORA section: each environment's total over dora.metricsWindow. */
export async function doraHomeLines(
  config: FlightdeckConfig,
  log: DoraLog,
  now: number,
): Promise<{ days: number; lines: string[] }> {
  const days = Math.round(config.dora.metricsWindow / 86_400_000);
  const all = await Promise.all(
    Object.keys(config.environments).map((env) => environmentDora(config, log, env, days, now)),
  );
  return { days, lines: all.map((d) => `*${d.environment}*: ${doraLine(d.total)}`) };
}
