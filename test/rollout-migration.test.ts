// The single rollout of the previous version (keys written the old way) becomes the rollout
// `default`: ticks, messages, renders, start date and overrides, nothing lost; twice or by two
// workers at once, it migrates once.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChecklistStore } from '../src/checklists/checklist-store.js';
import { RolloutStore } from '../src/checklists/rollout-store.js';
import { Rollouts } from '../src/checklists/rollouts.js';
import { TestRedis } from './helpers/redis-server.js';
import { unitConfig } from './unit/helpers.js';

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

const checks = {
  swarmFor: () => {
    throw new Error('no Swarm here');
  },
  promQuery: async () => [],
  liveColour: async () => 'blue' as const,
};
const rollouts = (prefix: string, startDate?: string) =>
  new Rollouts(
    redis,
    prefix,
    { ...unitConfig(), rollout: { startDate } },
    checks,
    () => new Date('2026-11-20T12:00:00Z'),
  );

/** What the previous version wrote: `…:data:rollout:<set>`, item hashes and message sets per checklist. */
async function writeOldKeys(prefix: string) {
  const old = (...p: string[]) => [prefix, 'data', ...p].join(':');
  const tick = (by: string, at: number) => JSON.stringify({ ticked: true, by, name: by, at });
  await redis.set(
    old('rollout', 'bizosaas'),
    JSON.stringify({
      startDate: '2026-11-02',
      setBy: 'U0LEAD',
      setAt: 1_000,
      overrides: { 'phase-1': { by: 'U0LEAD', reason: 'staging done elsewhere', at: 2_000 } },
    }),
  );
  await redis.hset(
    old('checklist', 'bizosaas', 'pre'),
    'env-vars',
    tick('U0DEV', 3_000),
    'dns-records',
    tick('U0LEAD', 4_000),
  );
  await redis.hset(old('checklist', 'bizosaas', 'staging'), 'user-registration', tick('U0DEV', 5_000));
  await redis.sadd(
    old('checklist-messages', 'bizosaas', 'pre'),
    'C0REL|1700000000.000100',
    'C0PROD|1700000001.000200',
  );
  await redis.sadd(old('checklist-messages-moved', 'bizosaas', 'pre'), 'C0REL|1600000000.000001');
  await redis.hset(
    old('checklist-messages-rendered', 'bizosaas', 'pre'),
    'C0REL|1700000000.000100',
    'abc|6000',
  );
}

describe('migrating the single rollout of the previous version', () => {
  it('moves the rollout, every tick, every message and its render into the rollout `default`', async () => {
    await writeOldKeys('fd-mig');
    const r = rollouts('fd-mig');
    expect(await r.migrate()).toBe(true);
    expect(await r.store.get('default')).toMatchObject({
      id: 'default',
      template: 'bizosaas',
      startDate: '2026-11-02',
      status: 'active',
      setBy: 'U0LEAD',
      setAt: 1_000,
      channels: [],
      overrides: { 'phase-1': { by: 'U0LEAD', reason: 'staging done elsewhere', at: 2_000 } },
    });
    const store = new ChecklistStore(redis, 'fd-mig', 'default');
    expect(await store.items('pre')).toEqual({
      'env-vars': { ticked: true, by: 'U0DEV', name: 'U0DEV', at: 3_000 },
      'dns-records': { ticked: true, by: 'U0LEAD', name: 'U0LEAD', at: 4_000 },
    });
    expect(Object.keys(await store.items('staging'))).toEqual(['user-registration']);
    expect(await store.messages('pre')).toEqual([
      { channel: 'C0PROD', ts: '1700000001.000200' },
      { channel: 'C0REL', ts: '1700000000.000100' },
    ]);
    expect(await store.moved('pre')).toEqual([{ channel: 'C0REL', ts: '1600000000.000001' }]);
    expect((await store.rendered('pre')).get('C0REL|1700000000.000100')).toEqual({
      version: 'abc',
      at: 6000,
    });
    // Old buttons (no rollout in their ids) land in the migrated rollout.
    expect(await r.store.legacyRollout('bizosaas')).toBe('default');
    // The old keys are gone: nothing reads them any more.
    expect(await redis.keys('fd-mig:data:checklist:*')).toEqual([]);
    expect(await redis.exists('fd-mig:data:rollout:bizosaas')).toBe(0);
    // The migrated rollout gates production as before, by its own ticks.
    expect(await r.deployGate('production', 'api')).toMatch(
      /^the pre-deployment checklist is not complete \(2\/\d+\) of rollout \*default\*/,
    );
  });

  it('migrates once: run again, or by two workers at the same moment, nothing changes', async () => {
    await writeOldKeys('fd-mig2');
    const [a, b] = await Promise.all([rollouts('fd-mig2').migrate(), rollouts('fd-mig2').migrate()]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    // A tick after the migration survives another start-up.
    const store = new ChecklistStore(redis, 'fd-mig2', 'default');
    await store.setItem('pre', 'env-vars', { ticked: false, by: 'U0ONCALL', at: 9_000 });
    expect(await rollouts('fd-mig2').migrate()).toBe(false);
    expect((await store.items('pre'))['env-vars']).toMatchObject({ ticked: false, by: 'U0ONCALL' });
    expect(await new RolloutStore(redis, 'fd-mig2').all()).toHaveLength(1);
  });

  it('with nothing old: no rollout, unless the config names a start date', async () => {
    expect(await rollouts('fd-mig3').migrate()).toBe(false);
    expect(await new RolloutStore(redis, 'fd-mig3').all()).toEqual([]);
    expect(await new RolloutStore(redis, 'fd-mig3').legacyRollout('bizosaas')).toBeUndefined();
    await rollouts('fd-mig4', '2026-11-10').migrate();
    expect(await new RolloutStore(redis, 'fd-mig4').get('default')).toMatchObject({
      startDate: '2026-11-10',
      setBy: 'config',
    });
  });
});
