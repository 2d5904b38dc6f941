import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { luaScript } from '../redis.js';

/** A reserved send time (from the budget) survives the job's delay. */
export const Slot = { slot: z.number().optional(), slotScope: z.string().optional() };

export const OutboxJob = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('release'), releaseId: z.string(), ...Slot }),
  /** The one message of a `/deploy all` (src/releases/batch-message.ts). */
  z.object({ kind: z.literal('batch'), batchId: z.string(), ...Slot }),
  z.object({ kind: z.literal('alert'), fingerprint: z.string(), ...Slot }),
  z.object({ kind: z.literal('alert-group'), groupId: z.string(), ...Slot }),
  /** Lists a storm's alerts with their labels in its thread, up to 250 a reply, resuming where it stopped. */
  z.object({ kind: z.literal('alert-group-thread'), groupId: z.string(), ...Slot }),
  /** Posts an alert thread's pending replies, one at a time, in the order they were asked for. */
  z.object({ kind: z.literal('alert-thread-drain'), fingerprint: z.string(), ...Slot }),
  /** `checklistId` is a ref, `<rollout or release id>/<checklist>`; `threadTs` posts it in a thread. */
  z.object({
    kind: z.literal('checklist-post'),
    checklistId: z.string(),
    channel: z.string(),
    threadTs: z.string().optional(),
    ...Slot,
  }),
  /** Every message showing a checklist, re-rendered after a tick. */
  z.object({ kind: z.literal('checklist-refresh'), checklistId: z.string(), ...Slot }),
  z.object({ kind: z.literal('text'), channel: z.string(), text: z.string(), ...Slot }),
  /** A reply in a release message's thread (e.g. a release task's last log lines). */
  z.object({
    kind: z.literal('release-thread'),
    releaseId: z.string(),
    text: z.string(),
    /** Block Kit for the reply (e.g. the gates' chart); `text` is its fallback. */
    blocks: z.array(z.unknown()).optional(),
    ...Slot,
  }),
  z.object({ kind: z.literal('home'), userId: z.string(), ...Slot }),
  /** Something App Home shows changed: republish the Home of everyone who opened it lately. */
  z.object({ kind: z.literal('homes'), ...Slot }),
]);

/** Whose App Home is kept current: users who opened it within this long (at most HOME_VIEWERS of them). */
const HOME_VIEWER_MS = 7 * 86_400_000;
const HOME_VIEWERS = 200;
/** Changes within this long of each other republish each Home once. */
const HOMES_DEBOUNCE_MS = 1_000;
export type OutboxJob = z.infer<typeof OutboxJob>;

