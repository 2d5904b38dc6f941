import { releasePolicy } from '../../config/schema.js';
import type { StepHandler } from '../release-context.js';

/**
 * The new colour must answer its health path `attempts` times in a row, `interval` apart; a failure
 * starts over. The streak may have begun while Swarm was still confirming the update (the converge
 * step checks the same way once the new tasks run): it then carries on from there, or is complete.
 */
export const checkHealth: StepHandler = async (ctx, r, step) => {
  const { healthCheck } = releasePolicy(ctx.config, r.environment);
  const so = step.streak ?? 0;
  if (so >= healthCheck.attempts)
    return {
      kind: 'done',
      detail: `${step.detail ?? `${so}/${healthCheck.attempts} healthy`} (checked while Swarm confirmed the update)`,
    };
  // Spacing holds whoever woke the job: the next check is due one interval after the last.
  const due = step.checkedAt !== undefined ? step.checkedAt + healthCheck.interval : ctx.now();
  if (ctx.now() < due)
    return { kind: 'wait', until: due, detail: step.detail ?? `${so}/${healthCheck.attempts} healthy` };
  const res = await ctx.traffic.checkColour(r.environment, r.service, r.toColour, healthCheck.timeout);
  const streak = res.ok ? so + 1 : 0;
  const tries = (step.failures ?? 0) + (res.ok ? 0 : 1);
  if (streak >= healthCheck.attempts)
    return { kind: 'done', detail: `${streak}/${healthCheck.attempts} healthy: ${res.detail}` };
  if (!res.ok && tries >= healthCheck.attempts * 3) {
    return { kind: 'fail', reason: `${r.toColour} is not healthy: ${res.detail}` };
  }
  const checkedAt = ctx.now();
  return {
    kind: 'wait',
    until: checkedAt + healthCheck.interval,
    detail: res.ok ? `${streak}/${healthCheck.attempts} healthy` : `unhealthy (${res.detail}), retrying`,
    patch: (_rel, s) => {
      s.streak = streak;
      s.failures = tries;
      s.checkedAt = checkedAt;
    },
  };
};
