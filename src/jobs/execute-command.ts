import type { Queue } from 'bullmq';
import type { AlertStore } from '../alerts/alert-store.js';
import type { AuditOutcome } from '../audit/audit-log.js';
import type { Checklists } from '../checklists/checklist-service.js';
import { isDeployer, isLead } from '../commands/authorise.js';
import type {
  AlertActionCommand,
  ChecklistCommand,
  ParsedCommand,
  ReleaseActionCommand,
} from '../commands/schema.js';
import type { AlertmanagerClient } from '../integrations/alertmanager.js';
import { describeApply } from '../integrations/nginx.js';
import type { SlackReply } from '../integrations/slack/respond.js';
import { releaseLine } from '../releases/render-release.js';
import { renderTrafficStatus } from '../releases/render-traffic.js';
import type { Release, ServiceState } from '../releases/schema.js';
import { TERMINAL } from '../releases/schema.js';
import { TrafficRefused } from '../releases/traffic.js';
import { describeSplit, other, weightsFor } from '../releases/weights.js';
import { escalationJobId } from './alert-worker.js';
import { setPaused } from './pause-release.js';
import type { ReleaseContext } from './release-context.js';
import { requestRelease } from './request-release.js';
import type { RollbackJob } from './rollback-jobs.js';
import type { Outbox } from './slack-outbox.js';

/** What alert buttons need besides the release engine. */
export interface AlertContext {
  alerts: AlertStore;
  outbox: Outbox;
  alertQueue: Queue;
  alertmanager?: AlertmanagerClient;
}

export interface ExecutionContext {
  userId: string;
  userName: string;
  requestId: string;
  receivedAt: number;
  reply: { responseUrl: string; channelId: string; userId: string };
}

export type ExecutionResult = SlackReply & { outcome?: AuditOutcome };

export type CommandExecutor = (cmd: ParsedCommand, ec: ExecutionContext) => Promise<ExecutionResult>;

const refused = (text: string): ExecutionResult => ({
  text: `:no_entry: Not done: ${text}`,
  outcome: 'refused',
});

/** What each command does in a worker: the release engine behind /deploy, /traffic and /rollback. */
/** What checklist commands need. */
export interface ChecklistContext {
  checklists: Checklists;
  outbox: Outbox;
  queue: Queue;
}

export function createExecutor(
  ctx: ReleaseContext,
  actx: AlertContext,
  cctx: ChecklistContext,
): CommandExecutor {
  return async (cmd, ec) => {
    switch (cmd.command) {
      case 'deploy':
        switch (cmd.action) {
          case 'release':
            return deploy(ctx, cmd.environment, cmd.target, cmd.version, ec);
          case 'status':
            return deployStatus(ctx);
          case 'history':
            return deployHistory(ctx, cmd.environment, cmd.service);
          case 'cancel':
            return cancel(ctx, cmd.environment, cmd.service, ec);
          case 'promote':
            return promoteService(ctx, cmd.environment, cmd.service);
          case 'help':
            return { text: 'help' };
        }
        break;
      case 'traffic':
        if (cmd.action === 'set')
          return setTraffic(ctx, cmd.environment, cmd.service, cmd.percent, cmd.colour);
        if (cmd.action === 'status') return trafficStatus(ctx, cmd.environment);
        return { text: 'help' };
      case 'rollback':
        if (cmd.action === 'help') return { text: 'help' };
        return rollback(ctx, cmd.environment, cmd.target, ec, cmd.action === 'confirm');
      case 'release':
        return releaseAction(ctx, cmd, ec);
      case 'alert':
        return alertAction(ctx, actx, cmd, ec);
      case 'checklist':
        return checklist(ctx, cctx, cmd, ec);
    }
    return { text: 'Nothing to do.' };
  };
}

async function deploy(
  ctx: ReleaseContext,
  env: string,
  target: string,
  version: string,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const services = target === 'all' ? Object.keys(ctx.config.environments[env]?.services ?? {}) : [target];
  const result = await requestRelease(ctx, {
    environment: env,
    services,
    version,
    requestedBy: { id: ec.userId, name: ec.userName },
    requestId: ec.requestId,
  });
  const channel = ctx.config.environments[env]?.channel ?? ctx.config.channels.releases;
  const lines = result.started.map((r) =>
    r.status === 'awaiting_approval'
      ? `🟡 \`${r.id}\`: ${r.service} ${version} to ${env} waits for a lead other than you to approve in <#${channel}>.`
      : `🚀 \`${r.id}\`: releasing ${r.service} ${version} to ${env} on ${r.toColour}; progress in <#${channel}>.`,
  );
  for (const x of result.refused) lines.push(`:no_entry: ${x.reason}`);
  return { text: lines.join('\n'), outcome: result.started.length === 0 ? 'refused' : 'done' };
}

