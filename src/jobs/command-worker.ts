import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import type { CommandExecutor, ExecutionResult } from '../commands/execution.js';
import { CommandJob } from '../commands/schema.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { SlackResponder } from '../integrations/slack/respond.js';
import { type Logger, logFailure } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { CommandProgress } from './command-progress.js';
import { QUEUE, workerOptions } from './queues.js';

export interface CommandWorkerDeps {
  connection: Redis;
  prefix: string;
  executor: CommandExecutor;
  responder: Pick<SlackResponder, 'reply'>;
  audit: Pick<AuditLog, 'record'>;
  progress: CommandProgress;
  metrics: Metrics;
  logger: Logger;
  config: FlightdeckConfig;
}

/**
 * Plain function of the job: re-parse, execute, answer the user, audit the outcome. Each of the three
 * is recorded once done (keyed by the request id), so a job retried because the answer or the audit
 * failed does only what is left: the command's effect never happens twice.
 */
export function commandProcessor(deps: Omit<CommandWorkerDeps, 'connection' | 'prefix'>) {
  return async (job: Job): Promise<{ delivered: string }> => {
    const parsed = CommandJob.safeParse(job.data);
    if (!parsed.success) {
      // Nothing a retry can fix.
      throw new UnrecoverableError(`malformed command job: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
    }
    const data = parsed.data;
    const end = deps.metrics.jobDuration.startTimer({ queue: QUEUE.commands });
    const target = { responseUrl: data.responseUrl, channelId: data.channelId, userId: data.user.id };
    const done = await deps.progress.get(data.requestId);
    let reply: ExecutionResult;
    if (done.result) {
      reply = StoredResult.parse(JSON.parse(done.result));
    } else {
      reply = await deps.executor(data.parsed, {
        userId: data.user.id,
        userName: data.user.name,
        requestId: data.requestId,
        receivedAt: Date.parse(data.receivedAt),
        reply: target,
      });
      await deps.progress.mark(data.requestId, 'result', JSON.stringify(reply));
    }
    let delivered = done.delivered;
    if (!delivered) {
      delivered = await deps.responder.reply(target, reply);
      await deps.progress.mark(data.requestId, 'delivered', delivered);
    }
    end();
    if (!done.audited) {
      await deps.audit.record({
        userId: data.user.id,
        userName: data.user.name,
        command: `/${data.parsed.command}`,
        text: data.text,
        outcome: reply.outcome ?? 'done',
        detail: `${reply.text.slice(0, 200)} [via ${delivered}, worker ${process.pid}]`,
        requestId: data.requestId,
      });
      await deps.progress.mark(data.requestId, 'audited', '1');
    }
    return { delivered };
  };
}

/** An answer as stored between attempts (blocks are Slack's, passed through unchanged). */
const StoredResult = z.object({
  text: z.string(),
  blocks: z.array(z.any()).optional(),
  responseType: z.enum(['ephemeral', 'in_channel']).optional(),
  outcome: z.enum(['accepted', 'rejected', 'refused', 'done', 'failed', 'help', 'error']).optional(),
});

export function startCommandWorker(deps: CommandWorkerDeps): Worker {
  const worker = new Worker(QUEUE.commands, commandProcessor(deps), workerOptions(QUEUE.commands, deps));
  worker.on('completed', () => deps.metrics.jobs.inc({ queue: QUEUE.commands, result: 'completed' }));
  worker.on('failed', async (job, err) => {
    deps.metrics.jobs.inc({ queue: QUEUE.commands, result: 'failed' });
    deps.logger.error({ jobId: job?.id, err: err.message }, 'Command job failed');
    const data = CommandJob.safeParse(job?.data);
    const final = job && (err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1));
    if (!data.success || !final) return;
    const { requestId, user, parsed, text } = data.data;
    const progress = await deps.progress.get(requestId).catch((e: Error) => {
      logFailure(deps.logger, 'Could not read command progress', { requestId })(e);
      return { result: undefined, audited: false };
    });
    const executed = progress.result !== undefined;
    if (!progress.audited) {
      await deps.audit
        .record({
          userId: user.id,
          userName: user.name,
          command: `/${parsed.command}`,
          text,
          // The command took effect and only its answer or audit failed: say what it did.
          outcome: executed
            ? (StoredResult.parse(JSON.parse(progress.result as string)).outcome ?? 'done')
            : 'failed',
          detail: (executed ? `done, but the answer was not delivered: ${err.message}` : err.message).slice(
            0,
            300,
          ),
          requestId,
        })
        .catch(logFailure(deps.logger, 'Audit write failed', { jobId: job?.id }));
    }
    // An answer that could not be delivered three times will not go now either; only a command
    // that did not run is worth one last word.
    if (executed) return;
    await deps.responder
      .reply(
        { responseUrl: data.data.responseUrl, channelId: data.data.channelId, userId: user.id },
        { text: `:x: \`/${parsed.command} ${text}\` failed: ${err.message}` },
      )
      .catch(logFailure(deps.logger, 'Could not tell the user a command failed', { jobId: job?.id }));
  });
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Command worker error'));
  return worker;
}
