import { releasePolicy } from '../config/schema.js';
import { isPermanent } from '../errors.js';
import { withRedisLock } from '../integrations/redis-lock.js';
import { failpoint } from '../observability/failpoints.js';
import { runAfterRelease, startNextInBatch } from './after-release.js';
import { type ReleaseContext, type StepHandler, type StepOutcome, serviceDef } from './release-context.js';
import { type Release, type StepKind, TERMINAL } from './schema.js';
import { checkHealth } from './steps/check-health.js';
import { evaluateGate } from './steps/evaluate-gate.js';
import { finalize, finalizedBy } from './steps/finalize.js';
import { runSmoke } from './steps/run-smoke.js';
import { runTask } from './steps/run-task.js';
import { shiftTraffic } from './steps/shift-traffic.js';
import { soak } from './steps/soak.js';
import { updateService } from './steps/update-service.js';
import { waitConvergence } from './steps/wait-convergence.js';
import { weightsFor } from './weights.js';

const HANDLERS: Record<StepKind, StepHandler> = {
  update: updateService,
  converge: waitConvergence,
  health: checkHealth,
  smoke: runSmoke,
  shift: shiftTraffic,
  soak,
  gate: evaluateGate,
  finalize,
  task: runTask,
};

export const stepLockKey = (ctx: ReleaseContext, id: string) =>
  `${ctx.config.redis.prefix}:data:release:${id}:steplock`;

/** A wait that a change of one Swarm service may end early (a convergence waiting for Swarm). */
export interface SwarmWatch {
  environment: string;
  service: string;
}

/** `watch`: the wait ends early when that service changes (the worker wakes the job). */
export type Advanced = { waitUntil?: number; watch?: SwarmWatch };

/**
 * Runs the release's steps until one has to wait (soak, poll, approval) or the release ends.
 * Each step runs under the release's step lock, reads the persisted state first and writes its
 * result after, so a process killed at any point resumes from the last recorded step.
 */
export async function advance(ctx: ReleaseContext, id: string, lockMs: number): Promise<Advanced> {
  for (;;) {
    const next = await withRedisLock(ctx.redis, stepLockKey(ctx, id), () => runOneStep(ctx, id), {
      ttlMs: lockMs,
      waitMs: lockMs * 3,
    });
    if (next !== 'continue') return next;
  }
}

