import type { KnownBlock } from '@slack/types';
import { ErrorCode, type WebAPIRateLimitedError, type WebClient } from '@slack/web-api';
import { DelayedError, type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AlertStore } from '../alerts/alert-store.js';
import { alertLine, renderAlert, renderGroup } from '../alerts/render-alert.js';
import type { FlightdeckConfig } from '../config/schema.js';
import {
  type ChannelBudget,
  HISTORY_LIMIT,
  HOME_LIMIT,
  type Limit,
  POST_LIMIT,
  UPDATE_LIMIT,
} from '../integrations/slack/channel-budget.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ReleaseStore } from '../releases/release-store.js';
import { renderRelease } from '../releases/render-release.js';
import { TERMINAL } from '../releases/schema.js';
import type { ServiceStateStore } from '../releases/service-state-store.js';
import { lockOptions } from './lock-options.js';
import { createQueue } from './queues.js';

export const OUTBOX_QUEUE = 'slack-outbox';

/** A reserved send time (from the budget) survives the job's delay. */
const Slot = { slot: z.number().optional(), slotScope: z.string().optional() };

const OutboxJob = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('release'), releaseId: z.string(), ...Slot }),
  z.object({ kind: z.literal('alert'), fingerprint: z.string(), ...Slot }),
  z.object({ kind: z.literal('alert-group'), groupId: z.string(), ...Slot }),
  /** Lists a storm's alerts in its thread, 100 a message, resuming where it stopped. */
  z.object({ kind: z.literal('alert-group-thread'), groupId: z.string(), ...Slot }),
  /** No longer queued (replies go through alert-thread-drain); still run for jobs a replica of an older version queued. */
  z.object({ kind: z.literal('alert-thread'), fingerprint: z.string(), text: z.string(), ...Slot }),
  /** Posts an alert thread's pending replies, one at a time, in the order they were asked for. */
  z.object({ kind: z.literal('alert-thread-drain'), fingerprint: z.string(), ...Slot }),
  z.object({ kind: z.literal('checklist-post'), checklistId: z.string(), channel: z.string(), ...Slot }),
  /** Every message showing a checklist, re-rendered after a tick. */
  z.object({ kind: z.literal('checklist-refresh'), checklistId: z.string(), ...Slot }),
  z.object({ kind: z.literal('text'), channel: z.string(), text: z.string(), ...Slot }),
  z.object({ kind: z.literal('home'), userId: z.string(), ...Slot }),
]);
export type OutboxJob = z.infer<typeof OutboxJob>;

/** Redis keys of one alert thread's replies: once-only keys, the replies in order, how many are posted. */
const threadKeys = (prefix: string, fingerprint: string) => {
  const base = `${prefix}:data:alert-thread:${fingerprint}`;
  return { keys: `${base}:keys`, replies: `${base}:replies`, posted: `${base}:posted` };
};
const THREAD_TTL_SEC = 30 * 86_400;
const APPEND_ONCE = `
if redis.call('sadd', KEYS[1], ARGV[1]) == 1 then redis.call('rpush', KEYS[2], ARGV[2]) end
redis.call('expire', KEYS[1], ARGV[3]); redis.call('expire', KEYS[2], ARGV[3])`;

/** Marks every post so that one which may have landed (timeout, crash after sending) can be found. */
const METADATA_TYPE = 'flightdeck_outbox';
const ATTEMPT_TTL_SEC = 7 * 86_400;

export function createOutboxQueue(connection: Redis, prefix: string): Queue {
  return createQueue(OUTBOX_QUEUE, connection, prefix, {
    attempts: 25,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: true,
    removeOnFail: { count: 5_000 },
  });
}

/**
 * Every Slack write goes through the outbox. Refreshes of one message coalesce: at most one send runs
 * per message and one waits, which renders the latest state when it runs.
 */
