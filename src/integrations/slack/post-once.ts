import type { KnownBlock } from '@slack/types';
import { ErrorCode, type WebAPIRateLimitedError, type WebClient } from '@slack/web-api';
import type { Redis } from 'ioredis';
import { FlightdeckError } from '../../errors.js';
import type { Metrics } from '../../observability/metrics.js';
import { type ChannelBudget, HISTORY_LIMIT, type Limit, POST_LIMIT, UPDATE_LIMIT } from './channel-budget.js';

/** Marks every post so that one which may have landed (timeout, crash after sending) can be found. */
const METADATA_TYPE = 'flightdeck_outbox';
const ATTEMPT_TTL_SEC = 7 * 86_400;

/** Thrown when a send must wait for a slot further than NEAR_MS or for Slack's Retry-After; the caller delays the job. */
export class Wait extends Error {
  constructor(readonly until: number) {
    super('channel budget');
  }
}

/**
 * Slack's answers that no retry changes: the channel or message is gone, the app is not in the
 * channel, the content is refused. A send that meets one fails at once (no backoff for days).
 */
export const PERMANENT_ERRORS = new Set([
  'channel_not_found',
  'message_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
  'no_text',
  'too_many_attachments',
  'cant_update_message',
  'edit_window_closed',
  'user_not_found',
  'user_not_visible',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'missing_scope',
  'restricted_action',
]);

/** Slack refused a send for good (see PERMANENT_ERRORS). */
export class SlackPermanentError extends FlightdeckError {
  constructor(
    readonly method: string,
    readonly slackError: string,
  ) {
    super('slack_permanent', `Slack refused ${method}: ${slackError} (not retried)`, false);
  }
}

/** The Slack error code of a platform error (HTTP 200, ok:false) that no retry fixes. */
function permanentError(err: unknown): string | undefined {
  const e = err as { code?: string; data?: { error?: unknown } };
  if (e.code !== ErrorCode.PlatformError || typeof e.data?.error !== 'string') return undefined;
  return PERMANENT_ERRORS.has(e.data.error) ? e.data.error : undefined;
}

/** The job a send belongs to: a reserved slot is kept in its data, so it survives the job's delay. */
export interface SendJob {
  readonly id?: string;
  readonly data: unknown;
  updateData(data: unknown): Promise<void>;
}

/**
 * How near a slot is waited for in the process rather than by delaying the job: a delay costs job
 * writes and a wake-up by BullMQ's scheduler (seconds on a busy machine), once per call past the
 * burst. Slots are `interval` apart, so at most about NEAR_MS / interval jobs per scope hold a worker
 * this way; the others are delayed.
 */
export const NEAR_MS = 2_000;

/** The sender's time, replaceable in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}
const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Slack writes within the per-channel and per-method budgets, each post once per key. A slot within
 * NEAR_MS is slept for; a later one throws `Wait`, so a job waiting long for its turn holds no worker.
 */
export class SlackSender {
  private readonly clock: Clock;

  constructor(
    private readonly deps: {
      client: WebClient;
      /** Where attempt markers are kept. */
      redis: Redis;
      prefix: string;
      budget: Pick<ChannelBudget, 'reserve' | 'blockedUntil' | 'block'>;
      metrics: Metrics;
      clock?: Clock;
    },
  ) {
    this.clock = deps.clock ?? realClock;
  }

