import { setTimeout as sleep } from 'node:timers/promises';
import { type Colour, releasePolicy } from '../config/schema.js';
import { DockerUnavailable, type ServiceInfo, SwarmServiceMissing } from '../integrations/swarm.js';
import { failpoint } from '../observability/failpoints.js';
import { finishSwarmRollback, pendingSwarmRollback, recordSwarmRollback } from './pending-swarm-rollback.js';
import type { ReleaseContext } from './release-context.js';
import { finishInterruptedRollback, finishRecordedRollback, rollBackRelease } from './release-machine.js';
import { type Release, type RollbackJob, TERMINAL } from './schema.js';
import { TrafficRefused } from './traffic.js';
import { versionOf } from './version-trail.js';
import { other, weightsFor } from './weights.js';

const MOVING = new Set(['updating', 'rollback_started']);
const HALFWAY = new Set(['paused', 'rollback_paused']);

/**
 * Waits (bounded by the policy's convergeTimeout, at most 2 minutes) while Swarm updates or rolls
 * back the service; returns why it is not settled, or undefined once it is. An unreachable Docker
 * engine does not block a rollback: traffic moves on the health check alone, as it always could.
 */
async function swarmSettled(
  ctx: ReleaseContext,
  swarmService: string,
  env: string,
): Promise<string | undefined> {
  const policy = releasePolicy(ctx.config, env);
  const deadline = ctx.now() + Math.min(policy.convergeTimeout, 120_000);
  for (;;) {
    let state: string | undefined;
    let message: string | undefined;
    try {
      ({ updateState: state, updateMessage: message } = await ctx.swarmFor(env).inspect(swarmService));
    } catch (err) {
      if (err instanceof DockerUnavailable || err instanceof SwarmServiceMissing) return undefined;
      throw err;
    }
    const why = `${swarmService}: update ${state}${message ? `, ${message}` : ''}`;
    if (state && HALFWAY.has(state)) return why;
    if (!state || !MOVING.has(state)) return undefined;
    if (ctx.now() >= deadline) return why;
    ctx.logger.info(
      { swarmService, updateState: state },
      'Rollback waits for Swarm to settle before moving traffic',
    );
    await sleep(Math.min(policy.pollInterval, 1_000));
  }
}

/**
 * A colour `afterRelease: scale-down` left at 0 replicas gets its replicas back (the count it had)
 * and is waited for, like swarmSettled, until its tasks run and it answers its health check
 * `healthCheck.attempts` times in a row. Returns what was done, or why it is not serving.
 */
async function scaleBackUp(
  ctx: ReleaseContext,
  env: string,
  svc: string,
  colour: Colour,
  swarmService: string,
): Promise<{ done?: string; error?: string }> {
  let info: ServiceInfo;
  try {
    info = await ctx.swarmFor(env).inspect(swarmService);
  } catch (err) {
    if (err instanceof DockerUnavailable || err instanceof SwarmServiceMissing) return {};
    throw err;
  }
  if (info.replicas > 0) return {};
  const replicas = info.restoreReplicas;
  await ctx.swarmFor(env).scale(swarmService, replicas);
  const done = `${colour} scaled back from 0 to ${replicas} replica${replicas === 1 ? '' : 's'} first`;
  const policy = releasePolicy(ctx.config, env);
  const deadline = ctx.now() + Math.min(policy.convergeTimeout, 120_000);
  for (;;) {
    const c = await ctx.swarmFor(env).convergence(swarmService, info.image);
    if (c.state === 'converged') break;
    if (c.state === 'failed' || ctx.now() >= deadline)
      return { error: `${colour} was scaled back from 0 to ${replicas} but did not start: ${c.detail}` };
    await sleep(Math.min(policy.pollInterval, 1_000));
  }
  const { attempts, interval, timeout } = policy.healthCheck;
  let streak = 0;
  let failures = 0;
  for (;;) {
    const health = await ctx.traffic.checkColour(env, svc, colour, timeout, 'any');
    streak = health.ok ? streak + 1 : 0;
    failures += health.ok ? 0 : 1;
    if (streak >= attempts) return { done };
    if (failures >= attempts * 3)
      return {
        error: `${colour} was scaled back from 0 to ${replicas} but is not healthy (${health.detail})`,
      };
    await sleep(interval);
  }
}

