import type { Redis } from 'ioredis';
import { z } from 'zod';

/** Where a version of a service has been: completed in an environment, and whether it was rolled back there since. */
export const TrailEntry = z.object({
  releaseId: z.string(),
  completedAt: z.number(),
  rolledBackAt: z.number().optional(),
  rolledBackBy: z.string().optional(),
});
export type TrailEntry = z.infer<typeof TrailEntry>;

/** The version a service runs in an environment, since when, and the release that put it there. */
export const Running = z.object({ version: z.string(), since: z.number(), releaseId: z.string().optional() });
export type Running = z.infer<typeof Running>;

/** A version's trail is kept this long after its last change: promotion looks back weeks, not years. */
const TRAIL_TTL_SEC = 180 * 86_400;

/** The tag of an image reference (`repo:1.4.2`, `repo:1.4.2@sha256:…`), or undefined for none. */
export function versionOf(image: string | undefined): string | undefined {
  if (!image) return undefined;
  const noDigest = image.split('@')[0] as string;
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(colon + 1) : undefined;
}

/**
 * Per service: each version's trail through the environments (one small hash per version, expiring
 * when the version is no longer touched) and what runs where (one hash per service).
 */
export class VersionTrail {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private versionKey(svc: string, version: string) {
    return `${this.prefix}:data:trail:${svc}:${version}`;
  }

  private runningKey(svc: string) {
    return `${this.prefix}:data:running:${svc}`;
  }

  /** A release completed: the version is in the environment, and runs there from now. Idempotent. */
  async completed(env: string, svc: string, version: string, releaseId: string, at: number): Promise<void> {
    const k = this.versionKey(svc, version);
    await this.redis
      .multi()
      .hset(k, env, JSON.stringify({ releaseId, completedAt: at } satisfies TrailEntry))
      .expire(k, TRAIL_TTL_SEC)
      .hset(this.runningKey(svc), env, JSON.stringify({ version, since: at, releaseId } satisfies Running))
      .exec();
  }

  /** A /rollback took the version out of the environment; `back` is the version it runs again. */
  async rolledBack(
    env: string,
    svc: string,
    version: string,
    by: string,
    at: number,
    back: string | undefined,
  ): Promise<void> {
    const k = this.versionKey(svc, version);
    const raw = await this.redis.hget(k, env);
    const m = this.redis.multi();
    if (raw) {
      const entry = TrailEntry.parse(JSON.parse(raw));
      m.hset(k, env, JSON.stringify({ ...entry, rolledBackAt: at, rolledBackBy: by })).expire(
        k,
        TRAIL_TTL_SEC,
      );
    }
    if (back)
      m.hset(this.runningKey(svc), env, JSON.stringify({ version: back, since: at } satisfies Running));
    else m.hdel(this.runningKey(svc), env);
    await m.exec();
  }

  /** A critical alert fired for the service in the environment (the promotion rule `noCriticalAlerts`). */
  async criticalAlert(env: string, svc: string, name: string, at: number): Promise<void> {
    await this.redis.hset(this.criticalKey(svc), env, JSON.stringify({ at, name }));
  }

  async lastCritical(env: string, svc: string): Promise<{ at: number; name: string } | undefined> {
    const raw = await this.redis.hget(this.criticalKey(svc), env);
    return raw ? z.object({ at: z.number(), name: z.string() }).parse(JSON.parse(raw)) : undefined;
  }

  private criticalKey(svc: string) {
    return `${this.prefix}:data:critical:${svc}`;
  }

  async trail(svc: string, version: string): Promise<Record<string, TrailEntry>> {
    const raw = await this.redis.hgetall(this.versionKey(svc, version));
    return Object.fromEntries(Object.entries(raw).map(([env, v]) => [env, TrailEntry.parse(JSON.parse(v))]));
  }

  async running(svc: string): Promise<Record<string, Running>> {
    const raw = await this.redis.hgetall(this.runningKey(svc));
    return Object.fromEntries(Object.entries(raw).map(([env, v]) => [env, Running.parse(JSON.parse(v))]));
  }
}
