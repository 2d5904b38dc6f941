import { z } from 'zod';
import { Colour } from '../config/schema.js';
import { StepTask } from './task-schema.js';

export const Weights = z.object({
  blue: z.number().int().min(0).max(100),
  green: z.number().int().min(0).max(100),
});
export type Weights = z.infer<typeof Weights>;

/** What flightdeck knows of one service in one environment (replaces the seed's current-environment file). */
export const ServiceState = z.object({
  /** The last good colour: where traffic goes back on a rollback. */
  live: Colour,
  weights: Weights,
  images: z.object({ blue: z.string().optional(), green: z.string().optional() }),
  lastGood: z.object({ colour: Colour, image: z.string().optional() }),
  /** The last good colour before the latest completed release: /rollback's target when nothing is in flight. */
  previous: z.object({ colour: Colour, image: z.string().optional(), releaseId: z.string() }).optional(),
  /** The release lock: one release per service and environment. */
  inFlight: z
    .object({ releaseId: z.string(), by: z.string(), since: z.string(), what: z.string() })
    .optional(),
  updatedAt: z.string(),
});
export type ServiceState = z.infer<typeof ServiceState>;

export const StepKind = z.enum([
  'update',
  'converge',
  'health',
  'smoke',
  'shift',
  'soak',
  'gate',
  'finalize',
  'task', // a release task: a one-off Swarm job (src/releases/steps/run-task.ts)
]);
export type StepKind = z.infer<typeof StepKind>;

export const StepStatus = z.enum(['pending', 'running', 'waiting', 'done', 'failed', 'skipped']);

export const Step = z.object({
  kind: StepKind,
  label: z.string(),
  status: StepStatus,
  percent: z.number().optional(),
  soakMs: z.number().optional(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  /** When a waiting step is due (soak end, next poll). */
  due: z.number().optional(),
  /** Failures of this step so far (transient errors are retried). */
  failures: z.number().default(0),
  /** Consecutive healthy answers (health step). */
  streak: z.number().optional(),
  /** Health step: when the last check of the streak was made (the next waits the policy's interval). */
  checkedAt: z.number().optional(),
  /** Health step: the tasks checked, when the checks began while Swarm still monitored the update. */
  tasks: z.array(z.string()).optional(),
  detail: z.string().optional(),
  /** A task step's task and how its job went (what a run after a crash resumes from). */
  task: StepTask.optional(),
});
export type Step = z.infer<typeof Step>;

export const ReleaseStatus = z.enum([
  'awaiting_approval',
  'queued', // waits for an earlier release of the same batch (sequential `all`)
  'running',
  'paused',
  'rolling_back',
  'completed',
  'rolled_back',
  'failed', // the rollback itself could not finish: needs a human
  'rejected',
  'expired',
  'cancelled',
]);
export type ReleaseStatus = z.infer<typeof ReleaseStatus>;

export const TERMINAL: ReadonlySet<ReleaseStatus> = new Set([
  'completed',
  'rolled_back',
  'failed',
  'rejected',
  'expired',
  'cancelled',
]);

export const GateResult = z.object({
  name: z.string(),
  value: z.number().nullable(),
  limit: z.string(),
  ok: z.boolean(),
  /** health, an absolute threshold, or a compare gate (canary against the stable colour). */
  kind: z.enum(['health', 'threshold', 'errors', 'latency']).optional(),
  /** pass / marginal (a person decides) / fail / noData (counted as noData says) / waiting (too few requests yet) / skipped (compare gates at 100%). */
  verdict: z.enum(['pass', 'marginal', 'fail', 'noData', 'waiting', 'skipped']).optional(),
  /** The stable colour's value, for compare gates. */
  stable: z.number().nullable().optional(),
  /** Requests in the window: the canary's and the stable colour's. */
  samples: z.object({ canary: z.number(), stable: z.number() }).optional(),
  pValue: z.number().optional(),
  /** The test in words ("one-sided z-test, 95%, margin 0.1 pp"). */
  test: z.string().optional(),
  /** How value and stable read: ratio (shown as %), seconds. */
  unit: z.enum(['ratio', 'seconds']).optional(),
  /** A marginal verdict a person accepted by resuming the release. */
  accepted: z.boolean().optional(),
});
export type GateResult = z.infer<typeof GateResult>;

/** One gate step's results (every run of it replaces the one before: waits, then the verdict). */
export const GateRecord = z.object({
  percent: z.number(),
  at: z.number(),
  canary: Colour,
  stable: Colour,
  results: z.array(GateResult),
});
export type GateRecord = z.infer<typeof GateRecord>;

export const Person = z.object({ id: z.string(), name: z.string() });

export const Release = z.object({
  id: z.string(),
  /** Optimistic-concurrency counter: every write must have read the current one. */
  rev: z.number().int(),
  environment: z.string(),
  service: z.string(),
  version: z.string(),
  image: z.string(),
  fromColour: Colour,
  toColour: Colour,
  fromImage: z.string().optional(),
  status: ReleaseStatus,
  requestedBy: Person,
  approvedBy: Person.optional(),
  approvalDeadline: z.number().optional(),
  channel: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
  finishedAt: z.number().optional(),
  stepIndex: z.number().int(),
  steps: z.array(Step),
  weights: Weights,
  swarmUpdated: z.boolean().default(false),
  gateResults: z.array(GateResult).default([]),
  /** Every gate step's results, in step order. */
  gateHistory: z.array(GateRecord).optional(),
  /** A marginal gate paused the release at this step; resuming there accepts the marginal verdicts. */
  gatePause: z.object({ stepIndex: z.number().int(), at: z.number() }).optional(),
  outcome: z.string().optional(),
  rollback: z
    .object({
      reason: z.string(),
      by: z.string(),
      startedAt: z.number(),
      trafficSwitchMs: z.number().optional(),
    })
    .optional(),
  /** Its progress message; `thread` is the batch message it replies to (a `/deploy all`). */
  message: z.object({ channel: z.string(), ts: z.string(), thread: z.string().optional() }).optional(),
  /** Its `/deploy all`: in a sequential one, the release it starts after and the one after it. */
  batch: z.object({ id: z.string(), next: z.string().optional(), after: z.string().optional() }).optional(),
  /** The slash command that started it: a command re-run after a crash continues this release. */
  requestId: z.string().optional(),
  /** Times a worker took the release over after the process running it died (BullMQ stalls seen). */
  resumes: z.number().int().optional(),
  /** The version's way through the pipeline when it was requested (“staging ✅ 3 days ago · …”). */
  trail: z.string().optional(),
  /** A lead deployed past promotion rules, a freeze or a checklist gate: who, why, and what was overridden. */
  override: z.object({ by: z.string(), reason: z.string(), overrode: z.array(z.string()) }).optional(),
  /** Log of what happened, newest last, for the progress message and history. */
  events: z.array(z.object({ at: z.number(), text: z.string() })).default([]),
});
export type Release = z.infer<typeof Release>;

/** A request to put a service's traffic back on its last good colour (run by the rollback lane). */
export const RollbackJob = z.object({
  environment: z.string(),
  service: z.string(),
  reason: z.string(),
  by: z.string(),
  trigger: z.string(),
  requestedAt: z.number(),
  reply: z.object({ responseUrl: z.string(), channelId: z.string(), userId: z.string() }).optional(),
  /** The slash command or click that asked for it, when a person did. */
  requestId: z.string().optional(),
});
export type RollbackJob = z.infer<typeof RollbackJob>;
