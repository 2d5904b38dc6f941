import { type ReleasePolicy, releasePolicy } from '../../config/schema.js';
import type { Convergence } from '../../integrations/swarm.js';
import { type ReleaseContext, type StepHandler, serviceDef } from '../release-context.js';
import type { Release, Step } from '../schema.js';

/** How soon to look again at a task Swarm is starting: it runs within moments, and health checks wait for it. */
const STARTING_RECHECK_MS = 250;

/**
 * Wait (as delayed jobs, never a sleep) until every task runs the new image and Swarm has completed
 * the update, or time out. The worker wakes the job when Swarm reports a change to the service
 * (release-workers.ts); pollInterval is the fallback for events that never come.
 *
 * Once every desired task runs the new image and Swarm only monitors the update, the new colour's
 * health checks begin here: it serves no traffic yet, and the health step then asks nothing less
 * (the same number of healthy answers in a row, at the same spacing, counted only if the tasks
 * checked are the tasks that converged). A check failing before convergence only restarts the streak.
 */
export const waitConvergence: StepHandler = async (ctx, r, step) => {
  const policy = releasePolicy(ctx.config, r.environment);
  const target = serviceDef(ctx, r)[r.toColour].swarmService;
  const c = await ctx.swarmFor(r.environment).convergence(target, r.image);
  if (c.state === 'converged')
    return {
      kind: 'done',
      detail: `${c.running}/${c.desired} tasks running ${r.image}`,
      patch: (rel) => {
        const h = healthAfter(rel);
        // Checked tasks that are not the ones that converged (one restarted since): none of it counts.
        if (h?.tasks && !sameTasks(h.tasks, c.tasks)) forget(h);
      },
    };
  if (c.state === 'failed') return { kind: 'fail', reason: `${target} did not converge: ${c.detail}` };
  const started = step.startedAt ?? ctx.now();
  if (ctx.now() - started > policy.convergeTimeout) {
    return {
      kind: 'fail',
      reason: `${target} did not converge within ${Math.round(policy.convergeTimeout / 1000)} s: ${c.detail}`,
    };
  }
  const poll = ctx.now() + policy.pollInterval;
  const health = healthAfter(r);
  if (c.tasks && health) return checkEarly(ctx, r, c, c.tasks, health, policy, poll);
  const until = c.starting ? Math.min(poll, ctx.now() + STARTING_RECHECK_MS) : poll;
  return { kind: 'wait', until, detail: c.detail };
};

/** The health step right after the converge step (planSteps puts it there). */
function healthAfter(r: Release): Step | undefined {
  const next = r.steps[r.stepIndex + 1];
  return next?.kind === 'health' ? next : undefined;
}

const sameTasks = (a: readonly string[], b: readonly string[] | undefined) =>
  b !== undefined && a.length === b.length && a.every((id, i) => id === b[i]);

function forget(h: Step): void {
  h.streak = 0;
  h.checkedAt = undefined;
  h.tasks = undefined;
  h.detail = undefined;
}

/** One health check of the new colour if one is due, written to the health step; then wait. */
async function checkEarly(
  ctx: ReleaseContext,
  r: Release,
  c: Extract<Convergence, { state: 'converging' }>,
  tasks: string[],
  health: Step,
  policy: ReleasePolicy,
  poll: number,
) {
  const { attempts, interval, timeout } = policy.healthCheck;
  const now = ctx.now();
  const same = sameTasks(tasks, health.tasks);
  let streak = same ? (health.streak ?? 0) : 0;
  let checkedAt = same ? health.checkedAt : undefined;
  let said = same ? health.detail : undefined;
  if (streak < attempts && (checkedAt === undefined || now >= checkedAt + interval)) {
    const res = await ctx.traffic.checkColour(r.environment, r.service, r.toColour, timeout);
    streak = res.ok ? streak + 1 : 0;
    checkedAt = now;
    said = res.ok
      ? `${streak}/${attempts} healthy: ${res.detail}`
      : `unhealthy (${res.detail}) while Swarm confirms the update; the streak starts over`;
  }
  const nextCheck = streak < attempts && checkedAt !== undefined ? checkedAt + interval : poll;
  const checks = streak >= attempts ? `health ${streak}/${attempts}` : `health ${streak}/${attempts} so far`;
  return {
    kind: 'wait' as const,
    until: Math.min(poll, nextCheck),
    detail: `${c.detail}; ${checks}`,
    patch: (rel: Release) => {
      const h = healthAfter(rel);
      if (!h) return;
      h.streak = streak;
      h.checkedAt = checkedAt;
      h.tasks = tasks;
      h.detail = said;
    },
  };
}