export class Outbox {
  constructor(
    private readonly queue: Queue,
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private refresh(job: OutboxJob, id: string, delay = 0) {
    return this.queue.add(job.kind, job, { deduplication: { id, keepLastIfActive: true }, delay });
  }
  release = (releaseId: string) =>
    this.refresh({ kind: 'release', releaseId }, `release-${releaseId}`).then(() => {});
  /** `delay` lets a new alert wait a moment: if its group turns into a storm meanwhile, it joins the summary. */
  alert = (fingerprint: string, delay = 0) =>
    this.refresh({ kind: 'alert', fingerprint }, `alert-${fingerprint}`, delay).then(() => {});
  alertGroup = async (groupId: string) => {
    await this.refresh({ kind: 'alert-group', groupId }, `alert-group-${groupId}`);
    await this.refresh({ kind: 'alert-group-thread', groupId }, `alert-group-thread-${groupId}`);
  };
  /** `key` makes it once-only: the job id while it is queued, then the post's own key (found in the channel). */
  checklistPost = (checklistId: string, channel: string, key?: string) =>
    this.queue
      .add(
        'checklist-post',
        { kind: 'checklist-post', checklistId, channel },
        key ? { jobId: `checklist-post-${key}` } : {},
      )
      .then(() => {});
  checklistRefresh = (checklistId: string) =>
    this.refresh({ kind: 'checklist-refresh', checklistId }, `checklist-${checklistId}`).then(() => {});
  /** A plain message; `key` makes it once-only (e.g. one digest a day). */
  text = (channel: string, text: string, key?: string) =>
    this.queue
      .add('text', { kind: 'text', channel, text }, key ? { jobId: `text-${key}` } : {})
      .then(() => {});
  home = (userId: string) => this.refresh({ kind: 'home', userId }, `home-${userId}`).then(() => {});
  /**
   * A reply in an alert's thread; `key` makes it once-only (e.g. one per escalation). Replies are
   * kept in order and one job posts them one at a time, so a retried send never overtakes.
   */
  alertThread = async (fingerprint: string, text: string, key: string) => {
    const k = threadKeys(this.prefix, fingerprint);
    await this.redis.eval(APPEND_ONCE, 2, k.keys, k.replies, key, text, THREAD_TTL_SEC);
    await this.refresh({ kind: 'alert-thread-drain', fingerprint }, `alert-thread-${fingerprint}`);
  };
}

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

class Wait extends Error {
  constructor(readonly until: number) {
    super('channel budget');
  }
}

export function startOutboxWorker(deps: OutboxDeps): Worker {
  /** Makes one Slack call inside its budget: a reserved slot, and Retry-After honoured for everyone. */
  const withinBudget = async <T>(
    job: Job,
    scope: string,
    limit: Limit,
    call: () => Promise<T>,
    method: string,
  ): Promise<T> => {
    // A slot is for the scope it was reserved in (a job may call history, then post).
    const data = job.data as { slot?: number; slotScope?: string };
    const reserved = data.slotScope === undefined || data.slotScope === scope ? data.slot : undefined;
    const slot = reserved ?? (await deps.budget.reserve(scope, limit));
    if (slot > Date.now() + 5) {
      await job.updateData({ ...job.data, slot, slotScope: scope });
      throw new Wait(slot);
    }
    if (reserved !== undefined) {
      await job.updateData({ ...job.data, slot: undefined, slotScope: undefined });
      // A 429 that came after this slot was reserved still binds it: wait, then queue up again.
      const blocked = await deps.budget.blockedUntil(scope);
      if (blocked > Date.now()) throw new Wait(blocked);
    }
    try {
      const out = await call();
      deps.metrics.slackCalls.inc({ method, result: 'ok' });
      return out;
    } catch (err) {
      if ((err as { code?: string }).code === ErrorCode.RateLimitedError) {
        deps.metrics.slackCalls.inc({ method, result: 'ratelimited' });
        throw new Wait(await deps.budget.block(scope, (err as WebAPIRateLimitedError).retryAfter));
      }
      deps.metrics.slackCalls.inc({ method, result: 'error' });
      throw err;
    }
  };
  /**
   * Posts once per `key`: the message carries the key as metadata, and a post attempted before
   * (whose answer never came: a timeout, a crash) is looked up in the channel or thread first.
   */
  const post = async (
    job: Job,
    channel: string,
    args: { text: string; blocks?: KnownBlock[]; thread_ts?: string },
    key: string,
  ) => {
    const marker = `${deps.prefix}:data:slack-attempt:${key}`;
    const since = Number((await deps.connection.get(marker)) ?? 0);
    if (since) {
      const found = await findPosted(job, channel, args.thread_ts, key, since);
      if (found) return found;
    }
    return withinBudget(
      job,
      `post:${channel}`,
      POST_LIMIT,
      async () => {
        const first =
          (await deps.connection.set(marker, String(Date.now()), 'EX', ATTEMPT_TTL_SEC, 'NX')) === 'OK';
        try {
          const res = await deps.client.chat.postMessage({
            channel,
            ...args,
            metadata: { event_type: METADATA_TYPE, event_payload: { key } },
          });
          return { channel: res.channel ?? channel, ts: res.ts as string };
        } catch (err) {
          // Refused outright (429, ok:false): nothing landed, so the next attempt need not look.
          const code = (err as { code?: string }).code;
          if (first && (code === ErrorCode.RateLimitedError || code === ErrorCode.PlatformError))
            await deps.connection.del(marker);
          throw err;
        }
      },
      'chat.postMessage',
    );
  };
  /** The message posted with `key` since `since` (ms), if it landed: newest pages first, at most 10. */
  const findPosted = async (
    job: Job,
    channel: string,
    threadTs: string | undefined,
    key: string,
    since: number,
  ): Promise<{ channel: string; ts: string } | undefined> => {
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const method = threadTs ? 'conversations.replies' : 'conversations.history';
      const res = await withinBudget(
        job,
        `method:${method}`,
        HISTORY_LIMIT,
        () => {
          const q = {
            channel,
            oldest: ((since - 5_000) / 1000).toFixed(6),
            include_all_metadata: true,
            limit: 200,
            cursor,
          };
          return threadTs
            ? deps.client.conversations.replies({ ...q, ts: threadTs })
            : deps.client.conversations.history(q);
        },
        method,
      );
      const hit = res.messages?.find(
        (m) =>
          m.metadata?.event_type === METADATA_TYPE &&
          (m.metadata.event_payload as { key?: unknown } | undefined)?.key === key,
      );
      if (hit?.ts) return { channel, ts: hit.ts };
      cursor = res.response_metadata?.next_cursor || undefined;
      if (!res.has_more || !cursor) return undefined;
    }
    return undefined;
  };
  const update = async (
    job: Job,
    m: { channel: string; ts: string },
    args: { text: string; blocks?: KnownBlock[] },
  ) => {
    await withinBudget(
      job,
      'method:chat.update',
      UPDATE_LIMIT,
      () => deps.client.chat.update({ channel: m.channel, ts: m.ts, ...args }),
      'chat.update',
    );
  };

