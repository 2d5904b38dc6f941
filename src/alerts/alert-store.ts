import type { Redis } from 'ioredis';
import { withRedisLock } from '../integrations/redis-lock.js';
import {
  type AlertGroup,
  AlertGroup as AlertGroupSchema,
  type AlertRecord,
  AlertRecord as AlertRecordSchema,
} from './schema.js';

/** Alert records by fingerprint and storm groups, each changed under its own short mutex. */
export class AlertStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(fp: string) {
    return `${this.prefix}:data:alert:${fp}`;
  }
  private groupKey(id: string) {
    return `${this.prefix}:data:alert-group:${id}`;
  }

  async get(fp: string): Promise<AlertRecord | undefined> {
    const raw = await this.redis.get(this.key(fp));
    return raw ? AlertRecordSchema.parse(JSON.parse(raw)) : undefined;
  }

  async many(fps: string[]): Promise<AlertRecord[]> {
    if (fps.length === 0) return [];
    const out: AlertRecord[] = [];
    for (let i = 0; i < fps.length; i += 500) {
      const raws = await this.redis.mget(fps.slice(i, i + 500).map((f) => this.key(f)));
      for (const r of raws) if (r) out.push(AlertRecordSchema.parse(JSON.parse(r)));
    }
    return out;
  }

  /** `fn` gets the current record (or undefined) and returns the new one (or undefined: no change). */
  async mutate(
    fp: string,
    fn: (cur: AlertRecord | undefined) => AlertRecord | undefined,
  ): Promise<AlertRecord | undefined> {
    return withRedisLock(
      this.redis,
      `${this.key(fp)}:mutex`,
      async () => {
        const cur = await this.get(fp);
        const next = fn(cur ? structuredClone(cur) : undefined);
        if (!next) return cur;
        await this.redis
          .multi()
          .set(this.key(fp), JSON.stringify(next), 'EX', 30 * 86_400)
          [next.status === 'firing' ? 'sadd' : 'srem'](`${this.prefix}:data:alerts:open`, fp)
          .exec();
        return next;
      },
      { ttlMs: 10_000, waitMs: 30_000 },
    );
  }

  async open(): Promise<AlertRecord[]> {
    return this.many(await this.redis.smembers(`${this.prefix}:data:alerts:open`));
  }

  /** Remembers which alerts an Alertmanager group carried; returns how many it has carried so far. */
  async noteGroupMembers(id: string, fps: string[]): Promise<number> {
    const key = `${this.groupKey(id)}:members`;
    const res = await this.redis
      .multi()
      .sadd(key, ...fps)
      .expire(key, 7 * 86_400)
      .scard(key)
      .exec();
    return Number(res?.[2]?.[1] ?? 0);
  }

  async groupMembers(id: string): Promise<string[]> {
    return this.redis.smembers(`${this.groupKey(id)}:members`);
  }

  async getGroup(id: string): Promise<AlertGroup | undefined> {
    const raw = await this.redis.get(this.groupKey(id));
    return raw ? AlertGroupSchema.parse(JSON.parse(raw)) : undefined;
  }

  async mutateGroup(
    id: string,
    fn: (cur: AlertGroup | undefined) => AlertGroup | undefined,
  ): Promise<AlertGroup | undefined> {
    return withRedisLock(
      this.redis,
      `${this.groupKey(id)}:mutex`,
      async () => {
        const cur = await this.getGroup(id);
        const next = fn(cur ? structuredClone(cur) : undefined);
        if (!next) return cur;
        await this.redis.set(this.groupKey(id), JSON.stringify(next), 'EX', 30 * 86_400);
        return next;
      },
      { ttlMs: 10_000, waitMs: 30_000 },
    );
  }
}
