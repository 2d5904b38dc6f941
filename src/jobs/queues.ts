import { type DefaultJobOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export const QUEUE = { commands: 'commands' } as const;

/**
 * A producer queue on the fail-fast connection. Queue errors are not logged here: Redis trouble
 * surfaces through /readyz and through the callers' own enqueue errors.
 */
export function createQueue(
  name: string,
  connection: Redis,
  prefix: string,
  defaultJobOptions: DefaultJobOptions,
): Queue {
  const queue = new Queue(name, { connection, prefix, defaultJobOptions });
  queue.on('error', () => {});
  return queue;
}

/** Producer side of the command queue. Jobs keep a day of history for `status` and debugging. */
export function createCommandQueue(connection: Redis, prefix: string): Queue {
  return createQueue(QUEUE.commands, connection, prefix, {
    attempts: 3,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 86_400, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  });
}
