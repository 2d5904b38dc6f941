import type { Redis } from 'ioredis';

// Token bucket per channel in Redis, shared by every replica; a 429's Retry-After blocks the channel.
const TAKE = `
local now = tonumber(ARGV[1]); local rate = tonumber(ARGV[2]); local burst = tonumber(ARGV[3])
local b = redis.call('hmget', KEYS[1], 'tokens', 'ts', 'blocked')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
local blocked = tonumber(b[3]) or 0
if now < blocked then return blocked - now end
tokens = math.min(burst, tokens + (now - ts) / 1000 * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('pexpire', KEYS[1], 120000)
return wait`;

/**
 * Slack allows about one chat.postMessage per second per channel, with short bursts. Every post goes
 * through `take`: 0 means go, otherwise wait that many milliseconds (the job is delayed, not slept).
 */
export class ChannelBudget {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly perSecond = 1,
    private readonly burst = 3,
  ) {}

  private key(channel: string) {
    return `${this.prefix}:data:slack-budget:${channel}`;
  }

  async take(channel: string): Promise<number> {
    return Number(await this.redis.eval(TAKE, 1, this.key(channel), Date.now(), this.perSecond, this.burst));
  }

  /** Slack said 429 with Retry-After: nobody posts to that channel before it has passed. */
  async block(channel: string, retryAfterSec: number): Promise<number> {
    const until = Date.now() + Math.max(1, retryAfterSec) * 1_000;
    await this.redis.hset(this.key(channel), 'blocked', String(until), 'tokens', '0', 'ts', String(until));
    await this.redis.pexpire(this.key(channel), 120_000);
    return until;
  }
}
