import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockTimeout, withRedisLock } from '../src/integrations/redis-lock.js';
import { TestRedis } from './helpers/redis-server.js';

const server = new TestRedis();
let redis: Redis;

beforeAll(async () => {
  await server.start();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the Redis lock that serialises nginx writes across replicas', () => {
  it('stays held while a slow holder works past its TTL, so no second writer interleaves', async () => {
    const order: string[] = [];
    const slow = withRedisLock(
      redis,
      'lock:slow',
      async () => {
        order.push('first in');
        await sleep(1_000); // five TTLs
        order.push('first out');
      },
      { ttlMs: 200 },
    );
    await sleep(50);
    await expect(
      withRedisLock(redis, 'lock:slow', async () => {}, { ttlMs: 200, waitMs: 600 }),
    ).rejects.toThrow(LockTimeout);
    await withRedisLock(redis, 'lock:slow', async () => void order.push('second'), {
      ttlMs: 200,
      waitMs: 2_000,
    });
    await slow;
    expect(order).toEqual(['first in', 'first out', 'second']);
  });

  it('is freed within one TTL when its holder died without releasing it', async () => {
    await redis.set('lock:dead', 'a-holder-that-was-killed', 'PX', 300);
    const started = Date.now();
    await withRedisLock(redis, 'lock:dead', async () => {}, { ttlMs: 300, waitMs: 2_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await redis.exists('lock:dead')).toBe(0);
  });
});
