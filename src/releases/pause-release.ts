import type { ReleaseContext } from './release-context.js';
import type { Release } from './schema.js';

/**
 * Pauses a running release or resumes a paused one. The lock then says "paused", which lets
 * /traffic step in while the release waits; resuming wakes the release's job at once.
 * Returns the release, or undefined if it was not in the state to change from.
 */
export async function setPaused(
  ctx: ReleaseContext,
  id: string,
  paused: boolean,
  event: string,
  outcome?: string,
): Promise<Release | undefined> {
  let changed = false;
  const r = await ctx.store.update(id, (rel) => {
    if (rel.status !== (paused ? 'running' : 'paused')) return undefined;
    changed = true;
    rel.status = paused ? 'paused' : 'running';
    rel.events.push({ at: ctx.now(), text: event });
    rel.outcome = outcome;
    return rel;
  });
  if (!changed) return undefined;
  await ctx.states.describeLock(
    r.environment,
    r.service,
    id,
    `${paused ? 'paused ' : ''}release ${r.version}`,
  );
  if (!paused) await ctx.jobs.wake(id);
  await ctx.publish(id);
  return r;
}
