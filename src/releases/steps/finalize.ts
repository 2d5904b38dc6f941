import { releasePolicy } from '../../config/schema.js';
import { type StepHandler, serviceDef } from '../release-context.js';
import type { ServiceState } from '../schema.js';
import { weightsFor } from '../weights.js';

/** This release's finalize already wrote the service state (it is the last recorded release). */
export const finalizedBy = (s: ServiceState, releaseId: string) =>
  s.previous?.releaseId === releaseId && s.inFlight === undefined;

/** Record the new live colour and last good image, free the lock, and scale the old colour as configured. */
export const finalize: StepHandler = async (ctx, r) => {
  const policy = releasePolicy(ctx.config, r.environment);
  const weights = weightsFor(r.toColour, 100);
  const owned = await ctx.states.mutate(r.environment, r.service, (s) => {
    // Already recorded by this release before a crash: the effect is done, do not record it twice.
    if (finalizedBy(s, r.id)) return { result: true };
    if (s.inFlight?.releaseId !== r.id) return { result: false };
    return {
      result: true,
      state: {
        ...s,
        // Rollback goes back to the colour that served before this release (not necessarily the
        // last recorded one: /traffic may have moved everything by hand).
        previous: { colour: r.fromColour, image: r.fromImage ?? s.lastGood.image, releaseId: r.id },
        live: r.toColour,
        lastGood: { colour: r.toColour, image: r.image },
        images: { ...s.images, [r.fromColour]: s.lastGood.image ?? r.fromImage, [r.toColour]: r.image },
        weights,
        inFlight: undefined,
      },
    };
  });
  if (!owned) return { kind: 'fail', reason: `${r.id} no longer holds ${r.service} in ${r.environment}` };
  await ctx.traffic.apply({ environment: r.environment });
  let scaled = '';
  if (policy.afterRelease === 'scale-down') {
    const old = serviceDef(ctx, r)[r.fromColour].swarmService;
    await ctx
      .swarmFor(r.environment)
      .scale(old, 0)
      .then(
        () => {
          scaled = `; ${old} scaled to 0`;
        },
        (err: Error) => {
          scaled = `; could not scale ${old} down: ${err.message}`;
        },
      );
  }
  const at = ctx.now();
  return {
    kind: 'done',
    detail: `${r.toColour} is live with ${r.image}${scaled}`,
    patch: (rel) => {
      rel.status = 'completed';
      rel.finishedAt = at;
      rel.weights = weights;
      rel.outcome = `${r.service} ${r.version} is live on ${r.toColour} in ${r.environment}${scaled}`;
    },
  };
};
