import { ErrorCode, type WebClient } from '@slack/web-api';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { type Limit, UPDATE_LIMIT } from '../../src/integrations/slack/channel-budget.js';
import {
  type Clock,
  NEAR_MS,
  type SendJob,
  SlackSender,
  Wait,
} from '../../src/integrations/slack/post-once.js';
import { createMetrics } from '../../src/observability/metrics.js';

/** Time that passes only when the sender sleeps (or the test moves it). */
class FakeClock implements Clock {
  t = 1_000_000;
  readonly sleeps: number[] = [];
  now = () => this.t;
  sleep = async (ms: number) => {
    this.sleeps.push(ms);
    this.t += ms;
  };
}

/** ChannelBudget's reservation rule (GCRA, src/integrations/slack/channel-budget.ts) in memory, on the fake clock. */
class FakeBudget {
  private readonly tat = new Map<string, number>();
  private readonly blocked = new Map<string, number>();
  reservations = 0;
  constructor(private readonly clock: FakeClock) {}
  async reserve(scope: string, limit: Limit) {
    this.reservations += 1;
    const now = this.clock.now();
    const blocked = this.blocked.get(scope) ?? 0;
    const tat = Math.max(this.tat.get(scope) ?? 0, now, blocked);
    this.tat.set(scope, tat + limit.interval);
    return Math.max(now, tat - (limit.burst - 1) * limit.interval, blocked);
  }
  async blockedUntil(scope: string) {
    return this.blocked.get(scope) ?? 0;
  }
  async block(scope: string, retryAfterSec: number) {
    const until = this.clock.now() + Math.max(1, retryAfterSec) * 1_000;
    this.blocked.set(scope, until);
    return until;
  }
}

/** The part of a BullMQ job the sender uses: its data, where a reserved slot is kept across a delay. */
const job = (): SendJob & { data: Record<string, unknown> } => {
  const j = {
    id: '1',
    data: { kind: 'checklist-refresh' } as Record<string, unknown>,
    updateData: async (d: unknown) => {
      j.data = d as Record<string, unknown>;
    },
  };
  return j;
};

function setup() {
  const clock = new FakeClock();
  const budget = new FakeBudget(clock);
  const sender = new SlackSender({
    client: {} as WebClient,
    redis: {} as Redis,
    prefix: 'fdunit',
    budget,
    metrics: createMetrics(),
    clock,
  });
  const calls: number[] = [];
  const send = (j: SendJob, limit: Limit = UPDATE_LIMIT) =>
    sender.withinBudget(
      j,
      'method:chat.update',
      limit,
      async () => {
        calls.push(clock.now());
        return 'ok';
      },
      'chat.update',
    );
  return { clock, budget, sender, calls, send };
}

describe('SlackSender: waiting for a budget slot', () => {
  it('past the burst, each call waits in the process for its slot: no job delay per call, the pace kept', async () => {
    const { clock, calls, send } = setup();
    const j = job();
    // A checklist refresh of 25 messages in one run, as when a checklist outgrows its cap.
    for (let i = 0; i < 25; i++) await send(j);
    expect(calls).toHaveLength(25);
    expect(clock.sleeps).toHaveLength(25 - UPDATE_LIMIT.burst);
    // Never faster than the budget: after the burst, one interval between calls.
    const gaps = calls
      .slice(UPDATE_LIMIT.burst)
      .map((t, i) => t - (calls[UPDATE_LIMIT.burst - 1 + i] as number));
    expect(gaps.every((g) => g >= UPDATE_LIMIT.interval)).toBe(true);
    expect(j.data.slot).toBeUndefined();
  });

  it('a slot further than NEAR_MS delays the job (Wait), kept in its data; the run after the delay uses that slot', async () => {
    const { clock, budget, calls, send } = setup();
    const slow: Limit = { interval: NEAR_MS + 1_000, burst: 1 };
    await send(job(), slow);
    const j = job();
    const err = await send(j, slow).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Wait);
    const until = (err as Wait).until;
    expect(until).toBe(clock.now() + slow.interval);
    expect(j.data).toMatchObject({ slot: until, slotScope: 'method:chat.update' });
    expect(calls).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);

    // BullMQ brings the job back a little early: the rest is slept, not delayed again.
    clock.t = until - 300;
    const before = budget.reservations;
    await send(j, slow);
    expect(budget.reservations).toBe(before);
    expect(clock.sleeps).toEqual([300]);
    expect(calls.at(-1)).toBe(until);
    expect(j.data.slot).toBeUndefined();
  });

  it("a 429 heard while sleeping for a slot binds it: no call before Slack's Retry-After has passed", async () => {
    const { clock, budget, sender, calls } = setup();
    const limit: Limit = { interval: 1_000, burst: 1 };
    const call = async () => {
      calls.push(clock.now());
      return 'ok';
    };
    await sender.withinBudget(job(), 'post:C1', limit, call, 'chat.postMessage');
    // Another replica's call is refused with Retry-After: 5 while this one sleeps.
    clock.sleep = async (ms: number) => {
      clock.t += ms;
      await budget.block('post:C1', 5);
    };
    const err = await sender
      .withinBudget(job(), 'post:C1', limit, call, 'chat.postMessage')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Wait);
    expect((err as Wait).until).toBe(clock.now() + 5_000);
    expect(calls).toHaveLength(1);
  });

  it('a 429 from Slack delays the job until its Retry-After, for every sender of the scope', async () => {
    const { clock, budget, sender } = setup();
    const limited = Object.assign(new Error('rate limited'), {
      code: ErrorCode.RateLimitedError,
      retryAfter: 3,
    });
    const err = await sender
      .withinBudget(
        job(),
        'method:chat.update',
        UPDATE_LIMIT,
        async () => {
          throw limited;
        },
        'chat.update',
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Wait);
    expect((err as Wait).until).toBe(clock.now() + 3_000);
    expect(await budget.blockedUntil('method:chat.update')).toBe(clock.now() + 3_000);
    expect(await budget.reserve('method:chat.update', UPDATE_LIMIT)).toBe(clock.now() + 3_000);
  });
});
