import type { KnownBlock } from '@slack/types';
import type { WebClient } from '@slack/web-api';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AlertStore } from '../alerts/alert-store.js';
import { alertLine, renderAlert, renderGroup } from '../alerts/render-alert.js';
import { rollbackOffer } from '../alerts/rollback-offer.js';
import type { FlightdeckConfig } from '../config/schema.js';
import { type ChannelBudget, HOME_LIMIT } from '../integrations/slack/channel-budget.js';
import { OutboxJob, THREAD_TTL_SEC, threadKeys } from '../integrations/slack/outbox.js';
import { SlackSender, Wait } from '../integrations/slack/post-once.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReleaseStore } from '../releases/release-store.js';
import { renderRelease } from '../releases/render-release.js';
import type { ServiceStateStore } from '../releases/service-state-store.js';
import { QUEUE, workerOptions } from './queues.js';

export interface OutboxDeps {
  connection: Redis;
  prefix: string;
  client: WebClient;
  config: FlightdeckConfig;
  releases: ReleaseStore;
  alerts: AlertStore;
  states: ServiceStateStore;
  budget: ChannelBudget;
  /** Renders a checklist and records where it is shown. */
  checklists?: {
    render(id: string): Promise<{ text: string; blocks: KnownBlock[] }>;
    addMessage(id: string, channel: string, ts: string): Promise<void>;
    messages(id: string): Promise<Array<{ channel: string; ts: string }>>;
  };
  /** The App Home of one user. */
  home?: (userId: string) => Promise<{ type: 'home'; blocks: KnownBlock[] }>;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Runs the Slack outbox: each job renders the current state of what it names (a release, an alert,
 * a storm, a checklist, a user's App Home) and posts or updates its message, within Slack's budgets.
 */
export function startOutboxWorker(deps: OutboxDeps): Worker {
  const sender = new SlackSender({
    client: deps.client,
    redis: deps.connection,
    prefix: deps.prefix,
    budget: deps.budget,
    metrics: deps.metrics,
  });

  const deliver = async (data: OutboxJob, job: Job): Promise<void> => {
    switch (data.kind) {
      case 'release': {
        const r = await deps.releases.get(data.releaseId);
        if (!r) return;
        const view = renderRelease(r);
        if (r.message) return sender.update(job, r.message, view);
        const m = await sender.post(job, r.channel, view, `release:${r.id}`);
        await deps.releases.update(r.id, (rel) => (rel.message ? undefined : { ...rel, message: m }));
        return;
      }
      case 'alert': {
        const a = await deps.alerts.get(data.fingerprint);
        if (!a || a.groupId) return;
        const view = renderAlert(a, {
          now: Date.now(),
          rollback: await rollbackOffer(a.labels, { ...deps, now: Date.now() }),
        });
        if (a.message) return sender.update(job, a.message, view);
        const m = await sender.post(job, a.channel, view, `alert:${a.fingerprint}:${a.firstSeen}`);
        await deps.alerts.mutate(a.fingerprint, (cur) =>
          cur && !cur.message ? { ...cur, message: m } : undefined,
        );
        return;
      }
      case 'alert-group': {
        const g = await deps.alerts.getGroup(data.groupId);
        if (!g) return;
        const view = renderGroup(g, Date.now());
        if (g.message) return sender.update(job, g.message, view);
        const m = await sender.post(job, g.channel, view, `group:${g.id}`);
        await deps.alerts.mutateGroup(g.id, (cur) =>
          cur && !cur.message ? { ...cur, message: m } : undefined,
        );
        return;
      }
      case 'alert-group-thread': {
        for (;;) {
          const g = await deps.alerts.getGroup(data.groupId);
          if (!g) return;
          if (!g.message) throw new Wait(Date.now() + 500); // the summary goes first
          const batch = g.fingerprints.slice(g.listed, g.listed + 100);
          if (batch.length === 0) return;
          const records = await deps.alerts.many(batch);
          await sender.post(
            job,
            g.channel,
            { text: records.map(alertLine).join('\n'), thread_ts: g.message.ts },
            `group-thread:${g.id}:${g.listed}`,
          );
          await deps.alerts.mutateGroup(g.id, (cur) =>
            cur ? { ...cur, listed: Math.max(cur.listed, g.listed + batch.length) } : undefined,
          );
        }
      }
      case 'checklist-post': {
        if (!deps.checklists) return;
        const view = await deps.checklists.render(data.checklistId);
        const m = await sender.post(job, data.channel, view, `checklist:${job.id}`);
        await deps.checklists.addMessage(data.checklistId, m.channel, m.ts);
        return;
      }
      case 'checklist-refresh': {
        if (!deps.checklists) return;
        const view = await deps.checklists.render(data.checklistId);
        for (const m of await deps.checklists.messages(data.checklistId)) {
          await sender.update(job, m, view).catch((err: Error) => {
            if (err instanceof Wait) throw err;
            deps.logger.warn({ err: err.message, ts: m.ts }, 'Could not refresh a checklist message');
          });
        }
        return;
      }
      case 'text':
        await sender.post(job, data.channel, { text: data.text }, `text:${job.id}`);
        return;
      case 'home': {
        if (!deps.home) return;
        const view = await deps.home(data.userId);
        await sender.withinBudget(
          job,
          'method:views.publish',
          HOME_LIMIT,
          () => deps.client.views.publish({ user_id: data.userId, view }),
          'views.publish',
        );
        return;
      }
      case 'alert-thread-drain': {
        const k = threadKeys(deps.prefix, data.fingerprint);
        for (;;) {
          const a = await deps.alerts.get(data.fingerprint);
          if (!a) return;
          const parent =
            a.message ?? (a.groupId ? (await deps.alerts.getGroup(a.groupId))?.message : undefined);
          if (!parent) throw new Wait(Date.now() + 500); // the alert's own message goes first
          const posted = Number((await deps.connection.get(k.posted)) ?? 0);
          const text = await deps.connection.lindex(k.replies, posted);
          if (text === null) return;
          await sender.post(
            job,
            parent.channel,
            { text, thread_ts: parent.ts },
            `thread:${data.fingerprint}:${posted}`,
          );
          await deps.connection.set(k.posted, String(posted + 1), 'EX', THREAD_TTL_SEC);
        }
      }
    }
  };

  const worker = new Worker(
    QUEUE.outbox,
    async (job: Job, token?: string) => {
      const parsed = OutboxJob.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError('malformed outbox job');
      try {
        await deliver(parsed.data, job);
      } catch (err) {
        if (err instanceof Wait) {
          // Wait for the reserved slot or Slack's Retry-After without holding a worker.
          await job.moveToDelayed(err.until, token);
          throw new DelayedError();
        }
        throw err;
      }
    },
    workerOptions(QUEUE.outbox, deps),
  );
  worker.on('failed', (job, err) => {
    deps.metrics.slackCalls.inc({ method: 'outbox', result: 'failed' });
    deps.logger.warn({ jobId: job?.id, err: err.message }, 'Slack outbox send failed');
  });
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Slack outbox worker error'));
  return worker;
}