async function runOneStep(ctx: ReleaseContext, id: string): Promise<Advanced | 'continue'> {
  const r = await ctx.store.get(id);
  // Completed before a crash: what follows the release may not have happened yet (each hook runs once).
  if (r?.status === 'completed') await runAfterRelease(ctx, r);
  // Stopped before a crash let it cancel the rest of its batch (a no-op once they are cancelled).
  else if (r?.batch?.next && TERMINAL.has(r.status))
    await cancelRestOfBatch(ctx, r, `${r.service} ${r.status.replace('_', ' ')}`);
  if (!r || TERMINAL.has(r.status) || r.status === 'rolling_back') return {};
  if (r.status === 'queued') return waitForEarlierInBatch(ctx, r);
  if (r.status === 'awaiting_approval') {
    if (ctx.now() < (r.approvalDeadline ?? 0)) return { waitUntil: r.approvalDeadline };
    await expire(ctx, r);
    return {};
  }
  if (r.status === 'paused') return { waitUntil: ctx.now() + 3_600_000 };
  const step = r.steps[r.stepIndex];
  if (!step) return {};

  // A release whose lock was taken from it (or whose service left the config) is no longer valid;
  // one killed inside finalize has freed its own lock and only needs the step recorded.
  const state = await ctx.states.get(r.environment, r.service);
  const finalized = step.kind === 'finalize' && finalizedBy(state, r.id);
  if (
    (state.inFlight?.releaseId !== r.id && !finalized) ||
    !ctx.config.environments[r.environment]?.services[r.service]
  ) {
    await rollBackRelease(
      ctx,
      id,
      'its state is no longer valid (lock lost or service removed)',
      'flightdeck',
      {
        trigger: 'failure',
        holdsStepLock: true,
      },
    );
    return {};
  }

  const policy = releasePolicy(ctx.config, r.environment);
  const began = step.startedAt ?? ctx.now();
  const timer = ctx.metrics.stepDuration.startTimer({ step: step.kind });
  const at =
    step.percent !== undefined
      ? `${step.kind}@${step.percent}`
      : step.task
        ? `${step.kind}@${step.task.name}`
        : step.kind;
  failpoint(`before:${step.kind}`, `before:${at}`);
  let outcome: StepOutcome;
  try {
    outcome = await HANDLERS[step.kind](ctx, r, { ...step, startedAt: began });
    failpoint(`after:${step.kind}`, `after:${at}`);
  } catch (err) {
    const failures = (step.failures ?? 0) + 1;
    const msg = (err as Error).message;
    ctx.logger.warn({ releaseId: id, step: step.kind, failures, err: msg }, 'Release step error');
    // An error no retry can fix (FlightdeckError.retryable false) goes straight to rollback.
    outcome =
      isPermanent(err) || failures > policy.maxStepRetries
        ? { kind: 'fail', reason: `${step.label}: ${msg}` }
        : {
            kind: 'wait',
            until: ctx.now() + Math.min(1_000 * 2 ** failures, 30_000),
            detail: `retrying after error: ${msg}`,
            patch: (_rel, s) => {
              s.failures = failures;
            },
          };
  }

  if (outcome.kind === 'fail') {
    timer({ result: 'failed' });
    const reason = outcome.reason;
    const patch = outcome.patch;
    await ctx.store.update(id, (rel) => {
      const s = rel.steps[rel.stepIndex];
      if (s) Object.assign(s, { status: 'failed', detail: reason, startedAt: began, finishedAt: ctx.now() });
      patch?.(rel);
      rel.events.push({ at: ctx.now(), text: `✗ ${step.label}: ${reason}` });
      return rel;
    });
    // A task ahead of the update failed: nothing has moved, so there is nothing to roll back.
    if (step.kind === 'task' && nothingChangedYet(r)) {
      await stopUnchanged(ctx, r, reason);
      return {};
    }
    await rollBackRelease(ctx, id, reason, 'flightdeck', {
      trigger: step.kind === 'gate' ? 'gate' : 'failure',
      holdsStepLock: true,
    });
    return {};
  }

  const done = outcome.kind === 'done';
  const saved = await ctx.store.update(id, (rel) => {
    // Paused, rolled back or moved on meanwhile: do not advance over someone else's change.
    if (rel.status !== 'running' || rel.stepIndex !== r.stepIndex) return undefined;
    const s = rel.steps[rel.stepIndex];
    if (!s) return undefined;
    s.startedAt = began;
    s.detail = outcome.detail;
    if (outcome.kind === 'done') {
      s.status = 'done';
      s.finishedAt = ctx.now();
      s.due = undefined;
      outcome.patch?.(rel);
      rel.events.push({ at: ctx.now(), text: `✓ ${s.label}: ${outcome.detail}` });
      rel.stepIndex += 1;
      const following = rel.steps[rel.stepIndex];
      if (following && rel.status === 'running') following.status = 'running';
    } else {
      s.status = 'waiting';
      s.due = outcome.until;
      outcome.patch?.(rel, s);
    }
    return rel;
  });
  if (done) timer({ result: 'done' });
  failpoint(`persisted:${step.kind}`, `persisted:${at}`);
  await ctx.publish(id);
  if (saved.status === 'completed') {
    ctx.metrics.releases.inc({ environment: saved.environment, outcome: 'completed' });
    ctx.metrics.releaseDuration.observe(
      { environment: saved.environment, outcome: 'completed' },
      (ctx.now() - saved.createdAt) / 1000,
    );
    await runAfterRelease(ctx, saved);
    return {};
  }
  if (outcome.kind === 'wait') {
    if (step.kind !== 'converge') return { waitUntil: outcome.until };
    const watch = { environment: r.environment, service: serviceDef(ctx, r)[r.toColour].swarmService };
    return { waitUntil: outcome.until, watch };
  }
  return 'continue';
}

export interface RollbackReport {
  release: Release;
  trafficSwitchMs?: number;
  trafficError?: string;
  swarmDetail: string;
}

/**
 * The fastest path back: all traffic to the release's stable colour at once, then (once any step in
 * progress has finished) cancel pending steps and roll the new colour's Swarm service back.
 */
