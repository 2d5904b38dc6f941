import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CommandJob } from '../commands/schema.js';
import { withTimeout } from '../integrations/redis.js';

/**
 * Queues a command job unless this request was seen before: Slack may deliver the same request
 * again, and the first claim wins. Bounded, so a dead Redis fails fast with a clear answer.
 */
export async function enqueueOnce(
  deps: { redis: Redis; queue: Queue; prefix: string },
  jobName: string,
  job: CommandJob,
): Promise<'queued' | 'duplicate'> {
  const claimed = await withTimeout(
    deps.redis.set(`${deps.prefix}:data:seen:${job.requestId}`, '1', 'EX', 86_400, 'NX'),
    2_000,
    'Redis',
  );
  if (claimed !== 'OK') return 'duplicate';
  await withTimeout(deps.queue.add(jobName, job, { jobId: job.requestId }), 2_000, 'Redis');
  return 'queued';
}
