import { createHash } from 'node:crypto';
import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AlertStore } from '../alerts/alert-store.js';
import { isCritical, mentions, routeAlert } from '../alerts/route-alert.js';
import {
  type AlertGroup,
  type AlertmanagerAlert,
  AlertmanagerWebhook,
  type AlertRecord,
} from '../alerts/schema.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { AlertmanagerClient } from '../integrations/alertmanager.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { TERMINAL } from '../releases/schema.js';
import { lockOptions } from './lock-options.js';
import { setPaused } from './pause-release.js';
import { createQueue } from './queues.js';
import type { ReleaseContext } from './release-context.js';
import type { Outbox } from './slack-outbox.js';

export const ALERT_QUEUE = 'alerts';
const STORM_WINDOW_MS = 1_500;

const EscalateJob = z.object({ fingerprint: z.string(), firstSeen: z.number(), n: z.number().int() });

export function createAlertQueue(connection: Redis, prefix: string): Queue {
  return createQueue(ALERT_QUEUE, connection, prefix, {
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 86_400, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  });
}

export const escalationJobId = (fp: string, firstSeen: number, n: number) => `esc-${fp}-${firstSeen}-${n}`;

export interface AlertWorkerDeps {
  alertmanager?: AlertmanagerClient;
  connection: Redis;
  prefix: string;
  config: FlightdeckConfig;
  alerts: AlertStore;
  outbox: Outbox;
  queue: Queue;
  release: ReleaseContext;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}

/** The state change one notification makes to one alert (pure, so the rules are testable alone). */
export function applyNotification(
  cur: AlertRecord | undefined,
  a: AlertmanagerAlert,
  ctx: { now: number; channel: string; externalURL: string; groupId?: string },
): { next: AlertRecord; newEpisode: boolean } {
  const newEpisode =
    !cur || (cur.status === 'resolved' && a.status === 'firing' && a.startsAt !== cur.startsAt);
  if (newEpisode) {
    return {
      newEpisode,
      next: {
        fingerprint: a.fingerprint,
        status: a.status,
        labels: a.labels,
        annotations: a.annotations,
        startsAt: a.startsAt,
        endsAt: a.endsAt,
        generatorURL: a.generatorURL,
        externalURL: ctx.externalURL,
        channel: ctx.channel,
        firstSeen: ctx.now,
        lastSeen: ctx.now,
        count: 1,
        resolvedAt: a.status === 'resolved' ? ctx.now : undefined,
        silences: [],
        escalations: 0,
        groupId: ctx.groupId,
      },
    };
  }
  const prev = cur as AlertRecord;
  return {
    newEpisode,
    next: {
      ...prev,
      status: a.status,
      annotations: a.annotations,
      endsAt: a.endsAt,
      lastSeen: ctx.now,
      count: prev.count + 1,
      resolvedAt: a.status === 'resolved' ? (prev.resolvedAt ?? ctx.now) : undefined,
    },
  };
}

