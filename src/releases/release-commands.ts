import { isDeployer, isLead } from '../commands/authorise.js';
import { type ExecutionContext, type ExecutionResult, refused } from '../commands/execution.js';
import type { DeployCommand, ReleaseActionCommand, RollbackCommand } from '../commands/schema.js';
import { startNextInBatch } from './after-release.js';
import { doraReport, environmentDora } from './dora-stats.js';
import { freezeLines } from './freezes.js';
import { setPaused } from './pause-release.js';
import { trailLine } from './promotion.js';
import type { ReleaseContext } from './release-context.js';
import { cancelRestOfBatch } from './release-machine.js';
import { releaseLine } from './render-release.js';
import { requestRelease } from './request-release.js';
import { rollbackJobs } from './rollback-lane.js';
import { type Release, TERMINAL } from './schema.js';

/** /deploy in a worker: start, inspect, cancel or promote releases (the listener has parsed and authorised it). */
export async function deployCommand(
  ctx: ReleaseContext,
  cmd: Exclude<DeployCommand, { action: 'help' }>,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  switch (cmd.action) {
    case 'release':
      return deploy(ctx, cmd.environment, cmd.target, cmd.version, ec, cmd.override);
    case 'status':
      return deployStatus(ctx);
    case 'stats':
      return deployStats(ctx, cmd.environment, cmd.days);
    case 'history':
      return deployHistory(ctx, cmd.environment, cmd.service);
    case 'cancel':
      return cancel(ctx, cmd.environment, cmd.service, ec);
    case 'promote':
      return promoteService(ctx, cmd.environment, cmd.service);
  }
}

/** /rollback (and its confirmation button): every named service goes back to its last good colour. */
export function rollbackCommand(
  ctx: ReleaseContext,
  cmd: Exclude<RollbackCommand, { action: 'help' }>,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  return rollback(ctx, cmd, ec);
}

async function deploy(
  ctx: ReleaseContext,
  env: string,
  target: string,
  version: string,
  ec: ExecutionContext,
  override?: string,
): Promise<ExecutionResult> {
  const services = target === 'all' ? Object.keys(ctx.config.environments[env]?.services ?? {}) : [target];
  const result = await requestRelease(ctx, {
    environment: env,
    services,
    version,
    requestedBy: { id: ec.userId, name: ec.userName },
    requestId: ec.requestId,
    override,
  });
  const channel = ctx.config.environments[env]?.channel ?? ctx.config.channels.releases;
  const lines = result.started.map((r) =>
    r.status === 'awaiting_approval'
      ? `🟡 \`${r.id}\`: ${r.service} ${version} to ${env} waits for a lead other than you to approve in <#${channel}>.`
      : `🚀 \`${r.id}\`: releasing ${r.service} ${version} to ${env} on ${r.toColour}; progress in <#${channel}>.`,
  );
  for (const x of result.refused) lines.push(`:no_entry: ${x.reason}`);
  // A batch: one message in the channel for all of it, each release's own in its thread.
  const batch = result.started.find((r) => r.batch)?.batch;
  if (batch && result.started.length > 1)
    lines.unshift(
      `📋 \`${batch.id}\`: ${result.started.length} releases of ${version} to ${env}; the batch's progress is one message in <#${channel}>, each release's steps in its thread.`,
    );
  return { text: lines.join('\n'), outcome: result.started.length === 0 ? 'refused' : 'done' };
}

async function deployStatus(ctx: ReleaseContext): Promise<ExecutionResult> {
  const [active, recent] = await Promise.all([ctx.store.active(), ctx.store.recent(10)]);
  const finished = recent.filter((r) => TERMINAL.has(r.status)).slice(0, 5);
  const freezes = freezeLines(ctx.config, ctx.now());
  const text = [
    ...(freezes.length > 0 ? ['*Freezes*', ...freezes] : []),
    `*In flight (${active.length})*`,
    ...(active.length ? active.map(releaseLine) : ['none']),
    '*Last finished*',
    ...(finished.length ? finished.map(releaseLine) : ['none yet']),
  ].join('\n');
  return { text };
}

async function deployStats(ctx: ReleaseContext, env: string, days: number): Promise<ExecutionResult> {
  if (!ctx.dora) return { text: 'DORA figures are not kept by this flightdeck.', outcome: 'refused' };
  const figures = await environmentDora(ctx.config, ctx.dora, env, days, ctx.now());
  return { text: doraReport(figures, ctx.config.dora.failureWindow) };
}

