import type { Redis } from 'ioredis';
import { DoraEvent } from './dora.js';

/** Events older than this are pruned: `/deploy stats` looks back at most 365 days (plus a failure window). */
export const DORA_KEEP_MS = 400 * 86_400_000;
/** At most this many events per environment and service (an alert storm cannot grow it without bound). */
export const DORA_MAX_EVENTS = 2_000;

/**
 * The DORA event list of each environment and service: a sorted set scored by time, members the
 * events' JSON. Each write prunes what is older than DORA_KEEP_MS and keeps the newest DORA_MAX_EVENTS;
 * the key expires DORA_KEEP_MS after its last write.
 */
export class DoraLog {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {}

  private key(env: string, svc: string) {
    return `${this.prefix}:data:dora:${env}:${svc}`;
  }

  async record(env: string, svc: string, event: DoraEvent): Promise<void> {
    const k = this.key(env, svc);
    await this.redis
      .multi()
      .zadd(k, event.at, JSON.stringify(DoraEvent.parse(event)))
      .zremrangebyscore(k, '-inf', `(${this.now() - DORA_KEEP_MS}`)
      .zremrangebyrank(k, 0, -(DORA_MAX_EVENTS + 1))
      .pexpire(k, DORA_KEEP_MS)
      .exec();
  }

  /** Events between `from` and `to` (inclusive), oldest first; unreadable members are skipped. */
  async read(env: string, svc: string, from: number, to: number): Promise<DoraEvent[]> {
    const raws = await this.redis.zrangebyscore(this.key(env, svc), from, to);
    return raws.flatMap((r) => {
      try {
        const p = DoraEvent.safeParse(JSON.parse(r));
        return p.success ? [p.data] : [];
      } catch {
        return [];
      }
    });
  }
}
