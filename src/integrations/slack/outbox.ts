import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/** A reserved send time (from the budget) survives the job's delay. */
export const Slot = { slot: z.number().optional(), slotScope: z.string().optional() };

export const OutboxJob = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('release'), releaseId: z.string(), ...Slot }),
  z.object({ kind: z.literal('alert'), fingerprint: z.string(), ...Slot }),
  z.object({ kind: z.literal('alert-group'), groupId: z.string(), ...Slot }),
  /** Lists a storm's alerts in its thread, 100 a message, resuming where it stopped. */
  z.object({ kind: z.literal('alert-group-thread'), groupId: z.string(), ...Slot }),
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
export const threadKeys = (prefix: string, fingerprint: string) => {
  const base = `${prefix}:data:alert-thread:${fingerprint}`;
  return { keys: `${base}:keys`, replies: `${base}:replies`, posted: `${base}:posted` };
};
export const THREAD_TTL_SEC = 30 * 86_400;
export const APPEND_ONCE = `
if redis.call('sadd', KEYS[1], ARGV[1]) == 1 then redis.call('rpush', KEYS[2], ARGV[2]) end
redis.call('expire', KEYS[1], ARGV[3]); redis.call('expire', KEYS[2], ARGV[3])`;

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
