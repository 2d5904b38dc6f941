import { type StepHandler, serviceDef } from '../release-context.js';

/**
 * Point the idle colour's Swarm service at the new image (a no-op if it already is); a colour that
 * `afterRelease: scale-down` left at 0 gets its replicas back in the same update.
 */
export const updateService: StepHandler = async (ctx, r) => {
  const target = serviceDef(ctx, r)[r.toColour].swarmService;
  const { changed, previous, scaledTo } = await ctx.swarmFor(r.environment).updateImage(target, r.image);
  const scaled =
    scaledTo === undefined ? '' : ` (scaled back from 0 to ${scaledTo} replica${scaledTo === 1 ? '' : 's'})`;
  return {
    kind: 'done',
    detail: changed
      ? `${target}: ${previous === r.image ? r.image : `${previous} → ${r.image}`}${scaled}`
      : `${target} already specifies ${r.image}`,
    patch: (rel) => {
      rel.swarmUpdated = rel.swarmUpdated || changed;
    },
  };
};
