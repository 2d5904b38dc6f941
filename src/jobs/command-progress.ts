import type { Redis } from 'ioredis';
import { z } from 'zod';

/** What of one command job is done: its effect (with the answer it produced), the answer, the audit. */
export interface CommandProgress {
  get(requestId: string): Promise<{ result?: string; delivered?: string; audited?: boolean }>;
  mark(requestId: string, part: 'result' | 'delivered' | 'audited', value: string): Promise<void>;
}

/** Longer than any retry of a command job (3 attempts, seconds apart). */
const TTL_SEC = 2 * 86_400;

const Stored = z.object({
  result: z.string().optional(),
  delivered: z.string().optional(),
  audited: z.string().optional(),
});

/** One small hash per command request, so a job retried after its reply or audit failed skips the rest. */
export class RedisCommandProgress implements CommandProgress {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(requestId: string) {
    return `${this.prefix}:data:command:${requestId}`;
  }

  async get(requestId: string) {
    const raw = Stored.parse(await this.redis.hgetall(this.key(requestId)));
    return { result: raw.result, delivered: raw.delivered, audited: raw.audited !== undefined };
  }

  async mark(requestId: string, part: 'result' | 'delivered' | 'audited', value: string) {
    const key = this.key(requestId);
    await this.redis.multi().hset(key, part, value).expire(key, TTL_SEC).exec();
  }
}
