import { DelayedError, type Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import type { SlackResponder } from '../integrations/slack/respond.js';
import { noteResume } from './note-resume.js';
import { createQueue } from './queues.js';
import type { ReleaseContext } from './release-context.js';
import { advance, finishInterruptedRollback } from './release-machine.js';
import { rollBackService } from './roll-back-service.js';
import { ROLLBACK_QUEUE, RollbackJob } from './rollback-jobs.js';

export const RELEASE_QUEUE = 'releases';
const ReleaseJob = z.object({ releaseId: z.string() });

export function createReleaseQueue(connection: Redis, prefix: string): Queue {
  return createQueue(RELEASE_QUEUE, connection, prefix, {
    // The machine retries its own steps; these attempts only cover Redis or process trouble.
    attempts: 20,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 30 * 86_400, count: 5_000 },
    removeOnFail: { age: 30 * 86_400 },
  });
}

export interface WorkerOptions {
  connection: Redis;
  prefix: string;
  /** BullMQ lock: a killed worker's job is picked up again after about this long. */
  lockDuration: number;
  responder: SlackResponder;
  audit: AuditLog;
}

/** One job per release walks its steps; every wait is `moveToDelayed`, never a sleep. */
export function startReleaseWorker(ctx: ReleaseContext, opts: WorkerOptions): Worker {
  const worker = new Worker(
    RELEASE_QUEUE,
    async (job, token) => {
      const { releaseId } = ReleaseJob.parse(job.data);
      if (job.stalledCounter > 0) await noteResume(ctx, releaseId, job.stalledCounter);
      // Run again after its worker died or after an error (e.g. Redis gone mid-rollback): a rollback
      // it began is finished here, since advance() leaves a rolling_back release alone.
      if (job.stalledCounter > 0 || job.attemptsMade > 0) {
        const r = await ctx.store.get(releaseId);
        if (r?.status === 'rolling_back') await finishInterruptedRollback(ctx, r, { trigger: 'failure' });
      }
      const { waitUntil } = await advance(ctx, releaseId, opts.lockDuration);
      if (waitUntil !== undefined) {
        await job.moveToDelayed(Math.max(waitUntil, Date.now() + 1), token);
        throw new DelayedError();
      }
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: 32,
      lockDuration: opts.lockDuration,
      stalledInterval: opts.lockDuration,
      maxStalledCount: 50,
    },
  );
  worker.on('failed', (job, err) =>
    ctx.logger.error({ jobId: job?.id, err: err.message }, 'Release job failed'),
  );
  worker.on('error', (err) => ctx.logger.warn({ err: err.message }, 'Release worker error'));
  return worker;
}

/** The high-priority lane: rollbacks never queue behind release steps. */
export function startRollbackWorker(ctx: ReleaseContext, opts: WorkerOptions): Worker {
  const worker = new Worker(
    ROLLBACK_QUEUE,
    async (job) => {
      const data = RollbackJob.parse(job.data);
      // A retry after an error is a re-run too: the release it stopped may already be recorded.
      const report = await rollBackService(ctx, data, job.stalledCounter > 0 || job.attemptsMade > 0);
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
          outcome: report.ok ? 'done' : 'failed',
          detail: report.text.slice(0, 300),
          requestId: job.id ?? '',
        })
        .catch(() => {});
      return report;
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: 8,
      lockDuration: opts.lockDuration,
      stalledInterval: opts.lockDuration,
      maxStalledCount: 50,
    },
  );
  worker.on('error', (err) => ctx.logger.warn({ err: err.message }, 'Rollback worker error'));
  return worker;
}