export async function rollBackRelease(
  ctx: ReleaseContext,
  id: string,
  reason: string,
  by: string,
  opts: {
    trigger: string;
    holdsStepLock: boolean;
    requestedAt?: number;
    /** The job that began this rollback stopped half-way (its worker died, or an error failed it): finish it. */
    resume?: boolean;
  },
): Promise<RollbackReport> {
  const started = opts.requestedAt ?? ctx.now();
  let claimed = false;
  const r = await ctx.store.update(id, (rel) => {
    if (rel.status === 'rolling_back' && opts.resume) {
      claimed = true;
      rel.events.push({
        at: ctx.now(),
        text: '↻ The worker rolling this release back stopped (killed or restarted); the rollback was finished from where it stopped',
      });
      return rel;
    }
    if (TERMINAL.has(rel.status) || rel.status === 'rolling_back') return undefined;
    claimed = true;
    if (rel.status === 'awaiting_approval' || rel.status === 'queued') {
      rel.status = 'cancelled';
      rel.finishedAt = ctx.now();
      rel.outcome = `Cancelled before any change: ${reason}`;
      return rel;
    }
    rel.status = 'rolling_back';
    rel.rollback = { reason, by, startedAt: ctx.now() };
    rel.events.push({ at: ctx.now(), text: `↩ Rolling back: ${reason}` });
    return rel;
  });
  if (!claimed) return { release: r, swarmDetail: 'already finished or being rolled back' };
  failpoint('after:rollback-claim');
  if (r.status === 'cancelled') {
    await ctx.states.unlock(r.environment, r.service, r.id);
    await ctx.jobs.dropPending(id);
    ctx.metrics.releases.inc({ environment: r.environment, outcome: 'cancelled' });
    await cancelRestOfBatch(ctx, r, reason);
    await ctx.publish(id);
    return { release: r, swarmDetail: 'nothing had changed' };
  }

  // 1. Traffic, first and at once. Moving towards the stable colour keeps the file even if nginx is down.
  let trafficSwitchMs: number | undefined;
  let trafficError: string | undefined;
  // The stable colour's health is reported, never waited for: it is checked while traffic moves.
  const stableHealthCheck = ctx.traffic.checkColour(r.environment, r.service, r.fromColour, undefined, 'any');
  try {
    await ctx.traffic.setWeights(
      r.environment,
      r.service,
      weightsFor(r.fromColour, 100),
      (s) =>
        s.inFlight && s.inFlight.releaseId !== r.id
          ? `${s.inFlight.releaseId} now holds ${r.service}`
          : undefined,
      (s) => ({ ...s, inFlight: s.inFlight?.releaseId === r.id ? undefined : s.inFlight }),
      { keepOnReloadFailure: true },
    );
    trafficSwitchMs = ctx.now() - started;
    ctx.metrics.rollbackSwitch.observe(trafficSwitchMs / 1000);
  } catch (err) {
    trafficError = (err as Error).message;
  }
  failpoint('after:rollback-traffic');
  const stableHealth = await stableHealthCheck;

  // 2. Pending steps cancelled, then Swarm rolled back, once no step of this release is running.
  let swarmDetail = '';
  const rest = async () => {
    await ctx.jobs.dropPending(id);
    const svcName = serviceDef(ctx, r)[r.toColour].swarmService;
    // A short ping first: an endpoint that drops packets would hold this rollback for every call's timeout.
    const down = await ctx.dockerDown(r.environment);
    if (down) {
      swarmDetail = `could not roll back ${svcName}: ${down}`;
      return;
    }
    try {
      const swarm = ctx.swarmFor(r.environment);
      await removeTaskJobs(ctx, r);
      const svc = await swarm.inspect(svcName);
      if (svc.image === r.image && svc.previousImage && svc.previousImage !== r.image) {
        await swarm.rollbackToPrevious(svcName);
        swarmDetail = `${svcName} rolled back to ${svc.previousImage}`;
      } else {
        swarmDetail = `${svcName} left on ${svc.image}`;
      }
    } catch (err) {
      swarmDetail = `could not roll back ${svcName}: ${(err as Error).message}`;
    }
  };
  if (opts.holdsStepLock) await rest();
  else await withRedisLock(ctx.redis, stepLockKey(ctx, id), rest, { ttlMs: 30_000, waitMs: 90_000 });

  const traffic = trafficError
    ? trafficError.includes('new upstream file is in place')
      ? `traffic: ${trafficError}`
      : `⚠️ traffic NOT switched: ${trafficError}`
    : `traffic 100% on ${r.fromColour} in ${((trafficSwitchMs ?? 0) / 1000).toFixed(2)} s${stableHealth.ok ? '' : ` (⚠️ ${r.fromColour} health: ${stableHealth.detail})`}`;
  const failedHard = trafficError !== undefined && !trafficError.includes('new upstream file is in place');
  const final = await ctx.store.update(id, (rel) => {
    rel.status = failedHard ? 'failed' : 'rolled_back';
    rel.finishedAt = ctx.now();
    rel.weights = failedHard ? rel.weights : weightsFor(r.fromColour, 100);
    if (rel.rollback) rel.rollback.trafficSwitchMs = trafficSwitchMs;
    rel.outcome = `Rolled back (${reason}): ${traffic}; ${swarmDetail}`;
    for (const s of rel.steps)
      if (s.status === 'pending' || s.status === 'waiting' || s.status === 'running') s.status = 'skipped';
    rel.events.push({ at: ctx.now(), text: rel.outcome });
    return rel;
  });
  ctx.metrics.rollbacks.inc({ environment: r.environment, trigger: opts.trigger });
  ctx.metrics.releases.inc({ environment: r.environment, outcome: final.status });
  ctx.metrics.releaseDuration.observe(
    { environment: r.environment, outcome: final.status },
    (ctx.now() - r.createdAt) / 1000,
  );
  failpoint('persisted:rollback');
  // DORA: a change that failed during its rollout (lost only if flightdeck dies just before this).
  await ctx.dora
    ?.record(r.environment, r.service, {
      kind: 'failed',
      id: `failed:${r.id}`,
      at: final.finishedAt ?? ctx.now(),
      releaseId: r.id,
      version: r.version,
      requestedAt: r.createdAt,
      failedAt: final.rollback?.startedAt ?? final.finishedAt ?? ctx.now(),
    })
    .catch((err: Error) =>
      ctx.logger.warn({ err: err.message, release: r.id }, 'Could not record DORA event'),
    );
  await cancelRestOfBatch(ctx, final, `${r.service} rolled back`);
  await ctx.publish(id);
  return { release: final, trafficSwitchMs, trafficError, swarmDetail };
}

