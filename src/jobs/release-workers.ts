import { DelayedError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import { authorise } from '../commands/authorise.js';
import type { SlackResponder } from '../integrations/slack/respond.js';
import { logFailure } from '../observability/logger.js';
import { noteResume } from '../releases/note-resume.js';
import type { ReleaseContext } from '../releases/release-context.js';
import { advance, finishInterruptedRollback, type SwarmWatch } from '../releases/release-machine.js';
import { rollBackService } from '../releases/roll-back-service.js';
import { AUTOMATIC_ROLLBACK } from '../releases/rollback-lane.js';
import { RollbackJob } from '../releases/schema.js';
import { QUEUE, workerOptions } from './queues.js';

const ReleaseJob = z.object({ releaseId: z.string() });

export interface WorkerOptions {
  connection: Redis;
  prefix: string;
  responder: SlackResponder;
  audit: AuditLog;
}

/** One job per release walks its steps; every wait is `moveToDelayed`, never a sleep. */
export function startReleaseWorker(ctx: ReleaseContext, opts: WorkerOptions): Worker {
  const worker = new Worker(
    QUEUE.releases,
    async (job, token) => {
      const { releaseId } = ReleaseJob.parse(job.data);
      if (job.stalledCounter > 0) await noteResume(ctx, releaseId, job.stalledCounter);
      // Run again after its worker died or after an error (e.g. Redis gone mid-rollback): a rollback
      // it began is finished here, since advance() leaves a rolling_back release alone.
      if (job.stalledCounter > 0 || job.attemptsMade > 0) {
        const r = await ctx.store.get(releaseId);
        if (r?.status === 'rolling_back') await finishInterruptedRollback(ctx, r, { trigger: 'failure' });
      }
      const { waitUntil, watch } = await advance(ctx, releaseId, ctx.config.jobs.lockDuration);
      if (waitUntil !== undefined) {
        await job.moveToDelayed(Math.max(waitUntil, Date.now() + 1), token);
        // Only once the job is delayed: a wake before that would find nothing to promote.
        if (watch) wakeOnSwarmChange(ctx, releaseId, watch, waitUntil);
        throw new DelayedError();
      }
    },
    workerOptions(QUEUE.releases, { ...opts, config: ctx.config }),
  );
  worker.on('failed', (job, err) =>
    ctx.logger.error({ jobId: job?.id, err: err.message }, 'Release job failed'),
  );
  worker.on('error', (err) => ctx.logger.warn({ err: err.message }, 'Release worker error'));
  return worker;
}

/**
 * A release waiting for Swarm runs again as soon as Swarm reports a change to the service (its
 * delayed job promoted), not at the next poll; the poll stays, for events that never come. Up to
 * just before the poll is due, and only while the release is still converging: a late event must
 * not cut another step's wait short.
 */
function wakeOnSwarmChange(ctx: ReleaseContext, releaseId: string, watch: SwarmWatch, until: number): void {
  const swarm = ctx.swarmFor(watch.environment);
  if (typeof swarm.whenChanged !== 'function') return;
  swarm.whenChanged(watch.service, until - 20, () => {
    void (async () => {
      const r = await ctx.store.get(releaseId);
      if (r?.status !== 'running' || r.steps[r.stepIndex]?.kind !== 'converge') return;
      await ctx.jobs.wake(releaseId);
    })().catch((err: Error) =>
      ctx.logger.debug({ releaseId, err: err.message }, 'Could not wake a release on a Swarm event'),
    );
  });
}

/** The high-priority lane: rollbacks never queue behind release steps. */
export function startRollbackWorker(ctx: ReleaseContext, opts: WorkerOptions): Worker {
  const worker = new Worker(
    QUEUE.rollbacks,
    async (job) => {
      const data = RollbackJob.parse(job.data);
      const requestId = data.requestId ?? job.id ?? '';
      // A person's rollback is authorised here, where it is executed: a /rollback comes straight from
      // the listener, and the config may have changed since. Automatic ones are by flightdeck itself.
      const decision =
        data.by === AUTOMATIC_ROLLBACK
          ? { allowed: true as const }
          : authorise(
              {
                command: 'rollback',
                action: 'rollback',
                target: data.service,
                environment: data.environment,
              },
              data.by,
              ctx.config,
            );
      const report = !decision.allowed
        ? { ok: false, refused: true, text: `:no_entry: Not done: ${decision.reason}` }
        : // A retry after an error is a re-run too: the release it stopped may already be recorded.
          await rollBackService(ctx, data, job.stalledCounter > 0 || job.attemptsMade > 0);
      if (data.reply) {
        await opts.responder
          .reply(data.reply, { text: report.text, responseType: 'in_channel' })
          .catch((err: Error) => {
            ctx.logger.warn({ err: err.message }, 'Could not answer a rollback');
          });
      }
      await opts.audit
        .record({
          userId: data.by,
          userName: data.by,
          command: '/rollback',
          text: `${data.service} ${data.environment}`,
          outcome: 'refused' in report ? 'refused' : report.ok ? 'done' : 'failed',
          detail: report.text.slice(0, 300),
          requestId,
        })
        .catch(logFailure(ctx.logger, 'Audit write failed', { jobId: job.id }));
      return report;
    },
    workerOptions(QUEUE.rollbacks, { ...opts, config: ctx.config }),
  );
  worker.on('error', (err) => ctx.logger.warn({ err: err.message }, 'Rollback worker error'));
  return worker;
}
