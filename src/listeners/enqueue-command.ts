import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { CommandJob } from '../commands/schema.js';
import type { FlightdeckConfig } from '../config/schema.js';
import { luaScript, withTimeout } from '../integrations/redis.js';
import { failpoint } from '../observability/failpoints.js';
import { rollbackJobId, rollbackJobs } from '../releases/rollback-lane.js';

/** The enqueue took longer than its bound: the job may or may not be in Redis. */
export class EnqueueUnconfirmed extends Error {}

/** How long a request id is remembered: Slack retries a delivery within minutes, never a day later. */
const SEEN_TTL_SEC = 86_400;

/**
 * Claims the request id and, only for the delivery that claimed it, appends the "accepted" audit
 * entry: a retried delivery is neither reported "queued" nor audited twice.
 */
const CLAIM_AND_AUDIT = `
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
  return 1
end
return 0`;
const claimAndAudit = luaScript(2, CLAIM_AND_AUDIT);

/** One job of a request: the command lane's job, or the rollback lane's jobs (one per service). */
export interface LaneJob {
  queue: Queue;
  name: string;
  data: object;
  jobId: string;
}

/**
 * Queues a request's jobs once (Slack may deliver the same request again), then claims its request
 * id and audits it. Each job id derives from the request id, and BullMQ's deduplication keeps that
 * id for a day, so the add itself is the once-only step, atomic in Redis: a late duplicate whose job
 * BullMQ has already removed is not queued again either. The claim only decides which delivery
 * reports "queued" and is audited; nothing reads it before the add any more, so it goes out together
 * with the adds on the same connection (auto-pipelined with other requests' commands): one wait on
 * the ack path, where there were four round trips one after another. Bounded, so a dead Redis fails
 * fast with a clear answer.
 */
export async function enqueueOnce(
  deps: { redis: Redis; prefix: string; audit: Pick<AuditLog, 'key' | 'maxLen'> },
  request: { requestId: string; receivedAt: string },
  jobs: LaneJob[],
  accepted: Omit<AuditEntry, 'at' | 'outcome' | 'detail'>,
): Promise<'queued' | 'duplicate'> {
  const entry: AuditEntry = {
    at: request.receivedAt,
    ...accepted,
    outcome: 'accepted',
    detail: `queued ${jobs.map((j) => j.jobId).join(', ')}`,
  };
  const added = Promise.all(
    jobs.map((j) =>
      j.queue.add(j.name, j.data, {
        jobId: j.jobId,
        deduplication: { id: j.jobId, ttl: SEEN_TTL_SEC * 1000 },
      }),
    ),
  );
  // A claim whose add failed marks a request seen that is not queued: Slack's retry of it is then
  // answered as a duplicate, but its add still runs (and queues it), so nothing is lost.
  const claimed = claimAndAudit(
    deps.redis,
    `${deps.prefix}:data:seen:${request.requestId}`,
    deps.audit.key,
    String(SEEN_TTL_SEC),
    String(deps.audit.maxLen),
    ...Object.entries(entry).flatMap(([k, v]) => [k, String(v)]),
  ).catch(() => 1); // the jobs are queued: a lost claim only risks a second "accepted" audit line
  try {
    await withTimeout(added, 2_000, 'Redis');
  } catch (err) {
    // A timeout is not a refusal: the add may still land (Redis slow, not gone).
    if (/timed out/.test((err as Error).message)) throw new EnqueueUnconfirmed((err as Error).message);
    throw err;
  }
  failpoint('after:enqueue');
  return (await claimed) === 1 ? 'queued' : 'duplicate';
}

/**
 * Which lane a request's work goes to: a /rollback that needs no confirmation goes straight to the
 * rollback queue (one job per service), where a worker is already waiting, instead of through the
 * command queue and a second hop; everything else is one command job.
 */
export function laneJobs(
  deps: { queue: Queue; rollbacks: Queue; config: FlightdeckConfig },
  jobName: string,
  job: CommandJob,
): LaneJob[] {
  const p = job.parsed;
  const rollbacks =
    p.command === 'rollback' && p.action !== 'help'
      ? rollbackJobs(p, deps.config, {
          userId: job.user.id,
          requestId: job.requestId,
          receivedAt: Date.parse(job.receivedAt),
          reply: { responseUrl: job.responseUrl, channelId: job.channelId, userId: job.user.id },
        })
      : undefined;
  if (rollbacks && rollbacks.length > 0)
    return rollbacks.map((r) => ({
      queue: deps.rollbacks,
      name: 'rollback',
      data: r,
      jobId: rollbackJobId(r) ?? job.requestId,
    }));
  return [{ queue: deps.queue, name: jobName, data: job, jobId: job.requestId }];
}
