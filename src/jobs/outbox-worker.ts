import { createHash } from 'node:crypto';
import type { KnownBlock } from '@slack/types';
import type { WebClient } from '@slack/web-api';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AlertStore } from '../alerts/alert-store.js';
import { renderAlert, renderGroup, THREAD_LINES, threadReply } from '../alerts/render-alert.js';
import { rollbackOffer } from '../alerts/rollback-offer.js';
import type { AlertRecord } from '../alerts/schema.js';
import type { ChecklistStore } from '../checklists/checklist-store.js';
import { renderMoved } from '../checklists/render-checklist.js';
import type { FlightdeckConfig } from '../config/schema.js';
import { isPermanent } from '../errors.js';
import { type ChannelBudget, HOME_LIMIT } from '../integrations/slack/channel-budget.js';
import { OutboxJob, THREAD_TTL_SEC, threadKeys } from '../integrations/slack/outbox.js';
import { SlackPermanentError, SlackSender, Wait } from '../integrations/slack/post-once.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { deliverBatch, releaseMessagePlace } from '../releases/batch-message.js';
import type { ReleaseStore } from '../releases/release-store.js';
import { renderRelease } from '../releases/render-release.js';
import type { ServiceStateStore } from '../releases/service-state-store.js';
import { QUEUE, workerOptions } from './queues.js';

type ChecklistMessageRef = { channel: string; ts: string };

export interface OutboxDeps {
  connection: Redis;
  prefix: string;
  client: WebClient;
  config: FlightdeckConfig;
  releases: ReleaseStore;
  alerts: AlertStore;
  states: ServiceStateStore;
  budget: ChannelBudget;
  /** Renders a checklist; where it is shown (capped) and which render each message shows. */
  checklists?: {
    render(id: string): Promise<{ text: string; blocks: KnownBlock[] }>;
    store: Pick<
      ChecklistStore,
      'addMessage' | 'trim' | 'messages' | 'moved' | 'forgetMoved' | 'forget' | 'rendered' | 'setRendered'
    >;
    /** Queues a refresh of every message showing a checklist. */
    refresh(id: string): Promise<void>;
  };
  /** The App Home of one user. */
  home?: (userId: string) => Promise<{ type: 'home'; blocks: KnownBlock[] }>;
  /** Whose App Home is kept current, and how to queue one (each coalesces on its own). */
  homes?: { viewers(): Promise<string[]>; publish(userId: string): Promise<void> };
  /** A batch member's message was posted: refresh the batch message (it links to it). */
  batchChanged?: (batchId: string) => Promise<void>;
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
  /** The workspace's address (auth.test), for links to messages; asked once. */
  let workspaceUrl: Promise<string | undefined> | undefined;
  const askWorkspaceUrl = () => {
    workspaceUrl ??= deps.client.auth.test().then((r) => r.url);
    // Not known yet (auth.test failed): asked again on the retry, so every pointer is a link.
    return workspaceUrl.catch((err: unknown) => {
      workspaceUrl = undefined;
      throw err;
    });
  };

