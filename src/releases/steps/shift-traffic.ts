import { describeApply } from '../../integrations/nginx.js';
import type { StepHandler } from '../release-context.js';
import { weightsFor } from '../weights.js';

/** Give the new colour its next share, only while this release still owns the service. */
export const shiftTraffic: StepHandler = async (ctx, r, step) => {
  const percent = step.percent ?? 100;
  const weights = weightsFor(r.toColour, percent);
  const unhealthy = await ctx.traffic.unhealthyServing(r.environment, r.service, weights);
  if (unhealthy.length > 0)
    return { kind: 'fail', reason: `not shifting traffic to an unhealthy colour: ${unhealthy.join('; ')}` };
  const { apply } = await ctx.traffic.setWeights(r.environment, r.service, weights, (s) =>
    s.inFlight?.releaseId === r.id ? undefined : `${r.id} no longer holds ${r.service} in ${r.environment}`,
  );
  return {
    kind: 'done',
    detail: `${percent}% → ${r.toColour} (nginx ${describeApply(apply)})`,
    patch: (rel) => {
      rel.weights = weights;
    },
  };
};
