import { releasePolicy } from '../../config/schema.js';
import type { StepHandler } from '../release-context.js';

/** The new colour must answer its health path `attempts` times in a row; a failure starts over. */
export const checkHealth: StepHandler = async (ctx, r, step) => {
  const { healthCheck } = releasePolicy(ctx.config, r.environment);
  const res = await ctx.traffic.checkColour(r.environment, r.service, r.toColour, healthCheck.timeout);
  const streak = res.ok ? (step.streak ?? 0) + 1 : 0;
  const tries = (step.failures ?? 0) + (res.ok ? 0 : 1);
  if (streak >= healthCheck.attempts)
    return { kind: 'done', detail: `${streak}/${healthCheck.attempts} healthy: ${res.detail}` };
  if (!res.ok && tries >= healthCheck.attempts * 3) {
    return { kind: 'fail', reason: `${r.toColour} is not healthy: ${res.detail}` };
  }
  return {
    kind: 'wait',
    until: ctx.now() + healthCheck.interval,
    detail: res.ok ? `${streak}/${healthCheck.attempts} healthy` : `unhealthy (${res.detail}), retrying`,
    patch: (_rel, s) => {
      s.streak = streak;
      s.failures = tries;
    },
  };
};
