import type { KnownBlock } from '@slack/types';
import type { Redis } from 'ioredis';
import type { SendJob } from '../integrations/slack/post-once.js';
import { Wait } from '../integrations/slack/post-once.js';
import { BatchStore } from './batch-store.js';
import type { ReleaseStore } from './release-store.js';
import { renderBatch } from './render-batch.js';
import type { Release, ReleaseStatus } from './schema.js';

/**
 * How long a batch member's own message waits between refreshes: chat.update is one budget for the
 * workspace (Tier 3, about 50 a minute), so 50 releases refreshing at every step would queue the
 * batch message, the one people watch, behind a minute of their updates. Members together use at
 * most about half the budget (2.6 s × members), so the batch message stays live; each member's
 * message still ends on its final state (a refresh renders the latest state when it runs).
 */
export const memberRefreshMs = (members: number) =>
  members <= 1 ? 0 : Math.min(120_000, Math.round(members * 2_600));

/** A member's message in one of these states is refreshed at once. */
const PROMPT: ReadonlySet<ReleaseStatus> = new Set([
  'awaiting_approval',
  'queued',
  'paused',
  'rolling_back',
  'rolled_back',
  'failed',
  'rejected',
  'expired',
  'cancelled',
]);

/** If a batch message never got posted (its channel is gone, say), members post at the top level after this. */
const PARENT_WAIT_MS = 5 * 60_000;

/** What the publish of a release needs of the outbox. */
export interface BatchOutbox {
  release(releaseId: string, opts?: { delay?: number; prompt?: boolean }): Promise<void>;
  batch(batchId: string): Promise<void>;
}

/**
 * `ctx.publish`: a release's message, and its batch's message when it is part of one. A member's
 * first post goes at once (into the batch thread); its later refreshes coalesce over memberRefreshMs.
 */
export function publishRelease(deps: { outbox: BatchOutbox; releases: ReleaseStore; batches: BatchStore }) {
  return async (releaseId: string): Promise<void> => {
    const r = await deps.releases.get(releaseId);
    if (!r?.batch) return deps.outbox.release(releaseId);
    const size = await deps.batches.size(r.batch.id);
    await deps.outbox.batch(r.batch.id);
    // At once: its first post, and a state someone acts on or just acted on (approval, pause,
    // rollback). Steps moving, and completion, which the batch message shows, wait their turn.
    if (!r.message || PROMPT.has(r.status)) await deps.outbox.release(releaseId, { prompt: true });
    else await deps.outbox.release(releaseId, { delay: memberRefreshMs(size) });
  };
}

/**
 * Where a release's message is posted: a batch member's goes into the batch message's thread (one
 * post in the channel for the whole batch), once that message exists.
 */
export async function releaseMessagePlace(
  redis: Redis,
  prefix: string,
  r: Release,
  now = Date.now(),
): Promise<{ channel: string; threadTs?: string }> {
  if (!r.batch) return { channel: r.channel };
  const b = await new BatchStore(redis, prefix).get(r.batch.id);
  // No batch record (a release from before batches had one): as before, at the top level.
  if (!b) return { channel: r.channel };
  if (b.message) return { channel: b.message.channel, threadTs: b.message.ts };
  if (now - r.createdAt > PARENT_WAIT_MS) return { channel: r.channel };
  throw new Wait(now + 500); // the batch message goes first
}

/** The outbox's `batch` job: renders the batch as it is now, then posts or updates its message. */
export async function deliverBatch(
  deps: {
    redis: Redis;
    prefix: string;
    releases: ReleaseStore;
    sender: {
      post(
        job: SendJob,
        channel: string,
        args: { text: string; blocks?: KnownBlock[] },
        key: string,
      ): Promise<{ channel: string; ts: string }>;
      update(
        job: SendJob,
        m: { channel: string; ts: string },
        args: { text: string; blocks?: KnownBlock[] },
      ): Promise<void>;
    };
    /** The workspace's address, for links to each release's message; undefined leaves them out. */
    workspaceUrl: () => Promise<string | undefined>;
  },
  job: SendJob,
  batchId: string,
): Promise<void> {
  const batches = new BatchStore(deps.redis, deps.prefix);
  const b = await batches.get(batchId);
  if (!b) return;
  const ids = Object.entries(b.members);
  const records = await Promise.all(ids.map(([, id]) => deps.releases.get(id)));
  const members = new Map(ids.map(([svc], i) => [svc, records[i]]));
  const workspaceUrl = b.message ? await deps.workspaceUrl().catch(() => undefined) : undefined;
  const view = renderBatch(b, members, { workspaceUrl });
  if (b.message) return deps.sender.update(job, b.message, view);
  const m = await deps.sender.post(job, b.channel, view, `batch:${b.id}`);
  await batches.setMessage(b.id, m);
}