/**
 * The Swarm half of a /rollback, or while the environment's Docker endpoint does not answer, why
 * it is still due (it stays recorded, and the next /rollback does it).
 */
async function swarmHalf(
  ctx: ReleaseContext,
  env: string,
  svc: string,
  swarmService: string,
  down?: string,
): Promise<string> {
  const why = down ?? (await ctx.dockerDown(env));
  if (why) return `${swarmService} not rolled back yet (${why}); run /rollback again once it answers`;
  return finishSwarmRollback(ctx, env, svc);
}

export interface ServiceRollbackReport {
  ok: boolean;
  text: string;
  trafficSwitchMs?: number;
}

/** The answer to a /rollback that stopped a release. */
const releaseAnswer = (r: Release): ServiceRollbackReport => ({
  ok: r.status === 'rolled_back' || r.status === 'cancelled',
  text:
    r.status === 'cancelled'
      ? `🚫 ${r.service} in ${r.environment}: release ${r.id} cancelled before it changed anything.`
      : `↩️ ${r.service} in ${r.environment}: release ${r.id} pre-empted. ${r.outcome ?? ''}`,
});

/**
 * /rollback of one service: pre-empts the release in flight if there is one; otherwise returns to
 * the colour that was live before the last completed release, and rolls the other colour's Swarm
 * service back to its previous spec.
 */