export function startAlertWorker(deps: AlertWorkerDeps): Worker {
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
    for (const a of payload.alerts) {
      deps.metrics.alertsReceived.inc({ severity: a.labels.severity ?? 'none', status: a.status });
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
    if (groupId && touched.length > 0) {
      await deps.alerts.mutateGroup(groupId, (cur) =>
        summarise(cur, groupId, payload, groupChannel, touched, now()),
      );
      await deps.outbox.alertGroup(groupId);
    }
  };

  const scheduleEscalation = async (record: AlertRecord, n: number) => {
    const esc = deps.config.alerts.escalation;
    if (n > esc.maxTimes) return;
    await deps.queue.add(
      'escalate',
      { fingerprint: record.fingerprint, firstSeen: record.firstSeen, n },
      {
        jobId: escalationJobId(record.fingerprint, record.firstSeen, n),
        delay: n === 1 ? esc.after : esc.repeat,
      },
    );
  };

  const onEscalate = async (data: z.infer<typeof EscalateJob>) => {
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
    deps.metrics.alertEscalations.inc({ severity: record.labels.severity ?? 'none' });
    const esc = deps.config.alerts.escalation;
    const who = esc.notify.length > 0 ? `${mentions(esc.notify)} ` : '';
    const minutes = Math.round((now() - record.firstSeen) / 60_000);
    await deps.outbox.alertThread(
      record.fingerprint,
      `📣 Escalation ${data.n}/${esc.maxTimes}: ${who}*${record.labels.alertname ?? 'alert'}* has been firing for ${minutes} min and nobody has acknowledged it.`,
      `${record.fingerprint}-${record.firstSeen}-${data.n}`,
    );
    if (!record.groupId) await deps.outbox.alert(record.fingerprint);
    await scheduleEscalation(record, data.n + 1);
  };

  const escalateGroup = async (record: AlertRecord, n: number) => {
    const gid = record.groupId as string;
    let escalated = false;
    const g = await deps.alerts.mutateGroup(gid, (cur) => {
      if (!cur || cur.ack || (cur.bySeverity.critical ?? 0) === 0 || cur.escalations >= n) return undefined;
      escalated = true;
      return { ...cur, escalations: n };
    });
    if (escalated && g) {
      deps.metrics.alertEscalations.inc({ severity: 'critical' });
      const esc = deps.config.alerts.escalation;
      const who = esc.notify.length > 0 ? `${mentions(esc.notify)} ` : '';
      await deps.outbox.alertThread(
        record.fingerprint,
        `📣 Escalation ${n}/${esc.maxTimes}: ${who}${g.bySeverity.critical} critical alerts in this storm are firing and nobody has acknowledged them.`,
        `group-${gid}-${n}`,
      );
      await deps.outbox.alertGroup(gid);
    }
    if (g && !g.ack) await scheduleEscalation(record, n + 1);
  };

  /** A critical alert about a service mid-release pauses it (or rolls it back), and says so. */
  const actOnRelease = async (record: AlertRecord) => {
    const mode = deps.config.alerts.duringRelease;
    const environment = record.labels[deps.config.alerts.environmentLabel];
    const service = record.labels[deps.config.alerts.serviceLabel];
    if (
      mode === 'none' ||
      !environment ||
      !service ||
      !deps.config.environments[environment]?.services[service]
    )
      return;
    const ctx = deps.release;
    const state = await ctx.states.get(environment, service);
    if (!state.inFlight) return;
    const rel = await ctx.store.get(state.inFlight.releaseId);
    if (!rel || TERMINAL.has(rel.status)) return;
    const name = record.labels.alertname ?? 'alert';
    let note: string;
    if (mode === 'rollback') {
      await ctx.rollbackQueue.add('rollback', {
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
        if (!cur || cur.status !== 'firing') return undefined;
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
        deps.metrics.alertsReceived.inc({ severity: r.labels.severity ?? 'none', status: 'resolved' });
        if (r.groupId) await deps.outbox.alertGroup(r.groupId);
        else await deps.outbox.alert(r.fingerprint);
      }
    }
  };

  const worker = new Worker(
    ALERT_QUEUE,
    async (job: Job) => {
      if (job.name === 'reconcile') return onReconcile();
      if (job.name === 'webhook') {
        const parsed = AlertmanagerWebhook.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError('malformed webhook job');
        return onWebhook(parsed.data);
      }
      if (job.name === 'escalate') return onEscalate(EscalateJob.parse(job.data));
      throw new UnrecoverableError(`unknown alert job ${job.name}`);
    },
    { connection: deps.connection, prefix: deps.prefix, concurrency: 4, ...lockOptions(deps.config) },
  );
  worker.on('failed', (job, err) =>
    deps.logger.warn({ jobId: job?.id, err: err.message }, 'Alert job failed'),
  );
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Alert worker error'));
  if (deps.alertmanager) {
    // One scheduler for all replicas (BullMQ keeps a single delayed job per scheduler id).
    deps.queue
      .upsertJobScheduler(
        'alerts-reconcile',
        { every: deps.config.alerts.reconcileEvery },
        { name: 'reconcile', data: {} },
      )
      .catch((err: Error) =>
        deps.logger.warn({ err: err.message }, 'Could not schedule alert reconciliation'),
      );
  }
  return worker;
}

/** The storm summary after a notification: every alert listed once, counts from each alert's latest state. */
export function summarise(
  cur: AlertGroup | undefined,
  id: string,
  payload: AlertmanagerWebhook,
  channel: string,
  touched: AlertRecord[],
  now: number,
): AlertGroup {
  const g: AlertGroup = cur ?? {
    id,
    groupKey: payload.groupKey,
    groupLabels: payload.groupLabels,
    channel,
    fingerprints: [],
    listed: 0,
    statuses: {},
    firing: 0,
    resolved: 0,
    bySeverity: {},
    updatedAt: now,
    escalations: 0,
  };
  const known = new Set(g.fingerprints);
  for (const a of touched) {
    if (a.groupId !== id) continue;
    if (!known.has(a.fingerprint)) g.fingerprints.push(a.fingerprint);
    g.statuses[a.fingerprint] = { status: a.status, severity: a.labels.severity ?? 'none' };
  }
  g.firing = 0;
  g.resolved = 0;
  g.bySeverity = {};
  for (const { status, severity } of Object.values(g.statuses)) {
    if (status === 'firing') {
      g.firing += 1;
      g.bySeverity[severity] = (g.bySeverity[severity] ?? 0) + 1;
    } else {
      g.resolved += 1;
    }
  }
  g.updatedAt = now;
  return g;
}