  const rollbackTarget = async (labels: Record<string, string>) => {
    const environment = labels[deps.config.alerts.environmentLabel];
    const service = labels[deps.config.alerts.serviceLabel];
    if (!environment || !service || !deps.config.environments[environment]?.services[service])
      return undefined;
    const state = await deps.states.get(environment, service);
    if (state.inFlight) return { environment, service };
    const [last] = await deps.releases.history(environment, service, 1);
    const recent =
      last &&
      TERMINAL.has(last.status) &&
      (last.finishedAt ?? 0) > Date.now() - deps.config.alerts.rollbackWindow;
    return recent ? { environment, service } : undefined;
  };

  const process = async (data: OutboxJob, job: Job): Promise<void> => {
    switch (data.kind) {
      case 'release': {
        const r = await deps.releases.get(data.releaseId);
        if (!r) return;
        const view = renderRelease(r);
        if (r.message) return update(job, r.message, view);
        const m = await post(job, r.channel, view, `release:${r.id}`);
        await deps.releases.update(r.id, (rel) => (rel.message ? undefined : { ...rel, message: m }));
        return;
      }
      case 'alert': {
        const a = await deps.alerts.get(data.fingerprint);
        if (!a || a.groupId) return;
        const view = renderAlert(a, { now: Date.now(), rollback: await rollbackTarget(a.labels) });
        if (a.message) return update(job, a.message, view);
        const m = await post(job, a.channel, view, `alert:${a.fingerprint}:${a.firstSeen}`);
        await deps.alerts.mutate(a.fingerprint, (cur) =>
          cur && !cur.message ? { ...cur, message: m } : undefined,
        );
        return;
      }
      case 'alert-group': {
        const g = await deps.alerts.getGroup(data.groupId);
        if (!g) return;
        const view = renderGroup(g, Date.now());
        if (g.message) return update(job, g.message, view);
        const m = await post(job, g.channel, view, `group:${g.id}`);
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
          await post(
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
        const m = await post(job, data.channel, view, `checklist:${job.id}`);
        await deps.checklists.addMessage(data.checklistId, m.channel, m.ts);
        return;
      }
      case 'checklist-refresh': {
        if (!deps.checklists) return;
        const view = await deps.checklists.render(data.checklistId);
        for (const m of await deps.checklists.messages(data.checklistId)) {
          await update(job, m, view).catch((err: Error) => {
            if (err instanceof Wait) throw err;
            deps.logger.warn({ err: err.message, ts: m.ts }, 'Could not refresh a checklist message');
          });
        }
        return;
      }
      case 'text':
        await post(job, data.channel, { text: data.text }, `text:${job.id}`);
        return;
      case 'home': {
        if (!deps.home) return;
        const view = await deps.home(data.userId);
        await withinBudget(
          job,
          'method:views.publish',
          HOME_LIMIT,
          () => deps.client.views.publish({ user_id: data.userId, view }),
          'views.publish',
        );
        return;
      }
      case 'alert-thread': {
        const a = await deps.alerts.get(data.fingerprint);
        if (!a) return;
        const parent =
          a.message ?? (a.groupId ? (await deps.alerts.getGroup(a.groupId))?.message : undefined);
        if (!parent) throw new Wait(Date.now() + 500);
        await post(job, parent.channel, { text: data.text, thread_ts: parent.ts }, `thread:${job.id}`);
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
          await post(
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
    OUTBOX_QUEUE,
    async (job: Job, token?: string) => {
      const parsed = OutboxJob.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError('malformed outbox job');
      try {
        await process(parsed.data, job);
      } catch (err) {
        if (err instanceof Wait) {
          // Wait for the reserved slot or Slack's Retry-After without holding a worker.
          await job.moveToDelayed(err.until, token);
          throw new DelayedError();
        }
        throw err;
      }
    },
    { connection: deps.connection, prefix: deps.prefix, concurrency: 16, ...lockOptions(deps.config) },
  );
  worker.on('failed', (job, err) => {
    deps.metrics.slackCalls.inc({ method: 'outbox', result: 'failed' });
    deps.logger.warn({ jobId: job?.id, err: err.message }, 'Slack outbox send failed');
  });
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'Slack outbox worker error'));
  return worker;
}
