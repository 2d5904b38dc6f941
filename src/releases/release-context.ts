import type { Redis } from 'ioredis';
import type { FlightdeckConfig } from '../config/schema.js';
import type { Sample } from '../integrations/prometheus.js';
import type { Swarm } from '../integrations/swarm.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { DoraLog } from './dora-log.js';
import type { ReleaseStore } from './release-store.js';
import type { Release, RollbackJob, Step } from './schema.js';
import type { ServiceStateStore } from './service-state-store.js';
import type { Traffic } from './traffic.js';
import type { VersionTrail } from './version-trail.js';

/** The queue as a release sees it: its own job, and the rollback lane. */
export interface ReleaseJobs {
  /** Queues the release's job, once per release id; it first runs after `delayMs`. */
  start(releaseId: string, delayMs?: number): Promise<void>;
  /** Runs a waiting release's job now (a skipped soak, an approval, a resume). */
  wake(releaseId: string): Promise<void>;
  /** Drops a release's job that is not running; a running one finds its release ended and stops. */
  dropPending(releaseId: string): Promise<void>;
  rollback(job: RollbackJob): Promise<void>;
}

/** Everything a release step may touch, passed in so steps stay plain functions. */
export interface ReleaseContext {
  config: FlightdeckConfig;
  redis: Redis;
  store: ReleaseStore;
  states: ServiceStateStore;
  traffic: Traffic;
  /** The Swarm of an environment's Docker endpoint (one client per endpoint, shared). */
  swarmFor: (environment: string) => Swarm;
  /**
   * Why the environment's Docker endpoint cannot be used right now, from one short ping (e.g.
   * "staging's Docker endpoint unix:///run/x.sock does not answer (ECONNREFUSED); …"), or undefined.
   */
  dockerDown: (environment: string) => Promise<string | undefined>;
  /** An instant query against the environment's Prometheus (the top level's when it has none of its own). */
  promQuery: (environment: string | undefined, query: string) => Promise<number[]>;
  /** Every series with its labels, evaluated at `time` (ms): the compare gates' queries. */
  promVector?: (environment: string | undefined, query: string, time?: number) => Promise<Sample[]>;
  jobs: ReleaseJobs;
  publish: (releaseId: string) => Promise<void>;
  /** A reply in the release message's thread (after the message itself), posted once per `key`. */
  releaseThread?: (releaseId: string, text: string, key: string, blocks?: unknown[]) => Promise<void>;
  /**
   * Why a deploy to this environment (of this service, when given) must wait, if it must: the
   * pre-deployment checklist and the phases of each rollout covering it. Without a service, every
   * rollout covering the environment counts.
   */
  gate?: (environment: string, service?: string) => Promise<string | undefined>;
  /** Where each version has been (promotion between environments); absent, no promotion rule applies. */
  trail?: VersionTrail;
  /** The DORA event list (deploys, failed releases, /rollbacks, critical alerts); absent, none is kept. */
  dora?: DoraLog;
  /** Something App Home shows changed without a release message to publish (e.g. a /rollback). */
  homesChanged?: () => Promise<void>;
  /** Why the post-deployment checklist of a release is not complete, or undefined when it is. */
  postChecklistOpen?: (releaseId: string) => Promise<string | undefined>;
  /** After a release completed (e.g. open the post-deployment checklist). */
  onCompleted?: (release: Release) => Promise<void>;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
}

export type StepOutcome =
  | { kind: 'done'; detail: string; patch?: (r: Release) => void }
  | { kind: 'wait'; until: number; detail: string; patch?: (r: Release, s: Step) => void }
  | { kind: 'fail'; reason: string; patch?: (r: Release) => void };

export type StepHandler = (ctx: ReleaseContext, release: Release, step: Step) => Promise<StepOutcome>;

export function serviceDef(ctx: ReleaseContext, r: Release) {
  const def = ctx.config.environments[r.environment]?.services[r.service];
  if (!def) throw new Error(`${r.service} is no longer configured in ${r.environment}`);
  return def;
}
