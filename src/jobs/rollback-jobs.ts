import { type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { createQueue } from './queues.js';

export const ROLLBACK_QUEUE = 'rollbacks';

export const RollbackJob = z.object({
  environment: z.string(),
  service: z.string(),
  reason: z.string(),
  by: z.string(),
  trigger: z.string(),
  requestedAt: z.number(),
  reply: z.object({ responseUrl: z.string(), channelId: z.string(), userId: z.string() }).optional(),
});
export type RollbackJob = z.infer<typeof RollbackJob>;

/** Rollbacks have their own queue and workers, so they never wait behind release steps. */
export function createRollbackQueue(connection: Redis, prefix: string): Queue {
  return createQueue(ROLLBACK_QUEUE, connection, prefix, {
    priority: 1,
    attempts: 5,
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: 7 * 86_400, count: 1_000 },
    removeOnFail: { age: 30 * 86_400 },
  });
}
