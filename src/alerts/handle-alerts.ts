import { createHash } from 'node:crypto';
import type { FlightdeckConfig } from '../config/schema.js';
import type { AlertmanagerClient } from '../integrations/alertmanager.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import type { Logger } from '../observability/logger.js';
import { type Metrics, severityLabel } from '../observability/metrics.js';
import { setPaused } from '../releases/pause-release.js';
import type { ReleaseContext } from '../releases/release-context.js';
import { TERMINAL } from '../releases/schema.js';
import type { AlertStore } from './alert-store.js';
import {
  applyNotification,
  type EscalateJob,
  firingCritical,
  summarise,
  withMembers,
  withoutMembers,
} from './apply-notification.js';
import { escapeMrkdwn } from './render-alert.js';
import { alertTarget, isCritical, mentions, routeAlert } from './route-alert.js';
import type { AlertmanagerWebhook, AlertRecord } from './schema.js';

/** The queue as alert handling sees it. */
export interface AlertJobs {
  /** Escalation `n` of one firing episode, after `delayMs`; once per episode and `n`. */
  escalate(job: EscalateJob, delayMs: number): Promise<void>;
  /** Drops the pending escalations of an episode (a running one finds the ack and stops). */
  cancelEscalations(fingerprint: string, firstSeen: number): Promise<void>;
}

export interface AlertHandlerDeps {
  config: FlightdeckConfig;
  alerts: AlertStore;
  outbox: Outbox;
  jobs: AlertJobs;
  release: ReleaseContext;
  alertmanager?: AlertmanagerClient;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}

const STORM_WINDOW_MS = 1_500;

/**
 * What the alert queue's jobs do: a webhook notification becomes alert records and Slack messages
 * (or a storm summary), an unacknowledged critical alert escalates, and open alerts Alertmanager has
 * dropped are resolved. A critical alert about a service mid-release pauses or rolls back that release.
 */
