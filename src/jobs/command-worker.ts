import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditLog } from '../audit/audit-log.js';
import type { CommandExecutor } from '../commands/execution.js';
import { CommandJob } from '../commands/schema.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { SlackResponder } from '../integrations/slack/respond.js';
import { type Logger, logFailure } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { QUEUE, workerOptions } from './queues.js';

export interface CommandWorkerDeps {
  connection: Redis;
  prefix: string;
  executor: CommandExecutor;
  responder: SlackResponder;
  audit: AuditLog;
  metrics: Metrics;
  logger: Logger;
  config: FlightdeckConfig;
}

/** Plain function of the job: re-parse, execute, answer the user, audit the outcome. */
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
    const reply = await deps.executor(data.parsed, {
      userId: data.user.id,
      userName: data.user.name,
      requestId: data.requestId,
      receivedAt: Date.parse(data.receivedAt),
      reply: target,
    });
    const delivered = await deps.responder.reply(target, reply);
    end();
    await deps.audit.record({
      userId: data.user.id,
      userName: data.user.name,
      command: `/${data.parsed.command}`,
      text: data.text,
      outcome: reply.outcome ?? 'done',
      detail: `${reply.text.slice(0, 200)} [via ${delivered}, worker ${process.pid}]`,
      requestId: data.requestId,
    });
    return { delivered };
  };
}

export function startCommandWorker(deps: CommandWorkerDeps): Worker {
  const worker = new Worker(QUEUE.commands, commandProcessor(deps), workerOptions(QUEUE.commands, deps));
  worker.on('completed', () => deps.metrics.jobs.inc({ queue: QUEUE.commands, result: 'completed' }));
  worker.on('failed', async (job, err) => {
    deps.metrics.jobs.inc({ queue: QUEUE.commands, result: 'failed' });
    deps.logger.error({ jobId: job?.id, err: err.message }, 'Command job failed');
    const data = CommandJob.safeParse(job?.data);
    const final = job && (err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1));
    if (!data.success || !final) return;
    await deps.audit
      .record({
        userId: data.data.user.id,
        userName: data.data.user.name,
        command: `/${data.data.parsed.command}`,
        text: data.data.text,
        outcome: 'failed',
        detail: err.message.slice(0, 300),
        requestId: data.data.requestId,
      })
      .catch(logFailure(deps.logger, 'Audit write failed', { jobId: job?.id }));
    await deps.responder
      .reply(
        { responseUrl: data.data.responseUrl, channelId: data.data.channelId, userId: data.data.user.id },
        { text: `:x: \`/${data.data.parsed.command} ${data.data.text}\` failed: ${err.message}` },
      )
      .catch(logFailure(deps.logger, 'Could not tell the user a command failed', { jobId: job?.id }));
  });
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Command worker error'));
  return worker;
}
