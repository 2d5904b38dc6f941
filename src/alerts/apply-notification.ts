import { z } from 'zod';
import { severityKey } from './route-alert.js';
import type { AlertGroup, AlertmanagerAlert, AlertmanagerWebhook, AlertRecord } from './schema.js';

/** One escalation of one firing episode of an alert. */
export const EscalateJob = z.object({ fingerprint: z.string(), firstSeen: z.number(), n: z.number().int() });
export type EscalateJob = z.infer<typeof EscalateJob>;

/** The job id of escalation `n` of an episode: makes each escalation once-only, and cancellable. */
export const escalationJobId = (fp: string, firstSeen: number, n: number) => `esc-${fp}-${firstSeen}-${n}`;

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
    if (!known.has(a.fingerprint)) {
      known.add(a.fingerprint);
      g.fingerprints.push(a.fingerprint);
    }
    g.statuses[a.fingerprint] = { status: a.status, severity: severityKey(a.labels.severity) };
  }
  g.firing = 0;
  g.resolved = 0;
  const bySeverity: Record<string, number> = {};
  for (const { status, severity } of Object.values(g.statuses)) {
    if (status === 'firing') {
      g.firing += 1;
      // Normalised again: statuses stored before severities were normalised keep the raw label.
      const key = severityKey(severity);
      bySeverity[key] = (Object.hasOwn(bySeverity, key) ? (bySeverity[key] as number) : 0) + 1;
    } else {
      g.resolved += 1;
    }
  }
  g.bySeverity = bySeverity;
  g.updatedAt = now;
  return g;
}

/** How many of a storm's firing alerts are critical, whatever the case of their label (or the age of the group). */
export function firingCritical(g: Pick<AlertGroup, 'bySeverity'>): number {
  let n = 0;
  for (const [k, v] of Object.entries(g.bySeverity)) if (severityKey(k) === 'critical') n += v;
  return n;
}
