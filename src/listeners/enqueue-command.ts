import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CommandJob } from '../commands/schema.js';
import { withTimeout } from '../integrations/redis.js';
import { failpoint } from '../observability/failpoints.js';

/** The enqueue took longer than its bound: the job may or may not be in Redis. */
export class EnqueueUnconfirmed extends Error {}

/**
 * Queues a command job once per request: Slack may deliver the same request again. The job id is the
 * request id, so the add itself is the once-only step (BullMQ ignores an id it already holds): there
 * is no moment where the request is marked seen but not queued. The `seen` key, claimed after the
 * add, only decides which delivery reports "queued" (and audits it), and answers a late duplicate
 * whose job BullMQ has already removed. Bounded, so a dead Redis fails fast with a clear answer.
 */
export async function enqueueOnce(
  deps: { redis: Redis; queue: Queue; prefix: string },
  jobName: string,
  job: CommandJob,
): Promise<'queued' | 'duplicate'> {
  const seenKey = `${deps.prefix}:data:seen:${job.requestId}`;
  if ((await withTimeout(deps.redis.exists(seenKey), 2_000, 'Redis')) === 1) return 'duplicate';
  try {
    await withTimeout(deps.queue.add(jobName, job, { jobId: job.requestId }), 2_000, 'Redis');
  } catch (err) {
    // A timeout is not a refusal: the add may still land (Redis slow, not gone).
    if (/timed out/.test((err as Error).message)) throw new EnqueueUnconfirmed((err as Error).message);
    throw err;
  }
  failpoint('after:enqueue');
  const claimed = await withTimeout(deps.redis.set(seenKey, '1', 'EX', 86_400, 'NX'), 2_000, 'Redis').catch(
    () => 'OK',
  ); // the job is queued: a lost claim only risks a second "accepted" audit line
  return claimed === 'OK' ? 'queued' : 'duplicate';
}
