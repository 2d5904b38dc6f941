import { isDeployer } from '../commands/authorise.js';
import { type ExecutionContext, type ExecutionResult, refused } from '../commands/execution.js';
import type { AlertActionCommand } from '../commands/schema.js';
import type { AlertmanagerClient } from '../integrations/alertmanager.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import { severityLabel } from '../observability/metrics.js';
import type { ReleaseContext } from '../releases/release-context.js';
import type { AlertStore } from './alert-store.js';
import type { AlertJobs } from './handle-alerts.js';
import { escapeMrkdwn } from './render-alert.js';
import { alertTarget } from './route-alert.js';

/** What alert buttons need besides the release engine. */
export interface AlertContext {
  alerts: AlertStore;
  outbox: Outbox;
  jobs: AlertJobs;
  alertmanager?: AlertmanagerClient;
}

const HOURS = { '1h': 1, '4h': 4, '24h': 24 } as const;

/** The buttons of an alert message: acknowledge, silence in Alertmanager, roll back its service. */
export async function alertAction(
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
    // The summary shows the acknowledgement first; the alerts' own records (one locked write each,
    // a second or more in a big storm) follow.
    await actx.outbox.alertGroup(g.id);
    for (const fp of g.fingerprints) {
      await actx.alerts.mutate(fp, (cur) =>
        cur && !cur.ack && cur.status === 'firing'
          ? { ...cur, ack: { by: ec.userId, name: ec.userName, at: now } }
          : undefined,
      );
    }
    return { text: `👀 Acknowledged all ${g.fingerprints.length} alerts of the storm.` };
  }
  const a = await actx.alerts.get(cmd.target);
  if (!a) return { text: 'That alert is no longer known.', outcome: 'refused' };
  // For Slack (replies, the rollback reason in the release message); the silence comment takes the raw name.
  const name = escapeMrkdwn(a.labels.alertname ?? 'alert');
  const rawName = a.labels.alertname ?? 'alert';
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
      ctx.metrics.alertAck.observe(
        { severity: severityLabel(a.labels.severity) },
        (now - a.firstSeen) / 1000,
      );
      // Pending escalations are dropped; a running one finds the ack and stops.
      await actx.jobs.cancelEscalations(a.fingerprint, a.firstSeen);
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
        comment: `Silenced from Slack by ${ec.userName} for ${cmd.duration ?? '1h'}: ${a.annotations.summary ?? rawName}`,
      });
      await actx.alerts.mutate(a.fingerprint, (cur) =>
        cur ? { ...cur, silences: [...cur.silences, { id, by: ec.userId, until }] } : undefined,
      );
      await actx.outbox.alert(a.fingerprint);
      return { text: `🔕 *${name}* silenced for ${cmd.duration ?? '1h'} (Alertmanager silence \`${id}\`).` };
    }
    case 'rollback': {
      const target = alertTarget(a.labels, ctx.config);
      if (!target) {
        return { text: `*${name}* does not name a configured service and environment.`, outcome: 'refused' };
      }
      const { environment, service } = target;
      if (!isDeployer(ec.userId, environment, ctx.config))
        return refused(`you are not a deployer for *${environment}*, so you cannot roll back there.`);
      await ctx.jobs.rollback({
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
}
