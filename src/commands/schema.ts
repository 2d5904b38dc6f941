import { z } from 'zod';
import { Colour } from '../config/schema.js';

/** Docker's tag grammar: up to 128 of [A-Za-z0-9_.-], not starting with . or -. */
export const ImageTag = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'is not a valid image tag');

export const DeployCommand = z.discriminatedUnion('action', [
  z.object({ command: z.literal('deploy'), action: z.literal('help') }),
  z.object({ command: z.literal('deploy'), action: z.literal('status') }),
  /** DORA figures of an environment over the last `days`. */
  z.object({
    command: z.literal('deploy'),
    action: z.literal('stats'),
    environment: z.string(),
    days: z.number().int().min(1).max(365),
  }),
  z.object({
    command: z.literal('deploy'),
    action: z.literal('history'),
    service: z.string(),
    environment: z.string(),
  }),
  z.object({
    command: z.literal('deploy'),
    action: z.literal('cancel'),
    service: z.string(),
    environment: z.string(),
  }),
  z.object({
    command: z.literal('deploy'),
    action: z.literal('promote'),
    service: z.string(),
    environment: z.string(),
  }),
  z.object({
    command: z.literal('deploy'),
    action: z.literal('release'),
    target: z.string(),
    version: ImageTag,
    environment: z.string(),
    /** A lead's reason to deploy past promotion rules, a freeze or a checklist gate. */
    override: z.string().min(5).max(200).optional(),
  }),
]);

export const TrafficCommand = z.discriminatedUnion('action', [
  z.object({ command: z.literal('traffic'), action: z.literal('help') }),
  z.object({
    command: z.literal('traffic'),
    action: z.literal('status'),
    environment: z.string().optional(),
  }),
  z.object({
    command: z.literal('traffic'),
    action: z.literal('set'),
    service: z.string(),
    percent: z.number().int().min(0).max(100),
    colour: Colour.optional(),
    environment: z.string(),
  }),
]);

export const RollbackCommand = z.discriminatedUnion('action', [
  z.object({ command: z.literal('rollback'), action: z.literal('help') }),
  z.object({
    command: z.literal('rollback'),
    action: z.literal('rollback'),
    target: z.string(),
    environment: z.string(),
  }),
  /** The production confirm button of /rollback. */
  z.object({
    command: z.literal('rollback'),
    action: z.literal('confirm'),
    target: z.string(),
    environment: z.string(),
  }),
]);

/** Buttons on a release's progress message. */
export const ReleaseActionCommand = z.object({
  command: z.literal('release'),
  action: z.enum(['approve', 'reject', 'promote', 'pause', 'resume', 'abort']),
  releaseId: z.string().regex(/^rel-[a-z0-9-]+$/),
});

export const ChecklistWhich = z.union([
  z.enum(['current', 'pre', 'post']),
  z.object({ phase: z.number().int().min(1).max(4) }),
]);

/** A rollout's name (see RolloutName in src/checklists/schema.ts) and a release's id. */
const RolloutRef = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/);
const ReleaseRef = z.string().regex(/^rel-[a-z0-9-]{1,120}$/);

/** `rollout` absent: the channel's rollout (or the only active one). */
export const ChecklistCommand = z.discriminatedUnion('action', [
  z.object({ command: z.literal('checklist'), action: z.literal('help') }),
  z.object({
    command: z.literal('checklist'),
    action: z.literal('show'),
    which: ChecklistWhich,
    rollout: RolloutRef.optional(),
  }),
  z.object({ command: z.literal('checklist'), action: z.literal('status'), rollout: RolloutRef.optional() }),
  /** Every rollout, active and finished. */
  z.object({ command: z.literal('checklist'), action: z.literal('list') }),
  /** Every tick and untick of a rollout (who, when), newest first. */
  z.object({ command: z.literal('checklist'), action: z.literal('history'), rollout: RolloutRef.optional() }),
  /** Starts a rollout (or moves the first day of an active one); date default today, template the configured one. */
  z.object({
    command: z.literal('checklist'),
    action: z.literal('start'),
    rollout: RolloutRef,
    date: z.iso.date().optional(),
    template: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
      .optional(),
    services: z.array(z.string()).min(1).optional(),
    environments: z.array(z.string()).min(1).optional(),
  }),
  z.object({ command: z.literal('checklist'), action: z.literal('finish'), rollout: RolloutRef.optional() }),
  /** A lead lets a phase advance, or opens the production gate, with a reason (audited). */
  z.object({
    command: z.literal('checklist'),
    action: z.literal('override'),
    gate: z.union([z.literal('pre'), z.object({ phase: z.number().int().min(1).max(4) })]),
    reason: z.string().min(5).max(200),
    rollout: RolloutRef.optional(),
  }),
  z.object({
    command: z.literal('checklist'),
    action: z.literal('recheck'),
    which: ChecklistWhich,
    rollout: RolloutRef.optional(),
    /** The re-check button of a release's post-deployment checklist. */
    release: ReleaseRef.optional(),
  }),
  /** Checkbox clicks: what this person changed, computed from the message they saw. */
  z.object({
    command: z.literal('checklist'),
    action: z.literal('tick'),
    checklistId: z.string().regex(/^[a-z0-9-]{1,48}$/),
    changes: z
      .array(z.object({ itemId: z.string().regex(/^[a-z0-9-]{1,48}$/), ticked: z.boolean() }))
      .max(10),
    /** Which instance: a rollout or a release; neither on messages posted before named rollouts. */
    rollout: RolloutRef.optional(),
    release: ReleaseRef.optional(),
  }),
]);

/** Buttons on alert messages. */
export const AlertActionCommand = z.object({
  command: z.literal('alert'),
  action: z.enum(['ack', 'silence', 'rollback', 'ack-group']),
  target: z.string().regex(/^[a-f0-9]{1,64}$/),
  duration: z.enum(['1h', '4h', '24h']).optional(),
});

export const ParsedCommand = z.union([
  AlertActionCommand,
  DeployCommand,
  TrafficCommand,
  RollbackCommand,
  ChecklistCommand,
  ReleaseActionCommand,
]);
export type ParsedCommand = z.infer<typeof ParsedCommand>;
export type DeployCommand = z.infer<typeof DeployCommand>;
export type TrafficCommand = z.infer<typeof TrafficCommand>;
export type RollbackCommand = z.infer<typeof RollbackCommand>;
export type ChecklistCommand = z.infer<typeof ChecklistCommand>;
export type ReleaseActionCommand = z.infer<typeof ReleaseActionCommand>;
export type AlertActionCommand = z.infer<typeof AlertActionCommand>;

export const CommandName = z.enum(['deploy', 'traffic', 'rollback', 'checklist']);
export type CommandName = z.infer<typeof CommandName>;

/** What a slash-command job carries; re-parsed by the worker because Redis gives back untyped JSON. */
export const CommandJob = z.object({
  requestId: z.string(),
  receivedAt: z.iso.datetime(),
  teamId: z.string(),
  user: z.object({ id: z.string(), name: z.string() }),
  channelId: z.string(),
  responseUrl: z.url(),
  text: z.string(),
  parsed: ParsedCommand,
});
export type CommandJob = z.infer<typeof CommandJob>;

/**
 * The part of a command job that comes from Slack's request as is, checked at the ack: the rest is
 * built by the listener itself (the parse, the id, the time), and re-checking it cost ~3% of an ack.
 */
export const SlackCommandFields = CommandJob.pick({
  teamId: true,
  user: true,
  channelId: true,
  responseUrl: true,
});