  /** Makes one Slack call inside its budget: a reserved slot, and Retry-After honoured for everyone. */
  async withinBudget<T>(
    job: SendJob,
    scope: string,
    limit: Limit,
    call: () => Promise<T>,
    method: string,
  ): Promise<T> {
    // A slot is for the scope it was reserved in (a job may call history, then post).
    const data = job.data as { slot?: number; slotScope?: string };
    const reserved = data.slotScope === undefined || data.slotScope === scope ? data.slot : undefined;
    const slot = reserved ?? (await this.deps.budget.reserve(scope, limit));
    if (slot > this.clock.now() + NEAR_MS) {
      await job.updateData({ ...(job.data as object), slot, slotScope: scope });
      throw new Wait(slot);
    }
    if (reserved !== undefined)
      await job.updateData({ ...(job.data as object), slot: undefined, slotScope: undefined });
    const early = slot - this.clock.now();
    if (early > 0) await this.clock.sleep(early);
    if (reserved !== undefined || early > 0) {
      // A 429 that came after this slot was reserved still binds it: wait, then queue up again.
      const blocked = await this.deps.budget.blockedUntil(scope);
      if (blocked > this.clock.now()) throw new Wait(blocked);
    }
    try {
      const out = await call();
      this.deps.metrics.slackCalls.inc({ method, result: 'ok' });
      return out;
    } catch (err) {
      if ((err as { code?: string }).code === ErrorCode.RateLimitedError) {
        this.deps.metrics.slackCalls.inc({ method, result: 'ratelimited' });
        throw new Wait(await this.deps.budget.block(scope, (err as WebAPIRateLimitedError).retryAfter));
      }
      const slackError = permanentError(err);
      if (slackError) {
        this.deps.metrics.slackCalls.inc({ method, result: 'permanent' });
        throw new SlackPermanentError(method, slackError);
      }
      this.deps.metrics.slackCalls.inc({ method, result: 'error' });
      throw err;
    }
  }
  /**
   * Posts once per `key`: the message carries the key as metadata, and a post attempted before
   * (whose answer never came: a timeout, a crash) is looked up in the channel or thread first.
   */
  async post(
    job: SendJob,
    channel: string,
    args: { text: string; blocks?: KnownBlock[]; thread_ts?: string },
    key: string,
  ): Promise<{ channel: string; ts: string }> {
    const marker = `${this.deps.prefix}:data:slack-attempt:${key}`;
    const since = Number((await this.deps.redis.get(marker)) ?? 0);
    if (since) {
      const found = await this.findPosted(job, channel, args.thread_ts, key, since);
      if (found) return found;
    }
    return this.withinBudget(
      job,
      `post:${channel}`,
      POST_LIMIT,
      async () => {
        const first =
          (await this.deps.redis.set(marker, String(Date.now()), 'EX', ATTEMPT_TTL_SEC, 'NX')) === 'OK';
        try {
          const res = await this.deps.client.chat.postMessage({
            channel,
            ...args,
            metadata: { event_type: METADATA_TYPE, event_payload: { key } },
          });
          return { channel: res.channel ?? channel, ts: res.ts as string };
        } catch (err) {
          // Refused outright (429, ok:false): nothing landed, so the next attempt need not look.
          const code = (err as { code?: string }).code;
          if (first && (code === ErrorCode.RateLimitedError || code === ErrorCode.PlatformError))
            await this.deps.redis.del(marker);
          throw err;
        }
      },
      'chat.postMessage',
    );
  }
  /** The message posted with `key` since `since` (ms), if it landed: newest pages first, at most 10. */
  private async findPosted(
    job: SendJob,
    channel: string,
    threadTs: string | undefined,
    key: string,
    since: number,
  ): Promise<{ channel: string; ts: string } | undefined> {
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const method = threadTs ? 'conversations.replies' : 'conversations.history';
      const res = await this.withinBudget(
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
            ? this.deps.client.conversations.replies({ ...q, ts: threadTs })
            : this.deps.client.conversations.history(q);
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
  }
  async update(
    job: SendJob,
    m: { channel: string; ts: string },
    args: { text: string; blocks?: KnownBlock[] },
  ): Promise<void> {
    await this.withinBudget(
      job,
      'method:chat.update',
      UPDATE_LIMIT,
      () => this.deps.client.chat.update({ channel: m.channel, ts: m.ts, ...args }),
      'chat.update',
    );
  }
}
