import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutStore } from '../src/checklists/rollout-store.js';
import { FINISHED_RELEASE_TTL_SEC, ReleaseStore } from '../src/releases/release-store.js';
import type { Release } from '../src/releases/schema.js';
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

describe('checklist overrides on a connection other writers share', () => {
  it('keeps every one of many overrides made at the same moment (none silently dropped)', async () => {
    const store = new RolloutStore(redis, 'fd-ovr');
    await store.create({
      id: 'seed',
      template: 'bizosaas',
      startDate: '2026-12-01',
      channels: [],
      status: 'active',
      setBy: 'U0LEAD',
      setAt: 0,
      overrides: {},
    });
    // Concurrent transactions on one connection: with WATCH, the first EXEC cleared the others' watch.
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.override('seed', `phase-${i}`, 'U0LEAD', `reason ${i}`)),
    );
    const rollout = await store.get('seed');
    expect(Object.keys(rollout?.overrides ?? {}).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `phase-${i}`).sort(),
    );
  });
});

function release(id: string, status: Release['status']): Omit<Release, 'rev'> {
  return {
    weights: { blue: 100, green: 0 },
    swarmUpdated: false,
    gateResults: [],
    id,
    environment: 'staging',
    service: 'api',
    version: '1.0.0',
    image: 'flightdeck/testapp:1.0.0',
    fromColour: 'blue',
    toColour: 'green',
    status,
    stepIndex: 0,
    steps: [],
    events: [],
    requestedBy: { id: 'U0DEP', name: 'dep' },
    channel: 'C0REL',
    createdAt: Date.now(),
    updatedAt: Date.now(),
    requestId: `req-${id}`,
  };
}

describe('release records', () => {
  it('are written with their indexes in one step, and a finished one leaves the in-flight set and expires', async () => {
    const store = new ReleaseStore(redis, 'fd-rel');
    await store.create(release('r1', 'running'));
    expect((await store.active()).map((r) => r.id)).toEqual(['r1']);
    expect((await store.history('staging', 'api')).map((r) => r.id)).toEqual(['r1']);
    expect(await redis.ttl('fd-rel:data:release:r1')).toBe(-1);

    await store.update('r1', (r) => ({ ...r, status: 'completed', finishedAt: Date.now() }));
    expect(await store.active()).toEqual([]);
    const ttl = await redis.ttl('fd-rel:data:release:r1');
    expect(ttl).toBeGreaterThan(FINISHED_RELEASE_TTL_SEC - 60);
    expect(ttl).toBeLessThanOrEqual(FINISHED_RELEASE_TTL_SEC);
    expect((await store.recent(5)).map((r) => r.id)).toEqual(['r1']);
  });

  it('refuses to create a release id twice and leaves the first untouched', async () => {
    const store = new ReleaseStore(redis, 'fd-rel2');
    await store.create(release('r2', 'running'));
    await expect(store.create(release('r2', 'queued'))).rejects.toThrow(/already exists/);
    expect((await store.get('r2'))?.status).toBe('running');
    expect(await redis.llen('fd-rel2:data:releases:history:staging:api')).toBe(1);
  });

  it("keep at most a service's last 50 finished records (an older one still in flight stays)", async () => {
    const store = new ReleaseStore(redis, 'fd-rel3');
    await store.create(release('long-running', 'running'));
    for (let i = 0; i < 60; i++) {
      await store.create(release(`r${i}`, 'running'));
      await store.update(`r${i}`, (r) => ({ ...r, status: 'completed', finishedAt: Date.now() }));
    }
    const records = await redis.keys('fd-rel3:data:release:*');
    expect(records).toHaveLength(51);
    expect(await store.get('long-running')).toBeDefined();
    expect(await store.get('r0')).toBeUndefined();
    expect(await store.get('r59')).toBeDefined();
    expect((await store.history('staging', 'api', 100)).length).toBe(50);
  });
});
