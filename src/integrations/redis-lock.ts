import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FlightdeckError } from '../errors.js';
import { luaScript } from './redis.js';

const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const releaseLock = luaScript(1, RELEASE_SCRIPT);
const extendLock = luaScript(1, EXTEND_SCRIPT);

/** Another holder kept the lock past the wait; it will be free later. */
export class LockTimeout extends FlightdeckError {
  constructor(message: string) {
    super('lock_timeout', message, true);
  }
}

/**
 * A mutual-exclusion lock in Redis (SET NX PX + compare-and-delete) shared by all replicas. The
 * holder renews the TTL while it works, so a slow critical section (nginx test and reload through
 * Docker exec can take tens of seconds) keeps it, and a dead holder frees it within one TTL.
 */
export async function withRedisLock<T>(
  redis: Redis,
  key: string,
  fn: () => Promise<T>,
  {
    ttlMs = 20_000,
    waitMs = 30_000,
    onWait,
  }: { ttlMs?: number; waitMs?: number; onWait?: (ms: number) => void } = {},
): Promise<T> {
  const token = randomBytes(12).toString('hex');
  const started = Date.now();
  let delay = 5;
  for (;;) {
    if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK') break;
    if (Date.now() - started > waitMs) throw new LockTimeout(`${key} is busy (waited ${waitMs} ms)`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
  onWait?.(Date.now() - started);
  const renew = setInterval(
    // A renewal that fails (Redis blip) is retried at the next tick, well within the TTL.
    () => void extendLock(redis, key, token, ttlMs).catch(() => undefined),
    Math.max(Math.floor(ttlMs / 3), 50),
  );
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    // Not released (Redis gone): the lock lapses by itself within one TTL.
    await releaseLock(redis, key, token).catch(() => undefined);
  }
}
