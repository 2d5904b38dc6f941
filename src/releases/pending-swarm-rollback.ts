import { z } from 'zod';
import { withRedisLock } from '../integrations/redis-lock.js';
import type { ReleaseContext } from './release-context.js';

/**
 * The Swarm half of a `/rollback` with no release in flight, recorded before traffic moves: the
 * colour that loses its traffic goes back to its previous spec. Once traffic is switched the service
 * state no longer names an earlier release, so without this record a run killed between the two
 * halves would leave that service as it was and the next `/rollback` would find nothing to do.
 */
const Pending = z.object({
  swarmService: z.string(),
  /** The image the service runs while its rollback is due; any other image means it already happened. */
  image: z.string(),
});
type Pending = z.infer<typeof Pending>;

const key = (ctx: ReleaseContext, env: string, svc: string) =>
  `${ctx.config.redis.prefix}:data:service-rollback:${env}:${svc}`;
const PENDING_TTL_SEC = 7 * 86_400;

export async function recordSwarmRollback(
  ctx: ReleaseContext,
  env: string,
  svc: string,
  pending: Pending,
): Promise<void> {
  await ctx.redis.set(key(ctx, env, svc), JSON.stringify(pending), 'EX', PENDING_TTL_SEC);
}

export async function pendingSwarmRollback(
  ctx: ReleaseContext,
  env: string,
  svc: string,
): Promise<Pending | undefined> {
  const raw = await ctx.redis.get(key(ctx, env, svc));
  if (!raw) return undefined;
  const parsed = Pending.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : undefined;
}

/**
 * Rolls the recorded service back to its previous spec, once: only while it still runs the recorded
 * image (a second rollback would flip it back), under a lock so two runs never both do it; then the
 * record is removed. Returns what happened, for the answer.
 */
export async function finishSwarmRollback(ctx: ReleaseContext, env: string, svc: string): Promise<string> {
  return withRedisLock(
    ctx.redis,
    `${key(ctx, env, svc)}:lock`,
    async () => {
      const pending = await pendingSwarmRollback(ctx, env, svc);
      if (!pending) return 'Swarm already rolled back by another run';
      const name = pending.swarmService;
      let detail: string;
      try {
        const swarm = ctx.swarmFor(env);
        const info = await swarm.inspect(name);
        if (info.image !== pending.image) detail = `${name} already on ${info.image}`;
        else if (!info.previousImage || info.previousImage === info.image)
          detail = `${name} had no previous spec`;
        else {
          const rolled = await swarm.rollbackToPrevious(name);
          detail = `${name} rolled back to ${rolled.image}`;
        }
      } catch (err) {
        // Left recorded: the next /rollback tries again.
        return `could not roll back ${name}: ${(err as Error).message}`;
      }
      await ctx.redis.del(key(ctx, env, svc));
      return detail;
    },
    { ttlMs: 60_000, waitMs: 90_000 },
  );
}