  const deliver = async (data: OutboxJob, job: Job): Promise<void> => {
    switch (data.kind) {
      case 'release': {
        const r = await deps.releases.get(data.releaseId);
        if (!r) return;
        const view = renderRelease(r);
        if (r.message) return sender.update(job, r.message, view);
        // A member of a `/deploy all` goes into the batch message's thread.
        const place = await releaseMessagePlace(deps.connection, deps.prefix, r);
        const m = await sender.post(
          job,
          place.channel,
          place.threadTs ? { ...view, thread_ts: place.threadTs } : view,
          `release:${r.id}`,
        );
        const message = place.threadTs ? { ...m, thread: place.threadTs } : m;
        await deps.releases.update(r.id, (rel) => (rel.message ? undefined : { ...rel, message }));
        // The batch message links to it.
        if (r.batch && place.threadTs) await deps.batchChanged?.(r.batch.id);
        return;
      }
      case 'batch':
        return deliverBatch(
          {
            redis: deps.connection,
            prefix: deps.prefix,
            releases: deps.releases,
            sender,
            workspaceUrl: askWorkspaceUrl,
          },
          job,
          data.batchId,
        );
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
          if (g.listed >= g.fingerprints.length) return;
          // Which alerts a reply lists is fixed on its first attempt: a retry (its answer lost, the
          // storm grown since) posts, or finds, the same reply and moves `listed` past exactly those.
          const plan = `${deps.prefix}:data:alert-group:${g.id}:thread-plan:${g.listed}`;
          const planned = Number(await deps.connection.get(plan));
          const fps = g.fingerprints.slice(g.listed, planned > g.listed ? planned : g.listed + THREAD_LINES);
          const byFp = new Map((await deps.alerts.many(fps)).map((r) => [r.fingerprint, r]));
          // The summary names alerts before their records are written: the reply stops at the first
          // one not written yet, and waits a moment when that is the very first.
          const missing = fps.findIndex((fp) => !byFp.has(fp));
          const ready = (missing < 0 ? fps : fps.slice(0, missing)).map((fp) => byFp.get(fp) as AlertRecord);
          if (ready.length === 0) throw new Wait(Date.now() + 500);
          const lines = threadReply(ready);
          const end = planned > g.listed ? planned : g.listed + lines.length;
          if (!planned) await deps.connection.set(plan, String(end), 'EX', THREAD_TTL_SEC);
          await sender.post(
            job,
            g.channel,
            { text: lines.join('\n'), thread_ts: g.message.ts },
            `group-thread:${g.id}:${g.listed}`,
          );
          await deps.alerts.mutateGroup(g.id, (cur) =>
            cur ? { ...cur, listed: Math.max(cur.listed, end) } : undefined,
          );
        }
      }
      case 'checklist-post': {
        if (!deps.checklists) return;
        const { store } = deps.checklists;
        const view = await deps.checklists.render(data.checklistId);
        const m = await sender.post(
          job,
          data.channel,
          data.threadTs ? { ...view, thread_ts: data.threadTs } : view,
          `checklist:${job.id}`,
        );
        const moved = await store.addMessage(data.checklistId, m.channel, m.ts);
        await store.setRendered(data.checklistId, m, renderVersion(view));
        // Older messages now point here, and a tick since the render above must show here too.
        const current = await deps.checklists.render(data.checklistId);
        if (moved > 0 || renderVersion(current) !== renderVersion(view))
          await deps.checklists.refresh(data.checklistId);
        return;
      }
      case 'checklist-refresh': {
        if (!deps.checklists) return;
        return refreshChecklist(
          {
            checklists: deps.checklists,
            logger: deps.logger,
            update: (m, view) => sender.update(job, m, view),
            workspaceUrl: askWorkspaceUrl,
          },
          data.checklistId,
        );
      }
      case 'text':
        await sender.post(job, data.channel, { text: data.text }, `text:${job.id}`);
        return;
      case 'release-thread': {
        const r = await deps.releases.get(data.releaseId);
        if (!r) return;
        if (!r.message) throw new Wait(Date.now() + 500); // the release's own message goes first
        await sender.post(
          job,
          r.message.channel,
          {
            text: data.text,
            thread_ts: r.message.thread ?? r.message.ts,
            ...(data.blocks ? { blocks: data.blocks as KnownBlock[] } : {}),
          },
          `release-thread:${job.id}`,
        );
        return;
      }
      case 'homes': {
        if (!deps.homes) return;
        for (const userId of await deps.homes.viewers()) await deps.homes.publish(userId);
        return;
      }
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
        if (isPermanent(err)) {
          // Logged by the 'failed' handler with the job; the metric counts it under `permanent`.
          throw new UnrecoverableError((err as Error).message);
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

/** What a checklist refresh uses: the checklist's store and render, and Slack within its budget. */
export interface ChecklistRefreshDeps {
  checklists: NonNullable<OutboxDeps['checklists']>;
  /** chat.update within the budget (throws `Wait` when the job must be delayed). */
  update(m: ChecklistMessageRef, view: { text: string; blocks?: KnownBlock[] }): Promise<void>;
  /** The workspace's address, for the pointers' links. */
  workspaceUrl(): Promise<string | undefined>;
  logger: Logger;
}

/** Points the messages moved past the cap to the newest, and brings every shown message up to date. */
export async function refreshChecklist(deps: ChecklistRefreshDeps, id: string): Promise<void> {
  const { store } = deps.checklists;
  // Progress lives in Redis, so a run delayed by the chat.update budget, or retried after a
  // failed call, resumes where it was. A message Slack no longer has is forgotten; one whose
  // update failed otherwise (a timeout, a 500) is left for the retry, after the others are done.
  let failed = 0;
  const attempt = async (m: ChecklistMessageRef, view: { text: string; blocks?: KnownBlock[] }) => {
    try {
      await deps.update(m, view);
      return 'updated';
    } catch (err) {
      if (err instanceof Wait) throw err;
      if (err instanceof SlackPermanentError) {
        deps.logger.warn(
          { err: err.message, checklistId: id, ts: m.ts },
          'A checklist message is gone from Slack',
        );
        return 'gone';
      }
      failed += 1;
      deps.logger.warn(
        { err: (err as Error).message, checklistId: id, ts: m.ts },
        'Could not update a checklist message',
      );
      return 'failed';
    }
  };
  await store.trim(id);
  const shown = await store.messages(id);
  const newest = shown[0];
  for (const m of await store.moved(id)) {
    if (newest && (await attempt(m, renderMoved(newest, await deps.workspaceUrl()))) === 'failed') continue;
    await store.forgetMoved(id, m);
  }
  const view = await deps.checklists.render(id);
  const version = renderVersion(view);
  const rendered = await store.rendered(id);
  const at = (m: { channel: string; ts: string }) => rendered.get(`${m.channel}|${m.ts}`);
  // Each message once per render, the longest-waiting first: ticks that keep coming starve none.
  const stale = shown
    .filter((m) => at(m)?.version !== version)
    .sort((a, b) => (at(a)?.at ?? 0) - (at(b)?.at ?? 0));
  for (const m of stale) {
    // Moved since `shown` was read (a post trimmed it): it shows, or will, its pointer, which
    // the checklist must not overwrite. A move after this look queues a run that points it later.
    if (!(await store.messages(id)).some((s) => s.channel === m.channel && s.ts === m.ts)) continue;
    const outcome = await attempt(m, view);
    // Deleted in Slack (or its channel is): it frees its place among the capped messages.
    if (outcome === 'gone') await store.forget(id, m);
    else if (outcome === 'updated') await store.setRendered(id, m, version);
  }
  if (failed > 0) throw new Error(`${failed} checklist message(s) of ${id} not updated; the retry does them`);
}

/** Which render a message shows: equal renders, equal versions. */
const renderVersion = (view: { text: string; blocks: KnownBlock[] }) =>
  createHash('sha256').update(JSON.stringify(view)).digest('base64url').slice(0, 16);
