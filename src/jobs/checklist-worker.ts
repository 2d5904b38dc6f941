import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Checklists } from '../checklists/checklist-service.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import { type Logger, logFailure } from '../observability/logger.js';
import { QUEUE, workerOptions } from './queues.js';

const AutoCheckJob = z.object({ checklistId: z.string() });

/** Automatic checks and the daily digest; the digest is a job scheduler, so one per day across replicas. */
export function startChecklistWorker(deps: {
  connection: Redis;
  prefix: string;
  config: FlightdeckConfig;
  checklists: Checklists;
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
        await deps.checklists.autoCheck(checklistId);
        await deps.outbox.checklistRefresh(checklistId);
        return;
      }
      if (job.name === 'daily') {
        const pos = await deps.checklists.position();
        if (pos) {
          // Auto items of the current phase are checked before the digest lists what is open.
          const current = deps.checklists.template.phases[Math.min(Math.max(pos.effective, 1), 4) - 1];
          // The digest goes out even when a check cannot run (it then lists the item as open).
          if (current)
            await deps.checklists
              .autoCheck(current.checklist)
              .catch(logFailure(deps.logger, 'Automatic checks before the digest failed'));
        }
        const text = await deps.checklists.digest();
        // Keyed by date: a retried or duplicated run posts the digest once.
        if (text && pos) await deps.outbox.text(channel, text, `digest-${pos.today}`);
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
