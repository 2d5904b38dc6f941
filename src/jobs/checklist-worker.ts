import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Rollouts } from '../checklists/rollouts.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import { type Logger, logFailure } from '../observability/logger.js';
import { QUEUE, workerOptions } from './queues.js';

/** `checklistId` is a ref (`<rollout or release>/<checklist>`); a bare id (older jobs) means the migrated rollout's. */
const AutoCheckJob = z.object({ checklistId: z.string() });

/**
 * Automatic checks and the daily digest of each active rollout (a rollout past day 28 finishes);
 * the digest is a job scheduler, so one per day across replicas.
 */
export function startChecklistWorker(deps: {
  connection: Redis;
  prefix: string;
  config: FlightdeckConfig;
  rollouts: Rollouts;
  outbox: Outbox;
  queue: Queue;
  logger: Logger;
}): Worker {
  const channel = deps.config.checklists.channel ?? deps.config.channels.releases;
  const worker = new Worker(
    QUEUE.checklists,
    async (job: Job) => {
      if (job.name === 'autocheck') {
        const { checklistId } = AutoCheckJob.parse(job.data);
        const ref = checklistId.includes('/')
          ? checklistId
          : `${(await deps.rollouts.store.legacyRollout(deps.rollouts.legacySet)) ?? 'default'}/${checklistId}`;
        await deps.rollouts.autoCheck(ref);
        await deps.outbox.checklistRefresh(ref);
        return;
      }
      if (job.name === 'daily') {
        // Listing finishes every rollout past day 28 (kept, with its ticks).
        for (const rollout of await deps.rollouts.active()) {
          const checklists = deps.rollouts.forRollout(rollout);
          const pos = await checklists.position();
          if (!pos) continue;
          // Auto items of the current phase are checked before the digest lists what is open.
          const current = checklists.template.phases[Math.min(Math.max(pos.effective, 1), 4) - 1];
          // The digest goes out even when a check cannot run (it then lists the item as open).
          if (current)
            await checklists
              .autoCheck(current.checklist)
              .catch(logFailure(deps.logger, 'Automatic checks before the digest failed'));
          const text = await checklists.digest();
          // Keyed by rollout and date: a retried or duplicated run posts each digest once.
          if (text)
            await deps.outbox.text(
              deps.config.checklists.channel ?? rollout.channels[0] ?? channel,
              text,
              `digest-${rollout.id}-${pos.today}`,
            );
        }
        return;
      }
      throw new UnrecoverableError(`unknown checklist job ${job.name}`);
    },
    workerOptions(QUEUE.checklists, deps),
  );
  worker.on('failed', (job, err) =>
    deps.logger.warn({ jobId: job?.id, err: err.message }, 'Checklist job failed'),
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Checklist worker error'));
  deps.queue
    .upsertJobScheduler(
      'checklist-daily',
      { pattern: `0 ${deps.config.checklists.reminderHour} * * *`, tz: deps.config.timezone },
      { name: 'daily', data: {} },
    )
    .catch((err: Error) => deps.logger.warn({ err: err.message }, 'Could not schedule the checklist digest'));
  return worker;
}