async function deployStatus(ctx: ReleaseContext): Promise<ExecutionResult> {
  const [active, recent] = await Promise.all([ctx.store.active(), ctx.store.recent(10)]);
  const finished = recent.filter((r) => TERMINAL.has(r.status)).slice(0, 5);
  const text = [
    `*In flight (${active.length})*`,
    ...(active.length ? active.map(releaseLine) : ['none']),
    '*Last finished*',
    ...(finished.length ? finished.map(releaseLine) : ['none yet']),
  ].join('\n');
  return { text };
}

async function deployHistory(ctx: ReleaseContext, env: string, svc: string): Promise<ExecutionResult> {
  const list = await ctx.store.history(env, svc, 10);
  const state = await ctx.states.get(env, svc);
  return {
    text: [
      `*${svc} in ${env}* — live ${state.live}${state.lastGood.image ? ` (${state.lastGood.image})` : ''}`,
      ...(list.length ? list.map(releaseLine) : ['no releases yet']),
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
  await enqueueRollback(ctx, {
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
  const job = await ctx.releaseQueue.getJob(r.id);
  if (job && (await job.isDelayed())) await job.promote();
  return { text: `⏩ Promoted \`${r.id}\`: skipping the rest of "${step.label}"; the gate still runs.` };
}

async function setTraffic(
  ctx: ReleaseContext,
  env: string,
  svc: string,
  percent: number,
  colour?: 'blue' | 'green',
): Promise<ExecutionResult> {
  const state = await ctx.states.get(env, svc);
  const busy = guardInFlight(ctx, state);
  if (busy) return refused(busy);
  const toColour = colour ?? other(state.live);
  const weights = weightsFor(toColour, percent);
  const unhealthy = await ctx.traffic.unhealthyServing(env, svc, weights);
  if (unhealthy.length > 0)
    return refused(`traffic would go to an unhealthy colour: ${unhealthy.join('; ')}`);
  try {
    const { apply } = await ctx.traffic.setWeights(env, svc, weights, (s) => guardInFlight(ctx, s));
    return {
      text: `🔀 ${svc} in ${env}: ${describeSplit(weights)} (nginx ${describeApply(apply)})`,
      responseType: 'in_channel',
    };
  } catch (err) {
    if (err instanceof TrafficRefused) return refused(err.message);
    return {
      text: `❌ Traffic for ${svc} in ${env} unchanged: ${(err as Error).message}`,
      outcome: 'failed',
    };
  }
}

/** /traffic is refused while a release drives the service, unless that release is paused. */
function guardInFlight(_ctx: ReleaseContext, s: ServiceState): string | undefined {
  if (!s.inFlight) return undefined;
  if (s.inFlight.what.startsWith('paused ')) return undefined;
  return `release \`${s.inFlight.releaseId}\` (${s.inFlight.what} by <@${s.inFlight.by}>) is in flight; pause it first or wait.`;
}

async function trafficStatus(ctx: ReleaseContext, only?: string): Promise<ExecutionResult> {
  const pairs = ctx.traffic.pairs().filter(([env]) => !only || env === only);
  const states = await ctx.states.getMany(pairs);
  const map = new Map(pairs.map(([e, s], i) => [`${e}/${s}`, states[i] as ServiceState]));
  return { text: renderTrafficStatus(ctx.config, map, only) };
}

async function rollback(
  ctx: ReleaseContext,
  env: string,
  target: string,
  ec: ExecutionContext,
  confirmed: boolean,
): Promise<ExecutionResult> {
  const services = target === 'all' ? Object.keys(ctx.config.environments[env]?.services ?? {}) : [target];
  if (ctx.config.environments[env]?.requireApproval && !confirmed) {
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
  for (const service of services) {
    await enqueueRollback(ctx, {
      environment: env,
      service,
      reason: `/rollback by <@${ec.userId}>`,
      by: ec.userId,
      trigger: 'command',
      requestedAt: ec.receivedAt,
      reply: ec.reply,
    });
  }
  return { text: `↩️ Rolling back ${services.join(', ')} in ${env}…` };
}

export async function enqueueRollback(ctx: ReleaseContext, job: RollbackJob): Promise<void> {
  await ctx.rollbackQueue.add('rollback', job);
}

async function releaseAction(
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
    const updated = await ctx.store.update(r.id, (rel) => {
      if (rel.status !== 'awaiting_approval') return undefined;
      if (cmd.action === 'reject') {
        rel.status = 'rejected';
        rel.finishedAt = ctx.now();
        rel.outcome = `Rejected by <@${ec.userId}>; nothing was changed.`;
      } else {
        rel.status = 'running';
        rel.approvedBy = { id: ec.userId, name: ec.userName };
        const first = rel.steps[0];
        if (first) first.status = 'running';
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
    if (cmd.action === 'reject') {
      await ctx.states.unlock(r.environment, r.service, r.id);
      ctx.metrics.releases.inc({ environment: r.environment, outcome: 'rejected' });
    } else {
      const job = await ctx.releaseQueue.getJob(r.id);
      if (job && (await job.isDelayed())) await job.promote();
    }
    await ctx.publish(r.id);
    return { text: `${cmd.action === 'approve' ? '✅ Approved' : '🚫 Rejected'} \`${r.id}\`.` };
  }
  if (!isDeployer(ec.userId, r.environment, ctx.config))
    return refused(`you are not a deployer for *${r.environment}*.`);
  switch (cmd.action) {
    case 'promote':
      return promote(ctx, r);
    case 'abort':
      if (TERMINAL.has(r.status))
        return { text: `\`${r.id}\` already ended (${r.status.replace('_', ' ')}).`, outcome: 'refused' };
      await enqueueRollback(ctx, {
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

const HOURS = { '1h': 1, '4h': 4, '24h': 24 } as const;

async function alertAction(
  ctx: ReleaseContext,
  actx: AlertContext,
  cmd: AlertActionCommand,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const now = ctx.now();
  if (cmd.action === 'ack-group') {
    const g = await actx.alerts.getGroup(cmd.target);
    if (!g) return { text: 'That alert storm is no longer known.', outcome: 'refused' };
    await actx.alerts.mutateGroup(g.id, (cur) =>
      cur && !cur.ack ? { ...cur, ack: { by: ec.userId, name: ec.userName, at: now } } : undefined,
    );
    for (const fp of g.fingerprints) {
      await actx.alerts.mutate(fp, (cur) =>
        cur && !cur.ack && cur.status === 'firing'
          ? { ...cur, ack: { by: ec.userId, name: ec.userName, at: now } }
          : undefined,
      );
    }
    await actx.outbox.alertGroup(g.id);
    return { text: `👀 Acknowledged all ${g.fingerprints.length} alerts of the storm.` };
  }
  const a = await actx.alerts.get(cmd.target);
  if (!a) return { text: 'That alert is no longer known.', outcome: 'refused' };
  const name = a.labels.alertname ?? 'alert';
  switch (cmd.action) {
    case 'ack': {
      let acked = false;
      const r = await actx.alerts.mutate(a.fingerprint, (cur) => {
        if (!cur || cur.ack) return undefined;
        acked = true;
        return { ...cur, ack: { by: ec.userId, name: ec.userName, at: now } };
      });
      if (!acked)
        return { text: `*${name}* was already acknowledged by <@${r?.ack?.by}>.`, outcome: 'refused' };
      ctx.metrics.alertAck.observe({ severity: a.labels.severity ?? 'none' }, (now - a.firstSeen) / 1000);
      // Pending escalations are dropped; a running one finds the ack and stops.
      for (let n = 1; n <= ctx.config.alerts.escalation.maxTimes; n++) {
        await actx.alertQueue.remove(escalationJobId(a.fingerprint, a.firstSeen, n)).catch(() => {});
      }
      await actx.outbox.alert(a.fingerprint);
      return { text: `👀 You acknowledged *${name}*.` };
    }
    case 'silence': {
      if (!actx.alertmanager)
        return { text: 'Silences need `alertmanager.url` in the configuration.', outcome: 'failed' };
      const hours = HOURS[cmd.duration ?? '1h'];
      const until = now + hours * 3_600_000;
      const id = await actx.alertmanager.createSilence({
        matchers: Object.entries(a.labels).map(([k, v]) => ({
          name: k,
          value: v,
          isRegex: false,
          isEqual: true,
        })),
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(until).toISOString(),
        createdBy: `${ec.userName} (${ec.userId}) via flightdeck`,
        comment: `Silenced from Slack by ${ec.userName} for ${cmd.duration ?? '1h'}: ${a.annotations.summary ?? name}`,
      });
      await actx.alerts.mutate(a.fingerprint, (cur) =>
        cur ? { ...cur, silences: [...cur.silences, { id, by: ec.userId, until }] } : undefined,
      );
      await actx.outbox.alert(a.fingerprint);
      return { text: `🔕 *${name}* silenced for ${cmd.duration ?? '1h'} (Alertmanager silence \`${id}\`).` };
    }
    case 'rollback': {
      const environment = a.labels[ctx.config.alerts.environmentLabel];
      const service = a.labels[ctx.config.alerts.serviceLabel];
      if (!environment || !service || !ctx.config.environments[environment]?.services[service]) {
        return { text: `*${name}* does not name a configured service and environment.`, outcome: 'refused' };
      }
      if (!isDeployer(ec.userId, environment, ctx.config))
        return refused(`you are not a deployer for *${environment}*, so you cannot roll back there.`);
      await enqueueRollback(ctx, {
        environment,
        service,
        reason: `alert ${name}, by <@${ec.userId}>`,
        by: ec.userId,
        trigger: 'alert',
        requestedAt: ec.receivedAt,
        reply: ec.reply,
      });
      await actx.alerts.mutate(a.fingerprint, (cur) =>
        cur
          ? {
              ...cur,
              releaseAction: `↩️ Rollback of ${service} in ${environment} requested by <@${ec.userId}>`,
            }
          : undefined,
      );
      await actx.outbox.alert(a.fingerprint);
      return { text: `↩️ Rolling back ${service} in ${environment}…` };
    }
  }
  return { text: 'Nothing to do.' };
}

async function checklist(
  ctx: ReleaseContext,
  cctx: ChecklistContext,
  cmd: ChecklistCommand,
  ec: ExecutionContext,
): Promise<ExecutionResult> {
  const { checklists, outbox } = cctx;
  switch (cmd.action) {
    case 'help':
      return { text: 'help' };
    case 'status':
      return { text: await checklists.status() };
    case 'start': {
      await checklists.store.setRollout({
        startDate: cmd.date,
        setBy: ec.userId,
        setAt: ctx.now(),
        overrides: {},
      });
      return {
        text: `🗓️ The rollout starts on ${cmd.date} (day 1 of 28), set by <@${ec.userId}>.\n${await checklists.status()}`,
        responseType: 'in_channel',
      };
    }
    case 'override': {
      if (!(await checklists.rollout())) return { text: 'No rollout has started yet.', outcome: 'refused' };
      if (!(await checklists.store.rollout())) {
        // The start date came from the config: keep it, now with the override.
        const r = await checklists.rollout();
        if (r) await checklists.store.setRollout(r);
      }
      const key = cmd.gate === 'pre' ? 'pre' : `phase-${cmd.gate.phase}`;
      await checklists.store.override(key, ec.userId, cmd.reason);
      const what =
        cmd.gate === 'pre'
          ? 'the production gate (pre-deployment checklist)'
          : `phase ${cmd.gate.phase}'s checklist`;
      return { text: `🔓 <@${ec.userId}> overrode ${what}: ${cmd.reason}`, responseType: 'in_channel' };
    }
    case 'show':
    case 'recheck': {
      const target = await checklists.resolve(cmd.which);
      if ('error' in target) return { text: target.error, outcome: 'refused' };
      if (cmd.action === 'show') await outbox.checklistPost(target.id, ec.reply.channelId);
      await cctx.queue.add('autocheck', { checklistId: target.id });
      const title = checklists.template.checklists[target.id]?.title ?? target.id;
      return {
        text:
          cmd.action === 'show'
            ? `📋 ${title} is in this channel; tick items there.`
            : `🤖 Re-checking the automatic items of ${title}…`,
      };
    }
    case 'tick': {
      const applied = await checklists.tick(cmd.checklistId, cmd.changes, {
        id: ec.userId,
        name: ec.userName,
      });
      if (applied.length === 0) return { text: 'Nothing changed.', outcome: 'refused' };
      await outbox.checklistRefresh(cmd.checklistId);
      return { text: applied.map((a) => `${a.ticked ? '☑️ Ticked' : '⬜ Unticked'}: ${a.text}`).join('\n') };
    }
  }
}
