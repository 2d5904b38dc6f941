import type { Queue } from 'bullmq';
import type { Logger } from '../observability/logger.js';
import type { ReleaseJobs } from '../releases/release-context.js';
import { rollbackJobId } from '../releases/rollback-lane.js';

/** The release machine's view of the queues, on BullMQ: a release's job id is the release id. */
export function bullReleaseJobs(releases: Queue, rollbacks: Queue, logger: Logger): ReleaseJobs {
  return {
    async start(releaseId, delayMs = 0) {
      // Adding an existing job id is a no-op, so a re-run command or hook never queues twice.
      await releases.add('release', { releaseId }, { jobId: releaseId, delay: delayMs });
    },
    async wake(releaseId) {
      const job = await releases.getJob(releaseId);
      if (job && (await job.isDelayed())) await job.promote();
    },
    async dropPending(releaseId) {
      const job = await releases.getJob(releaseId);
      if (!job) return;
      const state = await job.getState();
      // An active job is left alone: it will find the release finished and end by itself.
      if (state !== 'delayed' && state !== 'waiting' && state !== 'prioritized') return;
      await job.remove().catch((err: Error) => {
        // It became active in between: the same as above, it ends by itself.
        logger.info({ releaseId, err: err.message }, 'Release job started before it could be dropped');
      });
    },
    async rollback(job) {
      // One job per service per request: a command retried after a crash does not roll back twice.
      const jobId = rollbackJobId(job);
      await rollbacks.add('rollback', job, jobId ? { jobId } : {});
    },
  };
}
