import { type StepHandler, serviceDef } from '../release-context.js';

/** Point the idle colour's Swarm service at the new image (a no-op if it already is). */
export const updateService: StepHandler = async (ctx, r) => {
  const target = serviceDef(ctx, r)[r.toColour].swarmService;
  const { changed, previous } = await ctx.swarm.updateImage(target, r.image);
  return {
    kind: 'done',
    detail: changed ? `${target}: ${previous} → ${r.image}` : `${target} already specifies ${r.image}`,
    patch: (rel) => {
      rel.swarmUpdated = rel.swarmUpdated || changed;
    },
  };
};