/** Only task steps ran and the idle colour's Swarm service was never changed. */
const nothingChangedYet = (r: Release) =>
  !r.swarmUpdated && r.steps.slice(0, r.stepIndex).every((s) => s.kind === 'task');

/** A stopped release leaves no task job running (one it was waiting on when it was stopped). */
async function removeTaskJobs(ctx: ReleaseContext, r: Release): Promise<void> {
  if (!r.steps.some((s) => s.kind === 'task')) return;
  try {
    const removed = await ctx.swarmFor(r.environment).removeTaskJobs(r.id);
    if (removed.length > 0)
      ctx.logger.info({ releaseId: r.id, removed }, 'Removed the task jobs of a release');
  } catch (err) {
    ctx.logger.warn({ releaseId: r.id, err: (err as Error).message }, 'Could not remove task jobs');
  }
}

/**
 * A `before` task failed: the release ends `failed` with traffic and the idle colour as they were.
 * The lock is freed first: a crash after it leaves a running release without its lock, which the
 * next run rolls back (a no-op for traffic and Swarm here), rather than a finished one holding it.
 */
async function stopUnchanged(ctx: ReleaseContext, r: Release, reason: string): Promise<void> {
  const idle = serviceDef(ctx, r)[r.toColour].swarmService;
  await ctx.states.unlock(r.environment, r.service, r.id);
  let stopped = false;
  const final = await ctx.store.update(r.id, (rel) => {
    if (TERMINAL.has(rel.status) || rel.status === 'rolling_back') return undefined;
    stopped = true;
    rel.status = 'failed';
    rel.finishedAt = ctx.now();
    rel.outcome = `Stopped before any change: ${reason}. No traffic moved and ${idle} was not updated.`;
    for (const s of rel.steps)
      if (s.status === 'pending' || s.status === 'waiting' || s.status === 'running') s.status = 'skipped';
    rel.events.push({ at: ctx.now(), text: rel.outcome });
    return rel;
  });
  if (!stopped) return;
  await ctx.jobs.dropPending(r.id);
  await removeTaskJobs(ctx, final);
  ctx.metrics.releases.inc({ environment: r.environment, outcome: 'failed' });
  ctx.metrics.releaseDuration.observe(
    { environment: r.environment, outcome: 'failed' },
    (ctx.now() - r.createdAt) / 1000,
  );
  await cancelRestOfBatch(ctx, final, `${r.service} failed`);
  await ctx.publish(r.id);
}

