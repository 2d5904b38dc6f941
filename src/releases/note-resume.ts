import type { ReleaseContext } from './release-context.js';
import { TERMINAL } from './schema.js';

/**
 * A release job that BullMQ found stalled (the worker running it died) is being run again: record
 * it once per stall on the release, so its progress message tells people what happened, and
 * refresh the message (the dead worker may have recorded a step without publishing it).
 */
export async function noteResume(ctx: ReleaseContext, id: string, stalls: number): Promise<void> {
  if (!(await ctx.store.get(id))) return;
  let noted = false;
  await ctx.store.update(id, (rel) => {
    if ((rel.resumes ?? 0) >= stalls) return undefined;
    noted = true;
    rel.resumes = stalls;
    const step = rel.steps[rel.stepIndex];
    rel.events.push({
      at: ctx.now(),
      text:
        TERMINAL.has(rel.status) || !step
          ? `↻ The worker stopped (killed or restarted) after recording the outcome; this message was brought up to date${rel.status === 'completed' ? ' and what follows the release done, once' : ''}`
          : `↻ The worker running this release stopped (killed or restarted) during “${step.label}”; it was resumed from the last recorded step`,
    });
    return rel;
  });
  if (!noted) return;
  ctx.logger.warn({ releaseId: id, stalls }, 'Resuming a release whose worker died');
  await ctx.publish(id);
}
