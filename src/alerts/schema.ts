import { z } from 'zod';

const Labels = z.record(z.string(), z.string());

/** Alertmanager's webhook payload, version 4 (notify/webhook in Alertmanager 0.25). */
export const AlertmanagerAlert = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: Labels,
  annotations: Labels.default({}),
  startsAt: z.string(),
  endsAt: z.string().default('0001-01-01T00:00:00Z'),
  generatorURL: z.string().default(''),
  fingerprint: z.string().regex(/^[a-f0-9]{1,64}$/, 'must be a hex fingerprint'),
});
export type AlertmanagerAlert = z.infer<typeof AlertmanagerAlert>;

export const AlertmanagerWebhook = z.object({
  version: z.literal('4'),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().default(0),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupLabels: Labels.default({}),
  commonLabels: Labels.default({}),
  commonAnnotations: Labels.default({}),
  externalURL: z.string().default(''),
  alerts: z.array(AlertmanagerAlert).max(10_000),
});
export type AlertmanagerWebhook = z.infer<typeof AlertmanagerWebhook>;

/** One alert as flightdeck tracks it: its Slack message, who acknowledged, silences, escalations. */
export const AlertRecord = z.object({
  fingerprint: z.string(),
  status: z.enum(['firing', 'resolved']),
  labels: Labels,
  annotations: Labels,
  startsAt: z.string(),
  endsAt: z.string(),
  generatorURL: z.string(),
  externalURL: z.string().default(''),
  channel: z.string(),
  firstSeen: z.number(),
  lastSeen: z.number(),
  /** Notifications that carried this alert (repeats update the message, never post again). */
  count: z.number().int(),
  resolvedAt: z.number().optional(),
  ack: z.object({ by: z.string(), name: z.string(), at: z.number() }).optional(),
  silences: z.array(z.object({ id: z.string(), by: z.string(), until: z.number() })).default([]),
  escalations: z.number().int().default(0),
  /** Set when the alert is shown inside a storm summary instead of its own message. */
  groupId: z.string().optional(),
  message: z.object({ channel: z.string(), ts: z.string() }).optional(),
  /** The release of the alert's service this alert acted on (paused or rolled back). */
  releaseAction: z.string().optional(),
  rollbackRelease: z.string().optional(),
  /** When a reconcile first missed it in Alertmanager (a second miss resolves it). */
  missingSince: z.number().optional(),
  resolvedNote: z.string().optional(),
});
export type AlertRecord = z.infer<typeof AlertRecord>;

/**
 * A storm: one summary message for a group of many alerts, which names them (as many as Block Kit
 * allows) and is edited in place; every alert is listed with its labels in the summary's thread.
 */
export const AlertGroup = z.object({
  id: z.string(),
  groupKey: z.string(),
  groupLabels: Labels,
  /** Label names every alert of the group shared when it became a storm: the summary names alerts by the others. */
  commonKeys: z.array(z.string()).default([]),
  channel: z.string(),
  fingerprints: z.array(z.string()),
  /** How many of `fingerprints` are already listed in the thread. */
  listed: z.number().int().default(0),
  /** Latest status and severity of every alert in the group, for the counts, and its short name (raw: escaped when shown). */
  statuses: z
    .record(
      z.string(),
      z.object({ status: z.enum(['firing', 'resolved']), severity: z.string(), name: z.string().optional() }),
    )
    .default({}),
  firing: z.number().int(),
  resolved: z.number().int(),
  bySeverity: z.record(z.string(), z.number()),
  updatedAt: z.number(),
  escalations: z.number().int().default(0),
  ack: z.object({ by: z.string(), name: z.string(), at: z.number() }).optional(),
  message: z.object({ channel: z.string(), ts: z.string() }).optional(),
});
export type AlertGroup = z.infer<typeof AlertGroup>;
