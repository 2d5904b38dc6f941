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

/** What the summary needs of an alert: a record, or (before its record is written) the alert as notified. */
export type GroupMember = Pick<AlertRecord, 'fingerprint' | 'status' | 'labels' | 'groupId'>;

/**
 * How a storm's summary names one alert: by the labels it does not share with the rest of its group
 * (the value alone when only one differs, e.g. the instance; severity only when nothing else
 * differs), raw and clipped; undefined when it differs by none (the summary shows its fingerprint).
 */
export function shortName(labels: Record<string, string>, commonKeys: readonly string[]): string | undefined {
  const common = new Set(commonKeys);
  let own = Object.entries(labels).filter(([k]) => k !== 'alertname' && !common.has(k));
  // The summary shows severity by its icon: it names an alert only when nothing else tells it apart.
  if (own.some(([k]) => k !== 'severity')) own = own.filter(([k]) => k !== 'severity');
  if (own.length === 0) return undefined;
  const name =
    own.length === 1 ? (own[0] as [string, string])[1] : own.map(([k, v]) => `${k}=${v}`).join(' ');
  return name.length > 60 ? `${name.slice(0, 59)}…` : name;
}

/** The storm summary after a notification: every alert listed once, counts from each alert's latest state. */
export function summarise(
  cur: AlertGroup | undefined,
  id: string,
  payload: AlertmanagerWebhook,
  channel: string,
  touched: GroupMember[],
  now: number,
): AlertGroup {
  const g: AlertGroup = cur ?? {
    id,
    groupKey: payload.groupKey,
    groupLabels: payload.groupLabels,
    commonKeys: [...new Set([...Object.keys(payload.commonLabels), ...Object.keys(payload.groupLabels)])],
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
  return withMembers(g, touched, now);
}

/** A storm's summary with the latest state of these alerts (those of other groups, or none, are ignored). */
export function withMembers(g: AlertGroup, touched: GroupMember[], now: number): AlertGroup {
  const known = new Set(g.fingerprints);
  for (const a of touched) {
    if (a.groupId !== g.id) continue;
    if (!known.has(a.fingerprint)) {
      known.add(a.fingerprint);
      g.fingerprints.push(a.fingerprint);
    }
    g.statuses[a.fingerprint] = {
      status: a.status,
      severity: severityKey(a.labels.severity),
      name: shortName(a.labels, g.commonKeys),
    };
  }
  return recount(g, now);
}

/**
 * Takes out alerts the summary listed that turned out to keep their own message (posted between the
 * summary's write and their record's): shown once, in their own message.
 */
export function withoutMembers(g: AlertGroup, fps: ReadonlySet<string>, now: number): AlertGroup {
  // The thread lists `fingerprints` in order up to `listed`: what goes from before it shifts it back.
  g.listed -= g.fingerprints.slice(0, g.listed).filter((fp) => fps.has(fp)).length;
  g.fingerprints = g.fingerprints.filter((fp) => !fps.has(fp));
  g.statuses = Object.fromEntries(Object.entries(g.statuses).filter(([fp]) => !fps.has(fp)));
  return recount(g, now);
}

function recount(g: AlertGroup, now: number): AlertGroup {
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
