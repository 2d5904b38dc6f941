import { releasePolicy } from '../../config/schema.js';
import { type StepHandler, serviceDef } from '../release-context.js';

/** Poll Swarm (as delayed jobs, never a sleep) until every task runs the new image, or time out. */
export const waitConvergence: StepHandler = async (ctx, r, step) => {
  const policy = releasePolicy(ctx.config, r.environment);
  const target = serviceDef(ctx, r)[r.toColour].swarmService;
  const c = await ctx.swarmFor(r.environment).convergence(target, r.image);
  if (c.state === 'converged')
    return { kind: 'done', detail: `${c.running}/${c.desired} tasks running ${r.image}` };
  if (c.state === 'failed') return { kind: 'fail', reason: `${target} did not converge: ${c.detail}` };
  const started = step.startedAt ?? ctx.now();
  if (ctx.now() - started > policy.convergeTimeout) {
    return {
      kind: 'fail',
      reason: `${target} did not converge within ${Math.round(policy.convergeTimeout / 1000)} s: ${c.detail}`,
    };
  }
  return { kind: 'wait', until: ctx.now() + policy.pollInterval, detail: c.detail };
};