export async function rollBackService(
  ctx: ReleaseContext,
  job: RollbackJob,
  resumed = false,
): Promise<ServiceRollbackReport> {
  const { environment: env, service: svc } = job;
  const state = await ctx.states.get(env, svc);
  // Run again (its worker died, or its last attempt failed): finish the release rollback it began
  // (traffic may already be back, the lock freed), never go on to roll back the release before it.
  const interrupted = resumed
    ? (await ctx.store.active()).find(
        (r) => r.environment === env && r.service === svc && r.status === 'rolling_back',
      )
    : undefined;
  // Run again after the rollback it did was recorded (killed before answering): say so, and do
  // not go on to roll back the release before that one.
  const recorded =
    resumed && !interrupted && !state.inFlight
      ? (await ctx.store.history(env, svc, 1)).find(
          (r) =>
            TERMINAL.has(r.status) &&
            (r.rollback !== undefined || r.status === 'cancelled') &&
            (r.finishedAt ?? 0) >= job.requestedAt,
        )
      : undefined;
  if (recorded) {
    await finishRecordedRollback(ctx, recorded);
    return releaseAnswer(recorded);
  }
  if (state.inFlight || interrupted) {
    const opts = { trigger: job.trigger, requestedAt: job.requestedAt };
    const report = interrupted
      ? await finishInterruptedRollback(ctx, interrupted, opts)
      : await rollBackRelease(ctx, state.inFlight?.releaseId as string, job.reason, job.by, {
          ...opts,
          holdsStepLock: false,
        });
    return { ...releaseAnswer(report.release), trafficSwitchMs: report.trafficSwitchMs };
  }

  const def = ctx.config.environments[env]?.services[svc];
  const target = state.previous?.colour ?? state.lastGood.colour;
  if (!state.previous && state.weights[target] === 100) {
    // An earlier /rollback switched traffic and then died before rolling Swarm back: finish that.
    const pending = def ? await pendingSwarmRollback(ctx, env, svc) : undefined;
    if (def && pending) {
      const swarmDetail = await swarmHalf(ctx, env, svc, pending.swarmService);
      return {
        ok: true,
        text: `↩️ ${svc} in ${env}: traffic was already 100% on ${target}${state.lastGood.image ? ` (${state.lastGood.image})` : ''}; ${swarmDetail} (finishing a rollback that was interrupted).`,
      };
    }
    return {
      ok: true,
      text: `Nothing to roll back: ${svc} in ${env} has all traffic on ${target}${state.lastGood.image ? ` (${state.lastGood.image})` : ''} and no earlier release is recorded.`,
    };
  }
  if (!def) return { ok: false, text: `${svc} is not configured in ${env}.` };
  // Traffic moves without Docker, as it always could; a short ping spares each Swarm call its timeout.
  const dockerDown = await ctx.dockerDown(env);
  // A colour Swarm is still replacing (e.g. the rollback of a release that just failed) answers its
  // health check from the old task and then drops requests while the task is swapped: wait it out.
  const moving = dockerDown ? undefined : await swarmSettled(ctx, def[target].swarmService, env);
  if (moving) {
    return {
      ok: false,
      text: `⚠️ Not rolling back ${svc} in ${env}: Swarm is still changing ${target} (${moving}), so traffic stays where it is. Run /rollback again once it settles.`,
    };
  }
  // A colour scaled to 0 after the last release (afterRelease: scale-down) runs and is healthy first.
  const scaled = dockerDown ? {} : await scaleBackUp(ctx, env, svc, target, def[target].swarmService);
  if (scaled.error) {
    return {
      ok: false,
      text: `⚠️ Not rolling back ${svc} in ${env}: ${scaled.error}, so traffic stays where it is. Deploy a known good version instead.`,
    };
  }
  const health = await ctx.traffic.checkColour(env, svc, target, undefined, 'any');
  if (!health.ok) {
    return {
      ok: false,
      text: `⚠️ Not rolling back ${svc} in ${env}: ${target} is not healthy (${health.detail}), so traffic stays where it is. Deploy a known good version instead.`,
    };
  }
  const previous = state.previous;
  // Recorded before traffic moves, so a run killed after the switch can be finished by the next one.
  const rollsSwarmBack = previous !== undefined && state.lastGood.image !== undefined;
  if (rollsSwarmBack)
    await recordSwarmRollback(ctx, env, svc, {
      swarmService: def[other(target)].swarmService,
      image: state.lastGood.image as string,
    });
  try {
    await ctx.traffic.setWeights(
      env,
      svc,
      weightsFor(target, 100),
      (s) =>
        s.inFlight ? `release ${s.inFlight.releaseId} started meanwhile; run /rollback again` : undefined,
      (s) =>
        previous
          ? { ...s, live: target, lastGood: { colour: target, image: previous.image }, previous: undefined }
          : { ...s, live: target },
      { keepOnReloadFailure: true },
    );
  } catch (err) {
    if (err instanceof TrafficRefused) return { ok: false, text: `⚠️ ${err.message}` };
    return {
      ok: false,
      text: `🚨 Traffic for ${svc} in ${env} could NOT be switched: ${(err as Error).message}`,
    };
  }
  const trafficSwitchMs = ctx.now() - job.requestedAt;
  ctx.metrics.rollbackSwitch.observe(trafficSwitchMs / 1000);
  ctx.metrics.rollbacks.inc({ environment: env, trigger: job.trigger });

  failpoint('after:service-rollback-traffic');
  // The version taken out may not be promoted from here until it completes here again. After the
  // switch, off the fastest path; lost only if flightdeck dies in between.
  const out = versionOf(state.lastGood.image);
  if (out && ctx.trail && previous)
    await ctx.trail.rolledBack(env, svc, out, job.by, ctx.now(), versionOf(previous.image));
  if (previous)
    await ctx.dora
      ?.record(env, svc, {
        kind: 'rollback',
        id: `rollback:${job.requestedAt}:${previous.releaseId}`,
        at: ctx.now(),
        ...(out ? { version: out } : {}),
        by: job.by,
      })
      .catch((err: Error) => ctx.logger.warn({ err: err.message }, 'Could not record DORA event'));
  await ctx.homesChanged?.();
  const swarmDetail = rollsSwarmBack
    ? `; ${await swarmHalf(ctx, env, svc, def[other(target)].swarmService, dockerDown)}`
    : '';
  return {
    ok: true,
    trafficSwitchMs,
    text: `↩️ ${svc} in ${env}: ${scaled.done ? `${scaled.done}; ` : ''}traffic 100% on ${target}${previous?.image ? ` (${previous.image})` : ''} in ${(trafficSwitchMs / 1000).toFixed(2)} s${swarmDetail}.`,
  };
}