const ROLLED_BACK_NOTE =
  '↻ The worker rolling this release back stopped (killed or restarted) after recording the outcome; this message was brought up to date';

/**
 * A rollback recorded as finished whose process died before it announced it (its job runs again):
 * the rest of its batch is cancelled and its message brought up to date, with a ↻ line, once.
 */
export async function finishRecordedRollback(ctx: ReleaseContext, r: Release): Promise<void> {
  const noted = await ctx.store.update(r.id, (rel) => {
    if (rel.events.some((e) => e.text === ROLLED_BACK_NOTE)) return undefined;
    rel.events.push({ at: ctx.now(), text: ROLLED_BACK_NOTE });
    return rel;
  });
  await cancelRestOfBatch(ctx, noted, `${r.service} rolled back`);
  await ctx.publish(r.id);
}

/**
 * A rollback whose process died half-way (its job stalled) is finished by the worker that runs the
 * job again: traffic to the stable colour and the Swarm rollback are both no-ops when already done.
 */
export async function finishInterruptedRollback(
  ctx: ReleaseContext,
  r: Release,
  opts: { trigger: string; requestedAt?: number },
): Promise<RollbackReport> {
  return rollBackRelease(ctx, r.id, r.rollback?.reason ?? 'interrupted', r.rollback?.by ?? 'flightdeck', {
    ...opts,
    holdsStepLock: false,
    resume: true,
  });
}

async function expire(ctx: ReleaseContext, r: Release): Promise<void> {
  const expired = await ctx.store.update(r.id, (rel) => {
    if (rel.status !== 'awaiting_approval') return undefined;
    rel.status = 'expired';
    rel.finishedAt = ctx.now();
    rel.outcome = 'No lead approved it in time; nothing was changed.';
    return rel;
  });
  if (expired.status !== 'expired') return;
  await ctx.states.unlock(r.environment, r.service, r.id);
  ctx.metrics.releases.inc({ environment: r.environment, outcome: 'expired' });
  await ctx.publish(r.id);
  await cancelRestOfBatch(ctx, expired, `${r.service} expired`);
}

/**
 * An approved release of a sequential batch whose job runs before the release it starts after has
 * completed (its approval deadline passed): it starts if that one has completed by now, is cancelled
 * if that one stopped, and otherwise waits (that release's completion wakes it; the hour is a
 * safety net only).
 */
async function waitForEarlierInBatch(
  ctx: ReleaseContext,
  r: Release,
): Promise<{ waitUntil?: number } | 'continue'> {
  const earlier = r.batch?.after ? await ctx.store.get(r.batch.after) : undefined;
  if (!earlier) return {};
  if (earlier.status === 'completed') {
    await startNextInBatch(ctx, r.id);
    return 'continue';
  }
  if (TERMINAL.has(earlier.status)) {
    await rollBackRelease(
      ctx,
      r.id,
      `batch stopped: ${earlier.service} ${earlier.status.replace('_', ' ')}`,
      'flightdeck',
      {
        trigger: 'batch',
        holdsStepLock: true,
      },
    );
    return {};
  }
  return { waitUntil: ctx.now() + 3_600_000 };
}

/**
 * The rest of a sequential batch never starts once one release stops (each cancels its successor,
 * queued or still awaiting approval, and with it the releases after that one).
 */
export async function cancelRestOfBatch(ctx: ReleaseContext, r: Release, reason: string): Promise<void> {
  const nextId = r.batch?.next;
  if (!nextId) return;
  const next = await ctx.store.get(nextId);
  if (next && !TERMINAL.has(next.status)) {
    // Down the chain the first reason stays: "batch stopped: api rolled back", not "batch stopped: batch stopped: …".
    const why = reason.startsWith('batch stopped: ') ? reason : `batch stopped: ${reason}`;
    await rollBackRelease(ctx, nextId, why, 'flightdeck', {
      trigger: 'batch',
      holdsStepLock: false,
    });
  }
}
