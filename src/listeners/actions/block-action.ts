import { createHash } from 'node:crypto';
import type { AllMiddlewareArgs, BlockAction, SlackActionMiddlewareArgs } from '@slack/bolt';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditLog } from '../../audit/audit-log.js';
import { authorise } from '../../commands/authorise.js';
import { type ActionLike, parseButton, parseChecklistTick } from '../../commands/parse-action.js';
import { type CommandJob, CommandJob as CommandJobSchema } from '../../commands/schema.js';
import type { FlightdeckConfig } from '../../config/schema.js';
import { type Logger, logFailure } from '../../observability/logger.js';
import { EnqueueUnconfirmed, enqueueOnce, laneJobs } from '../enqueue-command.js';

export interface BlockActionDeps {
  config: FlightdeckConfig;
  queue: Queue;
  /** The rollback lane: a /rollback goes straight there. */
  rollbacks: Queue;
  redis: Redis;
  audit: AuditLog;
  logger: Logger;
}

type Args = SlackActionMiddlewareArgs<BlockAction> & AllMiddlewareArgs;

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
      await deps.audit
        .record({ ...base, outcome: 'rejected', detail: 'unknown button' })
        .catch(logFailure(deps.logger, 'Audit write failed', { requestId }));
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
          .catch(logFailure(deps.logger, 'Audit write failed', { requestId }));
        await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `:no_entry: Not done: ${reason}`,
        }).catch(logFailure(deps.logger, 'Could not answer a refused click', { requestId }));
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
        .catch(logFailure(deps.logger, 'Audit write failed', { requestId }));
      return;
    }
    try {
      await enqueueOnce(
        { redis: deps.redis, prefix: deps.config.redis.prefix, audit: deps.audit },
        job,
        laneJobs(deps, `button-${parsed.command}`, job),
        base,
      );
    } catch (err) {
      deps.logger.error({ err: (err as Error).message }, 'Could not enqueue a button click');
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text:
          err instanceof EnqueueUnconfirmed
            ? ':warning: The job store (Redis) is slow: I could not confirm that click was queued. It may still take effect; check the message before clicking again.'
            : ':warning: That click could not be queued (Redis is not answering); please try again.',
      }).catch(logFailure(deps.logger, 'Could not answer a click', { requestId }));
    }
  };
}