async function deployHistory(ctx: ReleaseContext, env: string, svc: string): Promise<ExecutionResult> {
  const list = await ctx.store.history(env, svc, 10);
  const state = await ctx.states.get(env, svc);
  // Each version's way through the pipeline, read once per version.
  const versions = [...new Set(list.map((r) => r.version))];
  const trails = new Map(
    await Promise.all(
      versions.map(async (v) => [v, ctx.trail ? await ctx.trail.trail(svc, v) : {}] as const),
    ),
  );
  const now = ctx.now();
  const line = (r: Release) => {
    const t = trails.get(r.version) ?? {};
    const trail = Object.keys(t).length > 0 ? `\n    ${trailLine(ctx.config.pipeline, t, now)}` : '';
    return `${releaseLine(r)}${r.override ? ` · 🔓 overridden by <@${r.override.by}>: ${r.override.reason}` : ''}${trail}`;
  };
  return {
    text: [
      `*${svc} in ${env}* — live ${state.live}${state.lastGood.image ? ` (${state.lastGood.image})` : ''}`,
      ...(list.length ? list.map(line) : ['no releases yet']),
    ].join('\n'),
  };
}

async function inFlight(ctx: ReleaseContext, env: string, svc: string): Promise<Release | undefined> {
  const state = await ctx.states.get(env, svc);
  if (!state.inFlight) return undefined;
  const r = await ctx.store.get(state.inFlight.releaseId);
  return r && !TERMINAL.has(r.status) ? r : undefined;
}

async function cancel(
  ctx: ReleaseContext,
  env: string,
  svc: string,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const r = await inFlight(ctx, env, svc);
  if (!r) return { text: `No release of ${svc} is in flight in ${env}.`, outcome: 'refused' };
  await ctx.jobs.rollback({
    environment: env,
    service: svc,
    reason: `cancelled by <@${ec.userId}>`,
    by: ec.userId,
    trigger: 'cancel',
    requestedAt: ec.receivedAt,
    reply: ec.reply,
  });
  return { text: `↩️ Cancelling \`${r.id}\` and rolling ${svc} back to ${r.fromColour}…` };
}

async function promoteService(ctx: ReleaseContext, env: string, svc: string): Promise<ExecutionResult> {
  const r = await inFlight(ctx, env, svc);
  if (!r) return { text: `No release of ${svc} is in flight in ${env}.`, outcome: 'refused' };
  return promote(ctx, r);
}

/** Skips the rest of the current soak only: one step at a time, gates still run. */
async function promote(ctx: ReleaseContext, r: Release): Promise<ExecutionResult> {
  const step = r.steps[r.stepIndex];
  if (r.status !== 'running' || step?.kind !== 'soak' || step.status !== 'waiting') {
    return {
      text: `Nothing to promote: \`${r.id}\` is ${r.status === 'running' ? `at "${step?.label}"` : r.status.replace('_', ' ')}, not soaking.`,
      outcome: 'refused',
    };
  }
  await ctx.store.update(r.id, (rel) => {
    const s = rel.steps[rel.stepIndex];
    if (s?.kind !== 'soak') return undefined;
    s.due = ctx.now();
    return rel;
  });
  await ctx.jobs.wake(r.id);
  return { text: `⏩ Promoted \`${r.id}\`: skipping the rest of "${step.label}"; the gate still runs.` };
}

async function rollback(
  ctx: ReleaseContext,
  cmd: Exclude<RollbackCommand, { action: 'help' }>,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const { environment: env, target } = cmd;
  if (!ctx.config.environments[env]) return refused(`*${env}* is not a configured environment.`);
  const jobs = rollbackJobs(cmd, ctx.config, ec);
  if (!jobs) {
    return {
      text: `Roll back ${target} in ${env}?`,
      blocks: [
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: `⚠️ Roll back *${target}* in *${env}*? All traffic goes to the last good colour at once.`,
          },
        },
        {
          type: 'actions',
          elements: [
            {
              type: 'button',
              style: 'danger',
              text: { type: 'plain_text', text: 'Confirm rollback' },
              action_id: 'rollback_confirm',
              value: `${env}|${target}`,
            },
          ],
        },
      ],
    };
  }
  for (const job of jobs) await ctx.jobs.rollback(job);
  return { text: `↩️ Rolling back ${jobs.map((j) => j.service).join(', ')} in ${env}…` };
}