export function createAlertHandlers(deps: AlertHandlerDeps) {
  const now = deps.now ?? Date.now;

  const onWebhook = async (payload: AlertmanagerWebhook) => {
    // A group becomes a storm once it has carried more alerts than `summariseAbove`, however
    // Alertmanager split them into notifications.
    const gid = createHash('sha256').update(payload.groupKey).digest('hex').slice(0, 16);
    const carried = await deps.alerts.noteGroupMembers(
      gid,
      payload.alerts.map((a) => a.fingerprint),
    );
    const storm = carried > deps.config.alerts.summariseAbove;
    const groupId = storm ? gid : undefined;
    const groupChannel = routeAlert({ ...payload.commonLabels, ...payload.groupLabels }, deps.config);
    const touched: AlertRecord[] = [];
    if (storm && !(await deps.alerts.getGroup(gid))) {
      // Alerts of this group still waiting for their own message join the summary instead.
      const inPayload = new Set(payload.alerts.map((a) => a.fingerprint));
      for (const fp of await deps.alerts.groupMembers(gid)) {
        if (inPayload.has(fp)) continue;
        const absorbed = await deps.alerts.mutate(fp, (cur) =>
          cur && !cur.message && !cur.groupId ? { ...cur, groupId: gid, channel: groupChannel } : undefined,
        );
        if (absorbed?.groupId === gid) touched.push(absorbed);
      }
    }
    let listed = new Set<string>();
    if (groupId) {
      // The summary names the storm's alerts, so it is written and queued before their records: those
      // are one locked write each (a second or more for a thousand alerts), the summary one write.
      // An alert already shown on its own keeps its message (the same rule as in the records below).
      const known = new Map(
        (await deps.alerts.many(payload.alerts.map((a) => a.fingerprint))).map((r) => [r.fingerprint, r]),
      );
      const members = payload.alerts.map((a) => {
        const cur = known.get(a.fingerprint);
        return { ...a, groupId: cur && !cur.groupId && cur.message ? undefined : groupId };
      });
      listed = new Set(members.filter((m) => m.groupId === groupId).map((m) => m.fingerprint));
      await deps.alerts.mutateGroup(groupId, (cur) =>
        summarise(cur, groupId, payload, groupChannel, [...touched, ...members], now()),
      );
      await deps.outbox.alertGroup(groupId);
    }
    for (const a of payload.alerts) {
      deps.metrics.alertsReceived.inc({ severity: severityLabel(a.labels.severity), status: a.status });
      let newEpisode = false;
      const record = await deps.alerts.mutate(a.fingerprint, (cur) => {
        // An alert already shown on its own keeps its message even if it later arrives in a storm.
        const gid = cur && !cur.groupId && cur.message ? undefined : (groupId ?? cur?.groupId);
        const r = applyNotification(cur, a, {
          now: now(),
          channel: gid ? groupChannel : routeAlert(a.labels, deps.config),
          externalURL: payload.externalURL,
          groupId: gid,
        });
        newEpisode = r.newEpisode;
        return r.next;
      });
      if (!record) continue;
      touched.push(record);
      // A new alert waits a moment before its own message, in case its group becomes a storm.
      if (!record.groupId) await deps.outbox.alert(record.fingerprint, newEpisode ? STORM_WINDOW_MS : 0);
      if (newEpisode && record.status === 'firing' && isCritical(record.labels)) {
        await scheduleEscalation(record, 1);
        await actOnRelease(record);
      }
    }
    if (groupId) {
      // Named in the summary, but its own message was posted meanwhile: it stays there alone.
      const own = new Set(
        touched.filter((r) => listed.has(r.fingerprint) && r.groupId !== groupId).map((r) => r.fingerprint),
      );
      if (own.size > 0) {
        await deps.alerts.mutateGroup(groupId, (cur) => (cur ? withoutMembers(cur, own, now()) : undefined));
        await deps.outbox.alertGroup(groupId);
      }
    }
  };

  const scheduleEscalation = async (record: AlertRecord, n: number) => {
    const esc = deps.config.alerts.escalation;
    if (n > esc.maxTimes) return;
    await deps.jobs.escalate(
      { fingerprint: record.fingerprint, firstSeen: record.firstSeen, n },
      n === 1 ? esc.after : esc.repeat,
    );
  };

  const onEscalate = async (data: EscalateJob) => {
    const current = await deps.alerts.get(data.fingerprint);
    // In a storm the group escalates once, not every critical alert in it.
    if (
      current?.groupId &&
      current.firstSeen === data.firstSeen &&
      current.status === 'firing' &&
      !current.ack
    ) {
      return escalateGroup(current, data.n);
    }
    let escalated = false;
    const record = await deps.alerts.mutate(data.fingerprint, (cur) => {
      if (!cur || cur.firstSeen !== data.firstSeen || cur.status !== 'firing' || cur.ack) return undefined;
      if (cur.escalations >= data.n) return undefined; // already done (a retried job)
      escalated = true;
      return { ...cur, escalations: data.n };
    });
    if (!escalated || !record) return;
    deps.metrics.alertEscalations.inc({ severity: severityLabel(record.labels.severity) });
    const esc = deps.config.alerts.escalation;
    const who = esc.notify.length > 0 ? `${mentions(esc.notify)} ` : '';
    const minutes = Math.round((now() - record.firstSeen) / 60_000);
    await deps.outbox.alertThread(
      record.fingerprint,
      `📣 Escalation ${data.n}/${esc.maxTimes}: ${who}*${escapeMrkdwn(record.labels.alertname ?? 'alert')}* has been firing for ${minutes} min and nobody has acknowledged it.`,
      `${record.fingerprint}-${record.firstSeen}-${data.n}`,
    );
    if (!record.groupId) await deps.outbox.alert(record.fingerprint);
    await scheduleEscalation(record, data.n + 1);
  };

  const escalateGroup = async (record: AlertRecord, n: number) => {
    const gid = record.groupId as string;
    let escalated = false;
    const g = await deps.alerts.mutateGroup(gid, (cur) => {
      if (!cur || cur.ack || firingCritical(cur) === 0 || cur.escalations >= n) return undefined;
      escalated = true;
      return { ...cur, escalations: n };
    });
    if (escalated && g) {
      deps.metrics.alertEscalations.inc({ severity: 'critical' });
      const esc = deps.config.alerts.escalation;
      const who = esc.notify.length > 0 ? `${mentions(esc.notify)} ` : '';
      await deps.outbox.alertThread(
        record.fingerprint,
        `📣 Escalation ${n}/${esc.maxTimes}: ${who}${firingCritical(g)} critical alerts in this storm are firing and nobody has acknowledged them.`,
        `group-${gid}-${n}`,
      );
      await deps.outbox.alertGroup(gid);
    }
    if (g && !g.ack) await scheduleEscalation(record, n + 1);
  };

  /** A critical alert about a service mid-release pauses it (or rolls it back), and says so. */
  const actOnRelease = async (record: AlertRecord) => {
    const mode = deps.config.alerts.duringRelease;
    const target = alertTarget(record.labels, deps.config);
    if (!target) return;
    const { environment, service } = target;
    const ctx = deps.release;
    // Promotion rules ask whether a version stayed free of critical alerts where it runs (stored escaped:
    // it is shown in refusals).
    await ctx.trail?.criticalAlert(
      environment,
      service,
      escapeMrkdwn(record.labels.alertname ?? 'alert'),
      now(),
    );
    // DORA: a critical alert counts against the service's last release (it never holds the release up).
    await ctx.dora
      ?.record(environment, service, {
        kind: 'critical',
        id: `critical:${record.fingerprint}:${record.firstSeen}`,
        at: now(),
        name: escapeMrkdwn(record.labels.alertname ?? 'alert'),
      })
      .catch((err: Error) => deps.logger.warn({ err: err.message }, 'Could not record DORA event'));
    if (mode === 'none') return;
    const state = await ctx.states.get(environment, service);
    if (!state.inFlight) return;
    const rel = await ctx.store.get(state.inFlight.releaseId);
    if (!rel || TERMINAL.has(rel.status)) return;
    // Shown in the release message (its outcome) and the rollback's: escaped like the alert itself.
    const name = escapeMrkdwn(record.labels.alertname ?? 'alert');
    let note: string;
    if (mode === 'rollback') {
      await ctx.jobs.rollback({
        environment,
        service,
        reason: `critical alert ${name}`,
        by: 'flightdeck',
        trigger: 'alert',
        requestedAt: now(),
      });
      note = `↩️ Rolling back release \`${rel.id}\` of ${service} in ${environment}`;
    } else {
      const paused = await setPaused(
        ctx,
        rel.id,
        true,
        `⏸️ Paused by critical alert ${name} (${record.fingerprint})`,
        `⏸️ Paused by critical alert *${name}*; Resume or Abort below.`,
      );
      if (!paused) return;
      note = `⏸️ Paused release \`${rel.id}\` of ${service} in ${environment}`;
    }
    await deps.alerts.mutate(record.fingerprint, (cur) =>
      cur ? { ...cur, releaseAction: note } : undefined,
    );
    if (!record.groupId) await deps.outbox.alert(record.fingerprint);
  };

  /**
   * Open alerts Alertmanager no longer holds have ended without telling us (a silenced alert's
   * resolution is muted). Two misses in a row resolve them; a freshly restarted Alertmanager, which
   * has not yet heard from Prometheus again, is not trusted.
   */
  const onReconcile = async () => {
    if (!deps.alertmanager) return;
    const every = deps.config.alerts.reconcileEvery;
    if ((await deps.alertmanager.uptimeSeconds()) * 1000 < 2 * every) return;
    const active = await deps.alertmanager.activeFingerprints();
    for (const open of await deps.alerts.open()) {
      if (now() - open.lastSeen < every) continue;
      let resolved = false;
      const r = await deps.alerts.mutate(open.fingerprint, (cur) => {
        if (cur?.status !== 'firing') return undefined;
        if (active.has(cur.fingerprint))
          return cur.missingSince ? { ...cur, missingSince: undefined } : undefined;
        if (!cur.missingSince) return { ...cur, missingSince: now() };
        resolved = true;
        return {
          ...cur,
          status: 'resolved',
          resolvedAt: now(),
          resolvedNote:
            'Alertmanager no longer holds it (no notification came, e.g. because it was silenced)',
        };
      });
      if (resolved && r) {
        deps.metrics.alertsReceived.inc({ severity: severityLabel(r.labels.severity), status: 'resolved' });
        if (r.groupId) {
          // The summary counts and names it as resolved too.
          const gid = r.groupId;
          await deps.alerts.mutateGroup(gid, (cur) => (cur ? withMembers(cur, [r], now()) : undefined));
          await deps.outbox.alertGroup(gid);
        } else await deps.outbox.alert(r.fingerprint);
      }
    }
  };

  return { onWebhook, onEscalate, onReconcile };
}
