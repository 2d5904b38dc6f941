import { createHash } from 'node:crypto';
import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditLog, AuditOutcome } from '../../audit/audit-log.js';
import { authorise } from '../../commands/authorise.js';
import { parseCommand, UsageError } from '../../commands/parse-command.js';
import {
  type CommandJob,
  type CommandName,
  type ParsedCommand,
  SlackCommandFields,
} from '../../commands/schema.js';
import { usage } from '../../commands/usage.js';
import type { FlightdeckConfig } from '../../config/schema.js';
import { type Logger, logFailure } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { EnqueueUnconfirmed, enqueueOnce, laneJobs } from '../enqueue-command.js';

export interface SlashCommandDeps {
  config: FlightdeckConfig;
  queue: Queue;
  /** The rollback lane: a /rollback goes straight there. */
  rollbacks: Queue;
  redis: Redis;
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
}

export type SlashCommandArgs = SlackCommandMiddlewareArgs & AllMiddlewareArgs;

/**
 * One listener for all four commands: parse, validate, authorise, ack, then enqueue.
 * Nothing slow happens before the ack; bad input and refusals are answered in the ack itself
 * and never reach the queue.
 */
export function slashCommandListener(name: CommandName, deps: SlashCommandDeps) {
  return async ({ command, ack, respond }: SlashCommandArgs): Promise<void> => {
    const started = performance.now();
    const text = command.text ?? '';
    const requestId = requestIdOf(command);
    const base = {
      userId: command.user_id,
      userName: command.user_name,
      command: `/${name}`,
      text,
      requestId,
    };
    const audit = (outcome: AuditOutcome, detail: string) =>
      deps.audit.record({ ...base, outcome, detail }).catch((err: Error) => {
        deps.logger.warn({ err: err.message, requestId }, 'Audit write failed');
      });
    const done = (outcome: string) => {
      deps.metrics.commands.inc({ command: name, outcome });
      deps.metrics.commandAck.observe({ command: name }, (performance.now() - started) / 1000);
    };

    let parsed: ParsedCommand;
    try {
      parsed = parseCommand(name, text, deps.config);
    } catch (err) {
      const reason = err instanceof UsageError ? err.message : 'I could not read that command.';
      await ack({ response_type: 'ephemeral', text: `:x: ${reason}\n\n${usage(name, deps.config)}` });
      done('rejected');
      await audit('rejected', reason);
      return;
    }

    if (parsed.action === 'help') {
      await ack({ response_type: 'ephemeral', text: usage(name, deps.config) });
      done('help');
      await audit('help', '');
      return;
    }

    const decision = authorise(parsed, command.user_id, deps.config);
    if (!decision.allowed) {
      await ack({ response_type: 'ephemeral', text: `:no_entry: Not done: ${decision.reason}` });
      done('refused');
      await audit('refused', decision.reason);
      return;
    }

    // Redis known to be unreachable (its connection dropped): say so in the ack, not "on it"
    // followed by a failure. Other states (still connecting) take the normal, bounded path.
    if (DISCONNECTED.has(deps.redis.status)) {
      await ack({ response_type: 'ephemeral', text: tryAgain(name, text) });
      done('unavailable');
      deps.logger.warn({ requestId, redis: deps.redis.status }, 'Command refused: Redis is not connected');
      return;
    }

    const job: CommandJob = {
      requestId,
      receivedAt: new Date().toISOString(),
      teamId: command.team_id,
      user: { id: command.user_id, name: command.user_name },
      channelId: command.channel_id,
      responseUrl: command.response_url,
      text: text.trim(),
      parsed,
    };
    // Slack always sends these fields; without them nobody could be answered later, so nothing is queued.
    if (!SlackCommandFields.safeParse(job).success) {
      await ack({
        response_type: 'ephemeral',
        text: ':x: That request lacks fields Slack always sends; nothing was done.',
      });
      done('rejected');
      await audit('rejected', 'malformed request');
      return;
    }
    await ack({
      response_type: 'ephemeral',
      text: `:hourglass_flowing_sand: \`/${name} ${text.trim()}\` — on it.`,
    });

    try {
      const queued = await enqueueOnce(
        { redis: deps.redis, prefix: deps.config.redis.prefix, audit: deps.audit },
        job,
        laneJobs(deps, name, job),
        base,
      );
      done(queued === 'duplicate' ? 'duplicate' : 'accepted');
    } catch (err) {
      done('error');
      deps.logger.error({ err: (err as Error).message, requestId }, 'Could not enqueue command');
      const unconfirmed = err instanceof EnqueueUnconfirmed;
      await respond({
        response_type: 'ephemeral',
        text: unconfirmed ? notConfirmed(name, text) : tryAgain(name, text),
      }).catch(logFailure(deps.logger, 'Could not answer a command', { requestId }));
      await audit('error', `enqueue ${unconfirmed ? 'not confirmed' : 'failed'}: ${(err as Error).message}`);
    }
  };
}

// 'connecting' too: ioredis passes through it between reconnect attempts, so a dropped Redis is never
// 'ready' again until it answers; a command in that window gets "try again" in the ack.
const DISCONNECTED = new Set(['connecting', 'reconnecting', 'close', 'end']);

const notConfirmed = (name: CommandName, text: string) =>
  `:warning: The job store (Redis) is slow: I could not confirm that \`/${name} ${text.trim()}\` was queued. It may still run — check \`/deploy status\` (or this channel) before trying again.`;

const tryAgain = (name: CommandName, text: string) =>
  `:warning: I could not queue \`/${name} ${text.trim()}\`: the job store (Redis) is not answering. Nothing was started — please try again in a minute.`;

/** Stable per invocation (Slack's trigger_id), so a retried delivery maps to the same id. */
export function requestIdOf(command: {
  team_id: string;
  trigger_id?: string;
  text?: string;
  user_id: string;
}): string {
  const basis = command.trigger_id ? `${command.team_id}|${command.trigger_id}` : JSON.stringify(command);
  return `cmd-${createHash('sha256').update(basis).digest('hex').slice(0, 24)}`;
}