/** The buttons of a release message: who may press which is checked against that release. */
export async function releaseAction(
  ctx: ReleaseContext,
  cmd: ReleaseActionCommand,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const r = await ctx.store.get(cmd.releaseId);
  if (!r) return { text: `Release \`${cmd.releaseId}\` no longer exists.`, outcome: 'refused' };
  if (cmd.action === 'approve' || cmd.action === 'reject') {
    if (!isLead(ec.userId, ctx.config)) return refused(`only a lead can ${cmd.action} \`${r.id}\`.`);
    if (ec.userId === r.requestedBy.id)
      return refused(`you requested \`${r.id}\`; a lead other than you must ${cmd.action} it.`);
    // In a sequential batch an approved release waits (queued) until the one before it completed.
    const earlier = r.batch?.after ? await ctx.store.get(r.batch.after) : undefined;
    const waits = earlier !== undefined && earlier.status !== 'completed';
    const updated = await ctx.store.update(r.id, (rel) => {
      if (rel.status !== 'awaiting_approval') return undefined;
      if (cmd.action === 'reject') {
        rel.status = 'rejected';
        rel.finishedAt = ctx.now();
        rel.outcome = `Rejected by <@${ec.userId}>; nothing was changed.`;
      } else {
        rel.status = waits ? 'queued' : 'running';
        rel.approvedBy = { id: ec.userId, name: ec.userName };
        const first = rel.steps[0];
        if (first && !waits) first.status = 'running';
      }
      rel.events.push({
        at: ctx.now(),
        text: `${cmd.action === 'approve' ? 'Approved' : 'Rejected'} by <@${ec.userId}>`,
      });
      return rel;
    });
    if (
      updated.status === 'awaiting_approval' ||
      (cmd.action === 'approve' && updated.approvedBy?.id !== ec.userId)
    ) {
      return {
        text: `\`${r.id}\` is ${updated.status.replace('_', ' ')}; nothing to ${cmd.action}.`,
        outcome: 'refused',
      };
    }
    let after = '';
    if (cmd.action === 'reject') {
      await ctx.states.unlock(r.environment, r.service, r.id);
      ctx.metrics.releases.inc({ environment: r.environment, outcome: 'rejected' });
      await cancelRestOfBatch(ctx, updated, `${r.service} rejected`);
    } else if (updated.status === 'queued' && earlier) {
      // The earlier release may have completed meanwhile, while this one still awaited approval
      // (so it did not start it): looked at again after this write, one of the two starts it.
      if ((await ctx.store.get(earlier.id))?.status === 'completed') await startNextInBatch(ctx, r.id);
      else after = ` It starts once \`${earlier.id}\` (${earlier.service}) has completed.`;
    } else {
      await ctx.jobs.wake(r.id);
    }
    await ctx.publish(r.id);
    return { text: `${cmd.action === 'approve' ? '✅ Approved' : '🚫 Rejected'} \`${r.id}\`.${after}` };
  }
  if (!isDeployer(ec.userId, r.environment, ctx.config))
    return refused(`you are not a deployer for *${r.environment}*.`);
  switch (cmd.action) {
    case 'promote':
      return promote(ctx, r);
    case 'abort':
      if (TERMINAL.has(r.status))
        return { text: `\`${r.id}\` already ended (${r.status.replace('_', ' ')}).`, outcome: 'refused' };
      await ctx.jobs.rollback({
        environment: r.environment,
        service: r.service,
        reason: `aborted by <@${ec.userId}>`,
        by: ec.userId,
        trigger: 'cancel',
        requestedAt: ec.receivedAt,
        reply: ec.reply,
      });
      return { text: `↩️ Aborting \`${r.id}\`: traffic goes back to ${r.fromColour}.` };
    case 'pause':
    case 'resume': {
      const pause = cmd.action === 'pause';
      const updated = await setPaused(ctx, r.id, pause, `${pause ? 'Paused' : 'Resumed'} by <@${ec.userId}>`);
      if (!updated) {
        return {
          text: `\`${r.id}\` is ${r.status.replace('_', ' ')}; cannot ${cmd.action}.`,
          outcome: 'refused',
        };
      }
      return { text: `${pause ? '⏸️ Paused' : '▶️ Resumed'} \`${r.id}\`.` };
    }
  }
  return { text: 'Nothing to do.' };
}
