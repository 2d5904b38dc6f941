import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export const QUEUE = { commands: 'commands' } as const;

/** Producer side of the command queue. Jobs keep a day of history for `status` and debugging. */
export function createCommandQueue(connection: Redis, prefix: string): Queue {
  const queue = new Queue(QUEUE.commands, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 3,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 86_400, count: 10_000 },
      removeOnFail: { age: 7 * 86_400 },
    },
  });
  queue.on('error', () => {}); // surfaced through /readyz and the enqueue path instead
  return queue;
}
