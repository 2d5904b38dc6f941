import type { Redis } from 'ioredis';
import { z } from 'zod';
import { Person } from './schema.js';

/** One `/deploy all`: what was asked, where its one message is, and which release each service got. */
export const Batch = z.object({
  id: z.string(),
  environment: z.string(),
  version: z.string(),
  channel: z.string(),
  requestedBy: Person,
  createdAt: z.number(),
  /** Every service asked for, in the order the command listed them (the message's order). */
  services: z.array(z.string()),
  sequential: z.boolean(),
  /** The batch message, once posted. */
  message: z.object({ channel: z.string(), ts: z.string() }).optional(),
  /** Service → release id, as each release is recorded. */
  members: z.record(z.string(), z.string()).default({}),
  /** Services the command did not start, with why. */
  refused: z.array(z.object({ service: z.string(), reason: z.string() })).default([]),
});
export type Batch = z.infer<typeof Batch>;

/** As long as a finished release's record at most (its members' records may go sooner). */
const BATCH_TTL_SEC = 90 * 86_400;

/**
 * Batches in Redis: one hash per batch whose fields are written separately (the request writes
 * members and refusals, the outbox the message), so no writer overwrites another's field.
 */
export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string) {
    return `${this.prefix}:data:batch:${id}`;
  }

  async create(b: Omit<Batch, 'members' | 'refused' | 'message'>): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(b.id), 'meta', JSON.stringify(b))
      .expire(this.key(b.id), BATCH_TTL_SEC)
      .exec();
  }

  addMember(id: string, service: string, releaseId: string): Promise<unknown> {
    return this.redis.hset(this.key(id), `member:${service}`, releaseId);
  }

  setRefused(id: string, refused: Batch['refused']): Promise<unknown> {
    return this.redis.hset(this.key(id), 'refused', JSON.stringify(refused));
  }

  /** The first post wins (a retried post finds the same message, so they are equal anyway). */
  setMessage(id: string, m: { channel: string; ts: string }): Promise<unknown> {
    return this.redis.hsetnx(this.key(id), 'message', JSON.stringify(m));
  }

  async get(id: string): Promise<Batch | undefined> {
    const h = await this.redis.hgetall(this.key(id));
    if (!h.meta) return undefined;
    const members: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) if (k.startsWith('member:')) members[k.slice(7)] = v;
    return Batch.parse({
      ...JSON.parse(h.meta),
      members,
      refused: h.refused ? JSON.parse(h.refused) : [],
      message: h.message ? JSON.parse(h.message) : undefined,
    });
  }

  /** How many services the batch asked for (0 when unknown): sets how often members' messages refresh. */
  async size(id: string): Promise<number> {
    const meta = await this.redis.hget(this.key(id), 'meta');
    return meta ? (JSON.parse(meta) as { services: string[] }).services.length : 0;
  }
}
