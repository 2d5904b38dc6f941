import { createHash } from 'node:crypto';
import type { AllMiddlewareArgs, BlockAction, SlackActionMiddlewareArgs } from '@slack/bolt';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditLog } from '../../audit/audit-log.js';
import { authorise } from '../../commands/authorise.js';
import type { CommandJob, ParsedCommand } from '../../commands/schema.js';
import {
  CommandJob as CommandJobSchema,
  ParsedCommand as ParsedCommandSchema,
} from '../../commands/schema.js';
import type { FlightdeckConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/logger.js';
import { enqueueOnce } from '../enqueue-command.js';

export interface BlockActionDeps {
  config: FlightdeckConfig;
  queue: Queue;
  redis: Redis;
  audit: AuditLog;
  logger: Logger;
}

type Args = SlackActionMiddlewareArgs<BlockAction> & AllMiddlewareArgs;

interface ActionLike {
  action_id: string;
  block_id?: string;
  value?: string;
  selected_options?: Array<{ value: string }>;
}

/**
 * A checkbox click carries the whole new selection of its group; the change this person made is
 * the difference from what their message showed, so two people ticking different items at the same
 * moment never undo each other.
 */
export function parseChecklistTick(
  action: ActionLike,
  message: { blocks?: unknown[] } | undefined,
): ParsedCommand | undefined {
  const m = /^cl\|([a-z0-9-]{1,48})\|\d+\|\d+$/.exec(action.block_id ?? '');
  if (!m) return undefined;
  const block = (message?.blocks ?? []).find(
    (b) => (b as { block_id?: string }).block_id === action.block_id,
  ) as
    | { elements?: Array<{ options?: Array<{ value: string }>; initial_options?: Array<{ value: string }> }> }
    | undefined;
  const element = block?.elements?.[0];
  const shown = new Set((element?.initial_options ?? []).map((o) => o.value));
  const selected = new Set((action.selected_options ?? []).map((o) => o.value));
  const all = (element?.options ?? []).map((o) => o.value);
  const changes = all
    .filter((v) => shown.has(v) !== selected.has(v))
    .map((itemId) => ({ itemId, ticked: selected.has(itemId) }));
  const parsed = ParsedCommandSchema.safeParse({
    command: 'checklist',
    action: 'tick',
    checklistId: m[1],
    changes,
  });
  return parsed.success ? parsed.data : undefined;
}

/** What a button's action_id and value mean, or undefined for a value we did not produce. */
export function parseButton(actionId: string, value: string): ParsedCommand | undefined {
  if (actionId === 'checklist_recheck') {
    // The button's value is the checklist's phase (1-4).
    const r = ParsedCommandSchema.safeParse({
      command: 'checklist',
      action: 'recheck',
      which: { phase: Number(value) },
    });
    if (r.success) return r.data;
  }
  const release = /^release_(approve|reject|promote|pause|resume|abort)$/.exec(actionId);
  const alert = /^alert_(ack|silence|rollback|group_ack)$/.exec(actionId);
  const parsed = release
    ? ParsedCommandSchema.safeParse({ command: 'release', action: release[1], releaseId: value })
    : alert
      ? ParsedCommandSchema.safeParse({
          command: 'alert',
          action: alert[1] === 'group_ack' ? 'ack-group' : alert[1],
          target: value.split('|')[0],
          ...(alert[1] === 'silence' ? { duration: value.split('|')[1] } : {}),
        })
      : actionId === 'rollback_confirm'
        ? ParsedCommandSchema.safeParse({
            command: 'rollback',
            action: 'confirm',
            environment: value.split('|')[0],
            target: value.split('|')[1],
          })
        : undefined;
  return parsed?.success ? parsed.data : undefined;
}

/** Buttons ack at once and become command jobs; the worker checks who clicked against the release. */
export function blockActionListener(deps: BlockActionDeps) {
  return async ({ ack, body, action, respond }: Args): Promise<void> => {
    await ack();
    const a = action as ActionLike;
    const parsed =
      a.action_id === 'checklist_tick'
        ? parseChecklistTick(a, (body as { message?: { blocks?: unknown[] } }).message)
        : parseButton(a.action_id, a.value ?? '');
    const detail =
      parsed?.command === 'checklist' && parsed.action === 'tick'
        ? parsed.changes.map((c) => `${c.ticked ? '+' : '-'}${c.itemId}`).join(' ')
        : (a.value ?? '');
    const text = `[button] ${a.action_id} ${detail}`.slice(0, 200);
    const requestId = `act-${createHash('sha256')
      .update(`${body.team?.id}|${body.trigger_id}|${(action as { action_ts?: string }).action_ts}`)
      .digest('hex')
      .slice(0, 24)}`;
    const base = {
      userId: body.user.id,
      userName: body.user.name ?? body.user.id,
      command: '/button',
      text,
      requestId,
    };
    if (!parsed) {
      await deps.audit.record({ ...base, outcome: 'rejected', detail: 'unknown button' }).catch(() => {});
      return;
    }
    if (parsed.command === 'rollback' && parsed.action === 'confirm') {
      // The button's value names what to roll back and anyone can send any value: check it as /rollback would.
      const env = parsed.environment;
      const known =
        Object.hasOwn(deps.config.environments, env) &&
        (parsed.target === 'all' ||
          Object.hasOwn(deps.config.environments[env]?.services ?? {}, parsed.target));
      const decision = known ? authorise(parsed, body.user.id, deps.config) : undefined;
      if (!decision?.allowed) {
        const reason = decision ? decision.reason : 'that button names no configured service.';
        await deps.audit
          .record({ ...base, outcome: decision ? 'refused' : 'rejected', detail: reason })
          .catch(() => {});
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `:no_entry: Not done: ${reason}`,
        }).catch(() => {});
        return;
      }
    }
    const job: CommandJob = {
      requestId,
      receivedAt: new Date().toISOString(),
      teamId: body.team?.id ?? '',
      user: { id: body.user.id, name: body.user.name ?? body.user.id },
      channelId: body.channel?.id ?? deps.config.channels.releases,
      responseUrl: body.response_url,
      text,
      parsed,
    };
    // Slack always sends these fields; a body without them (signed or not) is no click to act on.
    const complete = CommandJobSchema.safeParse(job);
    if (!complete.success) {
      const missing = complete.error.issues[0]?.path.join('.') ?? 'fields';
      await deps.audit
        .record({ ...base, outcome: 'rejected', detail: `malformed click: no valid ${missing}` })
        .catch(() => {});
      return;
    }
    try {
      const queued = await enqueueOnce(
        { redis: deps.redis, queue: deps.queue, prefix: deps.config.redis.prefix },
        `button-${parsed.command}`,
        job,
      );
      if (queued === 'duplicate') return;
      await deps.audit
        .record({ ...base, outcome: 'accepted', detail: `queued ${requestId}` })
        .catch(() => {});
    } catch (err) {
      deps.logger.error({ err: (err as Error).message }, 'Could not enqueue a button click');
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: ':warning: That click could not be queued (Redis is not answering); please try again.',
      }).catch(() => {});
    }
  };
}
