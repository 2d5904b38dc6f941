import { freezeRefusal, freezeStatus } from './freezes.js';
import { previousStage, promotionRefusal, trailLine } from './promotion.js';
import type { ReleaseContext } from './release-context.js';

/** Why a deploy may not go ahead now; a lead can override any of these with a reason. */
export interface GuardRefusal {
  kind: 'promotion' | 'freeze' | 'checklist';
  /** Set when only this service is refused (promotion, a rollout covering it); unset for the whole environment. */
  service?: string;
  reason: string;
}

export interface GuardReport {
  refusals: GuardRefusal[];
  /** Per service, the version's way through the pipeline so far, for the release message. */
  trails: Map<string, string>;
}

/**
 * The rules a deploy must pass before anything is locked: freezes of the environment, the
 * checklist gate, and per service the promotion rule (the version completed in the stage before).
 * Rollbacks never come here.
 */
export async function checkDeployGuards(
  ctx: ReleaseContext,
  req: { environment: string; services: string[]; version: string },
): Promise<GuardReport> {
  const { config } = ctx;
  const now = ctx.now();
  const refusals: GuardRefusal[] = [];
  const trails = new Map<string, string>();
  const freeze = freezeStatus(config.freezes, req.environment, new Date(now), config.timezone);
  if (freeze.active)
    refusals.push({
      kind: 'freeze',
      reason: freezeRefusal(req.environment, freeze.active, now, config.timezone),
    });
  // Rollouts cover services, so the checklist gate is asked per service; one answer for all of them
  // (the usual case) is said once, for the environment.
  const gates = await Promise.all(
    req.services.map(async (svc) => [svc, await ctx.gate?.(req.environment, svc)] as const),
  );
  const held = gates.filter(([, g]) => g);
  if (held.length === req.services.length && new Set(held.map(([, g]) => g)).size === 1)
    refusals.push({ kind: 'checklist', reason: `${req.environment} deploys wait: ${held[0]?.[1]}` });
  else
    for (const [service, g] of held)
      refusals.push({
        kind: 'checklist',
        service,
        reason: `${service}: ${req.environment} deploys wait: ${g}`,
      });

  const previous = previousStage(config.pipeline, req.environment);
  const inPipeline = config.pipeline?.includes(req.environment) ?? false;
  if (!inPipeline || !ctx.trail) return { refusals, trails };
  const rule = config.environments[req.environment]?.promotion;
  const trail = ctx.trail;
  await Promise.all(
    req.services.map(async (service) => {
      const [entries, running, lastCritical] = await Promise.all([
        trail.trail(service, req.version),
        previous ? trail.running(service) : Promise.resolve(undefined),
        previous && rule?.noCriticalAlerts
          ? trail.lastCritical(previous, service)
          : Promise.resolve(undefined),
      ]);
      const there = previous ? entries[previous] : undefined;
      const postChecklistOpen =
        previous && rule?.postChecklist && there && ctx.postChecklistOpen
          ? await ctx.postChecklistOpen(there.releaseId)
          : undefined;
      const reason = promotionRefusal({
        environment: req.environment,
        service,
        version: req.version,
        previous,
        rule,
        trail: entries,
        runningThere: previous ? running?.[previous] : undefined,
        lastCritical,
        postChecklistOpen,
        now,
      });
      if (reason) refusals.push({ kind: 'promotion', service, reason: `${service}: ${reason}` });
      if (previous) trails.set(service, trailLine(config.pipeline, entries, now, req.environment));
    }),
  );
  return { refusals, trails };
}
