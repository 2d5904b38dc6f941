import { failpoint } from '../observability/failpoints.js';
import type { ReleaseContext } from './release-context.js';
import type { Release } from './schema.js';

/** Redis hash of the after-release hooks a release has run: one field per hook, set once it took effect. */
const doneKey = (ctx: ReleaseContext, id: string) => `${ctx.config.redis.prefix}:data:release:${id}:after`;
const DONE_TTL_SEC = 30 * 86_400;

/**
 * What follows a completed release: the version's trail records it, the next release of a sequential batch starts, then the
 * `onCompleted` hook runs (the post-deployment checklist). The release job runs this whenever it finds
 * its release completed, so a crash anywhere after the final record is followed by the job's next run
 * doing what is left. Each hook is idempotent and marked done after it took effect: each happens once.
 * A hook that throws fails the job, whose retry runs what is left.
 */
export async function runAfterRelease(ctx: ReleaseContext, r: Release): Promise<void> {
  if (r.status !== 'completed') return;
  const hooks: Array<[name: string, run: () => Promise<void>]> = [];
  const trail = ctx.trail;
  // Where the version has been: the next stage of the pipeline looks for this.
  if (trail)
    hooks.push([
      'trail',
      () => trail.completed(r.environment, r.service, r.version, r.id, r.finishedAt ?? ctx.now()),
    ]);
  if (r.batch?.next) hooks.push(['next-in-batch', () => startNextInBatch(ctx, r.batch?.next as string)]);
  const onCompleted = ctx.onCompleted;
  if (onCompleted) hooks.push(['on-completed', () => onCompleted(r)]);
  // DORA, last (it may wait up to 5 s for Docker): a deploy, with its image's creation time for lead
  // time (best effort: none when unknown).
  const dora = ctx.dora;
  if (dora)
    hooks.push([
      'dora',
      async () => {
        const imageCreatedAt = await Promise.resolve()
          .then(() => ctx.swarmFor(r.environment).imageCreatedAt(r.image, ctx.config.dora.imageCreatedLabel))
          .catch(() => undefined);
        await dora.record(r.environment, r.service, {
          kind: 'deploy',
          id: `deploy:${r.id}`,
          at: r.finishedAt ?? ctx.now(),
          releaseId: r.id,
          version: r.version,
          requestedAt: r.createdAt,
          ...(imageCreatedAt === undefined ? {} : { imageCreatedAt }),
        });
      },
    ]);
  if (hooks.length === 0) return;
  const key = doneKey(ctx, r.id);
  const done = new Set(await ctx.redis.hkeys(key));
  for (const [name, run] of hooks) {
    if (done.has(name)) continue;
    await run();
    failpoint(`after:${name}`);
    await ctx.redis.multi().hset(key, name, String(ctx.now())).expire(key, DONE_TTL_SEC).exec();
  }
}

/**
 * Sequential `all` releases: the next one starts when this one completes (a second call changes
 * nothing). One still awaiting approval is left to its approval (its job waits for the deadline).
 */
export async function startNextInBatch(ctx: ReleaseContext, nextId: string): Promise<void> {
  const next = await ctx.store.update(nextId, (rel) => {
    if (rel.status !== 'queued') return undefined;
    rel.status = 'running';
    const first = rel.steps[rel.stepIndex];
    if (first?.status === 'pending') first.status = 'running';
    return rel;
  });
  // Running already (a crash came after the status change): the job id makes the add once-only. An
  // approved release has its job already, delayed to its approval deadline: wake it.
  if (next.status === 'running') {
    await ctx.jobs.start(nextId);
    await ctx.jobs.wake(nextId);
  }
  await ctx.publish(nextId);
}
