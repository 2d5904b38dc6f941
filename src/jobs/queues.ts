import { type DefaultJobOptions, Queue, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FlightdeckConfig } from '../config/schema.js';

/** Every queue flightdeck runs, by the name BullMQ stores it under. */
export const QUEUE = {
  commands: 'commands',
  releases: 'releases',
  rollbacks: 'rollbacks',
  outbox: 'slack-outbox',
  alerts: 'alerts',
  checklists: 'checklists',
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

/** Retries and history of each queue's jobs. */
const JOB_OPTIONS: Record<QueueName, DefaultJobOptions> = {
  // Jobs keep a day of history for `status` and debugging.
  commands: {
    attempts: 3,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 86_400, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  },
  // The release machine retries its own steps; these attempts only cover Redis or process trouble.
  releases: {
    attempts: 20,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 30 * 86_400, count: 5_000 },
    removeOnFail: { age: 30 * 86_400 },
  },
  // Rollbacks have their own queue and workers, so they never wait behind release steps.
  rollbacks: {
    priority: 1,
    attempts: 5,
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: 7 * 86_400, count: 1_000 },
    removeOnFail: { age: 30 * 86_400 },
  },
  // 15 attempts, 1 s doubling: the last retry comes about 4.5 h after the first try (2^14 s in all),
  // so a send is given up within the day; Slack's permanent errors fail at once. Waits for a rate
  // limit (the channel budget, Retry-After) are delays, not attempts.
  'slack-outbox': {
    attempts: 15,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: true,
    removeOnFail: { count: 5_000 },
  },
  alerts: {
    attempts: 10,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 86_400, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  },
  checklists: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { age: 7 * 86_400, count: 1_000 },
    removeOnFail: { age: 7 * 86_400 },
  },
};

/**
 * How many jobs each worker runs at once, and how often a job may be taken over from a dead worker
 * before it counts as failed: release jobs live for weeks (soaks, approvals) and survive many restarts.
 */
const WORKER: Record<QueueName, { concurrency: number; maxStalledCount: number }> = {
  commands: { concurrency: 8, maxStalledCount: 10 },
  releases: { concurrency: 32, maxStalledCount: 50 },
  rollbacks: { concurrency: 8, maxStalledCount: 50 },
  'slack-outbox': { concurrency: 16, maxStalledCount: 10 },
  alerts: { concurrency: 4, maxStalledCount: 10 },
  checklists: { concurrency: 2, maxStalledCount: 10 },
};

export type Queues = Record<keyof typeof QUEUE, Queue>;

/**
 * The producer side of every queue, on the fail-fast connection. Queue errors are not logged here:
 * Redis trouble surfaces through /readyz and through the callers' own enqueue errors.
 */
export function createQueues(connection: Redis, prefix: string): Queues {
  const make = (name: QueueName) => {
    const queue = new Queue(name, { connection, prefix, defaultJobOptions: JOB_OPTIONS[name] });
    queue.on('error', () => {});
    return queue;
  };
  return {
    commands: make(QUEUE.commands),
    releases: make(QUEUE.releases),
    rollbacks: make(QUEUE.rollbacks),
    outbox: make(QUEUE.outbox),
    alerts: make(QUEUE.alerts),
    checklists: make(QUEUE.checklists),
  };
}

/**
 * A worker's options: every worker takes over a crashed replica's jobs after `jobs.lockDuration`
 * (the lock lapses, the next stall check finds the job).
 */
export function workerOptions(
  name: QueueName,
  deps: { connection: Redis; prefix: string; config: FlightdeckConfig },
): WorkerOptions {
  const ms = deps.config.jobs.lockDuration;
  return {
    connection: deps.connection,
    prefix: deps.prefix,
    ...WORKER[name],
    lockDuration: ms,
    stalledInterval: ms,
  };
}
