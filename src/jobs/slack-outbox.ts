import type { WebClient } from '@slack/web-api';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReleaseStore } from '../releases/release-store.js';
import { renderRelease } from '../releases/render-release.js';

export const OUTBOX_QUEUE = 'slack-outbox';

const OutboxJob = z.object({ releaseId: z.string() });

export function createOutboxQueue(connection: Redis, prefix: string): Queue {
  const q = new Queue(OUTBOX_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 12,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: true,
      removeOnFail: { count: 1_000 },
    },
  });
  q.on('error', () => {});
  return q;
}

/**
 * Every change of a release asks for its message to be refreshed. Requests coalesce: at most one
 * send runs per release and one waits, which renders the latest state when it runs.
 */
export function releasePublisher(queue: Queue) {
  return async (releaseId: string): Promise<void> => {
    await queue.add(
      'release-message',
      { releaseId },
      { deduplication: { id: `release-message-${releaseId}`, keepLastIfActive: true } },
    );
  };
}

/** Posts a release's progress message once, then keeps it current with chat.update. */
export function startOutboxWorker(deps: {
  connection: Redis;
  prefix: string;
  client: WebClient;
  store: ReleaseStore;
  metrics: Metrics;
  logger: Logger;
}): Worker {
  const worker = new Worker(
    OUTBOX_QUEUE,
    async (job) => {
      const parsed = OutboxJob.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError('malformed outbox job');
      const r = await deps.store.get(parsed.data.releaseId);
      if (!r) return;
      const { text, blocks } = renderRelease(r);
      if (r.message) {
        await deps.client.chat.update({ channel: r.message.channel, ts: r.message.ts, text, blocks });
        deps.metrics.slackCalls.inc({ method: 'chat.update', result: 'ok' });
        return;
      }
      const res = await deps.client.chat.postMessage({ channel: r.channel, text, blocks });
      deps.metrics.slackCalls.inc({ method: 'chat.postMessage', result: 'ok' });
      const channel = res.channel ?? r.channel;
      const ts = res.ts as string;
      await deps.store.update(r.id, (rel) =>
        rel.message ? undefined : { ...rel, message: { channel, ts } },
      );
    },
    { connection: deps.connection, prefix: deps.prefix, concurrency: 8 },
  );
  worker.on('failed', (job, err) => {
    deps.metrics.slackCalls.inc({ method: 'outbox', result: 'failed' });
    deps.logger.warn({ jobId: job?.id, err: err.message }, 'Slack outbox send failed');
  });
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Slack outbox worker error'));
  return worker;
}
