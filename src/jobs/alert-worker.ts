import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { EscalateJob, escalationJobId } from '../alerts/apply-notification.js';
import type { AlertJobs, createAlertHandlers } from '../alerts/handle-alerts.js';
import { AlertmanagerWebhook } from '../alerts/schema.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { QUEUE, workerOptions } from './queues.js';

/** Escalations as delayed jobs on the alert queue, one job id per episode and escalation. */
export function bullAlertJobs(queue: Queue, config: FlightdeckConfig): AlertJobs {
  return {
    async escalate(job, delayMs) {
      await queue.add('escalate', job, {
        jobId: escalationJobId(job.fingerprint, job.firstSeen, job.n),
        delay: delayMs,
      });
    },
    async cancelEscalations(fingerprint, firstSeen) {
      for (let n = 1; n <= config.alerts.escalation.maxTimes; n++) {
        // remove() of an id that is not there (never scheduled, already run) is a no-op.
        await queue.remove(escalationJobId(fingerprint, firstSeen, n));
      }
    },
  };
}

/** Runs the alert queue: webhooks, escalations and the reconcile schedule (one for all replicas). */
export function startAlertWorker(deps: {
  connection: Redis;
  prefix: string;
  config: FlightdeckConfig;
  queue: Queue;
  handlers: ReturnType<typeof createAlertHandlers>;
  reconcile: boolean;
  logger: Logger;
}): Worker {
  const { handlers } = deps;
  const worker = new Worker(
    QUEUE.alerts,
    async (job: Job) => {
      if (job.name === 'reconcile') return handlers.onReconcile();
      if (job.name === 'webhook') {
        const parsed = AlertmanagerWebhook.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError('malformed webhook job');
        return handlers.onWebhook(parsed.data);
      }
      if (job.name === 'escalate') {
        const parsed = EscalateJob.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError('malformed escalation job');
        return handlers.onEscalate(parsed.data);
      }
      throw new UnrecoverableError(`unknown alert job ${job.name}`);
    },
    workerOptions(QUEUE.alerts, deps),
  );
  worker.on('failed', (job, err) =>
    deps.logger.warn({ jobId: job?.id, err: err.message }, 'Alert job failed'),
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Alert worker error'));
  if (deps.reconcile) {
    // BullMQ keeps a single delayed job per scheduler id, so every replica may upsert it.
    deps.queue
      .upsertJobScheduler(
        'alerts-reconcile',
        { every: deps.config.alerts.reconcileEvery },
        { name: 'reconcile', data: {} },
      )
      .catch((err: Error) =>
        deps.logger.warn({ err: err.message }, 'Could not schedule alert reconciliation'),
      );
  }
  return worker;
}
