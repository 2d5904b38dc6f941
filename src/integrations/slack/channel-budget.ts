import type { Redis } from 'ioredis';
import { luaScript } from '../redis.js';

// Generic cell rate algorithm with reservations: every caller gets its own slot, in order, so no
// crowd of waiters wakes at once and nobody calls before Slack's Retry-After has passed.
const RESERVE = `
local now = tonumber(ARGV[1]); local interval = tonumber(ARGV[2]); local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('get', KEYS[1]) or '0')
local blocked = tonumber(redis.call('get', KEYS[2]) or '0')
tat = math.max(tat, now, blocked)
local slot = math.max(now, tat - (burst - 1) * interval, blocked)
redis.call('set', KEYS[1], tostring(tat + interval), 'PX', 600000)
return slot`;
const reserve = luaScript(2, RESERVE);

// A 429's Retry-After only ever extends the block: answers to calls sent together can come back
// in any order, and a shorter one read last must not cut short a longer one already recorded.
const BLOCK = `
local to = tonumber(ARGV[1])
local cur = tonumber(redis.call('get', KEYS[1]) or '0')
if to <= cur then return cur end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return to`;
const block = luaScript(1, BLOCK);

export interface Limit {
  /** Milliseconds between calls on average. */
  interval: number;
  burst: number;
}

/** chat.postMessage: about one per second per channel with short bursts (a little under, for clock skew). */
export const POST_LIMIT: Limit = { interval: 1_100, burst: 3 };
/** chat.update is Tier 3: about 50 a minute for the workspace. */
export const UPDATE_LIMIT: Limit = { interval: 1_300, burst: 20 };
/** conversations.history and .replies are Tier 3: about 50 a minute. */
export const HISTORY_LIMIT: Limit = { interval: 1_300, burst: 20 };
/** views.publish is Tier 4: about 100 a minute. */
export const HOME_LIMIT: Limit = { interval: 700, burst: 20 };

/**
 * Slack's rate limits as a budget in Redis, shared by every replica: `reserve` hands out the time
 * at which the caller may make its call; `block` records a 429's Retry-After for everyone.
 */
export class ChannelBudget {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private keys(scope: string): [string, string] {
    return [`${this.prefix}:data:slack-budget:${scope}`, `${this.prefix}:data:slack-budget:${scope}:blocked`];
  }

  async reserve(scope: string, limit: Limit): Promise<number> {
    const [tat, blocked] = this.keys(scope);
    return Number(await reserve(this.redis, tat, blocked, Date.now(), limit.interval, limit.burst));
  }

  /** Until when a 429 stops everyone in this scope (0 if it does not). */
  async blockedUntil(scope: string): Promise<number> {
    const [, blocked] = this.keys(scope);
    return Number((await this.redis.get(blocked)) ?? 0);
  }

  /** Records a 429's Retry-After for the scope; returns until when the scope is blocked. */
  async block(scope: string, retryAfterSec: number): Promise<number> {
    const ms = Math.max(1, retryAfterSec) * 1_000;
    const [, blocked] = this.keys(scope);
    return Number(await block(this.redis, blocked, Date.now() + ms, ms + 60_000));
  }
}