/** Redis keys of one alert thread's replies: once-only keys, the replies in order, how many are posted. */
export const threadKeys = (prefix: string, fingerprint: string) => {
  const base = `${prefix}:data:alert-thread:${fingerprint}`;
  return { keys: `${base}:keys`, replies: `${base}:replies`, posted: `${base}:posted` };
};
export const THREAD_TTL_SEC = 30 * 86_400;
export const APPEND_ONCE = `
if redis.call('sadd', KEYS[1], ARGV[1]) == 1 then redis.call('rpush', KEYS[2], ARGV[2]) end
redis.call('expire', KEYS[1], ARGV[3]); redis.call('expire', KEYS[2], ARGV[3])`;
const appendOnce = luaScript(2, APPEND_ONCE);

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

  /** `reschedule`: a refresh already waiting out a delay runs after this one's delay instead. */
  private refresh(job: OutboxJob, id: string, delay = 0, reschedule = false) {
    return this.queue.add(job.kind, job, {
      deduplication: { id, keepLastIfActive: true, ...(reschedule ? { reschedule: true } : {}) },
      delay,
    });
  }
  /**
   * A release changed: its message, and App Home (what runs where, releases in flight). `delay`
   * coalesces a batch member's refreshes (src/releases/batch-message.ts).
   */
  release = async (releaseId: string, opts: { delay?: number; prompt?: boolean } = {}) => {
    // `prompt`: now, even if an earlier refresh is waiting out a delay.
    await this.refresh({ kind: 'release', releaseId }, `release-${releaseId}`, opts.delay, opts.prompt);
    await this.homesChanged();
  };
  /** A release of a `/deploy all` changed: the batch's one message. */
  batch = (batchId: string) => this.refresh({ kind: 'batch', batchId }, `batch-${batchId}`).then(() => {});
  /** `delay` lets a new alert wait a moment: if its group turns into a storm meanwhile, it joins the summary. */
  alert = (fingerprint: string, delay = 0) =>
    this.refresh({ kind: 'alert', fingerprint }, `alert-${fingerprint}`, delay).then(() => {});
  alertGroup = async (groupId: string) => {
    await this.refresh({ kind: 'alert-group', groupId }, `alert-group-${groupId}`);
    await this.refresh({ kind: 'alert-group-thread', groupId }, `alert-group-thread-${groupId}`);
  };
  /** `key` makes it once-only: the job id while it is queued, then the post's own key (found in the channel). */
  checklistPost = (checklistId: string, channel: string, key?: string, threadTs?: string) =>
    this.queue
      .add(
        'checklist-post',
        { kind: 'checklist-post', checklistId, channel, ...(threadTs ? { threadTs } : {}) },
        key ? { jobId: `checklist-post-${key}` } : {},
      )
      .then(() => {});
  /** Every message showing a checklist instance (a ref); dedup ids take no '/': it becomes '~'. */
  checklistRefresh = async (checklistId: string) => {
    await this.refresh(
      { kind: 'checklist-refresh', checklistId },
      `checklist-${checklistId.replace('/', '~')}`,
    );
    // App Home shows each rollout's progress.
    await this.homesChanged();
  };
  /** A plain message; `key` makes it once-only (e.g. one digest a day). */
  text = (channel: string, text: string, key?: string) =>
    this.queue
      .add('text', { kind: 'text', channel, text }, key ? { jobId: `text-${key}` } : {})
      .then(() => {});
  /** `key` (no `:`) makes it once-only: the job id while queued, then the post's own key in the thread. */
  releaseThread = (releaseId: string, text: string, key: string, blocks?: unknown[]) =>
    this.queue
      .add(
        'release-thread',
        { kind: 'release-thread', releaseId, text, ...(blocks ? { blocks } : {}) },
        { jobId: `release-thread-${key}` },
      )
      .then(() => {});
  home = (userId: string) => this.refresh({ kind: 'home', userId }, `home-${userId}`).then(() => {});
  /** A user opened App Home: it is kept current for them from now on (see homesChanged). */
  homeViewed = async (userId: string) => {
    await this.redis
      .multi()
      .zadd(this.viewersKey, Date.now(), userId)
      // Bounded: the oldest viewers beyond the cap stop getting live updates (they refresh on open).
      .zremrangebyrank(this.viewersKey, 0, -(HOME_VIEWERS + 1))
      .exec();
    await this.home(userId);
  };
  /** One fan-out job per burst of changes (a release's steps, a batch, ticks). */
  homesChanged = () => this.refresh({ kind: 'homes' }, 'homes', HOMES_DEBOUNCE_MS).then(() => {});
  homeViewers = async (): Promise<string[]> =>
    this.redis.zrangebyscore(this.viewersKey, Date.now() - HOME_VIEWER_MS, '+inf');
  private get viewersKey() {
    return `${this.prefix}:data:home-viewers`;
  }
  /**
   * A reply in an alert's thread; `key` makes it once-only (e.g. one per escalation). Replies are
   * kept in order and one job posts them one at a time, so a retried send never overtakes.
   */
  alertThread = async (fingerprint: string, text: string, key: string) => {
    const k = threadKeys(this.prefix, fingerprint);
    await appendOnce(this.redis, k.keys, k.replies, key, text, THREAD_TTL_SEC);
    await this.refresh({ kind: 'alert-thread-drain', fingerprint }, `alert-thread-${fingerprint}`);
  };
}
