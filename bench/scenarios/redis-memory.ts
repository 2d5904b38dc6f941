/**
 * Redis memory per record, measured on a real Redis: a finished release (with its indexes), an alert
 * (with its open-set entry), and what 1,000 releases of one service leave behind (records are kept
 * for the service's last 50 only). The baseline is the same figure for the smallest record the store
 * could keep (no steps, no events): how much of a release's memory is its history.
 */
import { AlertStore } from '../../src/alerts/alert-store.js';
import { applyNotification } from '../../src/alerts/apply-notification.js';
import { DEFAULT_RELEASE_POLICY, ReleasePolicy } from '../../src/config/schema.js';
import { planSteps } from '../../src/releases/plan-steps.js';
import { ReleaseStore } from '../../src/releases/release-store.js';
import type { Release } from '../../src/releases/schema.js';
import { TestRedis } from '../../test/helpers/redis-server.js';
import type { ScenarioResult } from '../lib/result.js';

/** A service keeps the records of its last this many releases (src/releases/release-store.ts, docs/operations.md). */
const KEPT_PER_SERVICE = 50;

const usedMemory = async (r: ReturnType<TestRedis['client']>) =>
  Number(/used_memory:(\d+)/.exec(await r.info('memory'))?.[1] ?? 0);

function release(id: string, full: boolean): Omit<Release, 'rev'> {
  const policy = ReleasePolicy.parse(DEFAULT_RELEASE_POLICY);
  const steps = full
    ? planSteps(policy, {
        swarmService: 'shop-production-api-green',
        colour: 'green',
        image: 'registry.example.com/shop/api:1.4.2',
      })
    : [];
  const now = Date.now();
  return {
    id,
    environment: 'production',
    service: 'api',
    version: '1.4.2',
    image: 'registry.example.com/shop/api:1.4.2',
    fromColour: 'blue',
    toColour: 'green',
    status: 'running',
    requestedBy: { id: 'U0DEPLOYER', name: 'dev' },
    channel: 'C0RELEASES',
    createdAt: now,
    updatedAt: now,
    stepIndex: 0,
    steps: steps.map((s) => ({
      ...s,
      status: 'done',
      startedAt: now,
      finishedAt: now,
      detail: 'ok: 3/3 tasks running',
      // What a health step checked while Swarm confirmed the update: when, and which tasks.
      ...(s.kind === 'health'
        ? {
            streak: 3,
            checkedAt: now,
            tasks: ['k1v3b8f0q2w9e7r6t5y4u3i2o', 'p0o9i8u7y6t5r4e3w2q1a2s3d', 'z9x8c7v6b5n4m3l2k1j0h9g8f'],
          }
        : {}),
    })),
    weights: { blue: 0, green: 100 },
    swarmUpdated: true,
    gateResults: [],
    events: full
      ? steps.map((s) => ({ at: now, text: `${s.label}: done (3/3 tasks running, health 200 in 12 ms)` }))
      : [],
    message: { channel: 'C0RELEASES', ts: '1796156929.000100' },
  };
}

export async function redisMemory(): Promise<ScenarioResult> {
  const server = await new TestRedis().start();
  const redis = server.client();
  try {
    const perRelease = async (prefix: string, full: boolean, n: number) => {
      const store = new ReleaseStore(redis, prefix);
      const before = await usedMemory(redis);
      for (let i = 0; i < n; i++) {
        const r = await store.create({ ...release(`r${i}`, full), service: `svc${i}` });
        await store.update(r.id, (x) => ({ ...x, status: 'completed', finishedAt: Date.now() }));
      }
      return (await usedMemory(redis)) - before;
    };
    const full = (await perRelease('mem-full', true, 200)) / 200;
    const bare = (await perRelease('mem-bare', false, 200)) / 200;

    // 1,000 releases of one service: what stays is its last 50 records.
    const store = new ReleaseStore(redis, 'mem-one');
    const before = await usedMemory(redis);
    for (let i = 0; i < 1_000; i++) {
      await store.create(release(`one${i}`, true));
      await store.update(`one${i}`, (x) => ({ ...x, status: 'completed', finishedAt: Date.now() }));
    }
    const oneService = (await usedMemory(redis)) - before;
    const records = (await redis.keys('mem-one:data:release:*')).length;

    const alerts = new AlertStore(redis, 'mem-alerts');
    const beforeAlerts = await usedMemory(redis);
    for (let i = 0; i < 1_000; i++) {
      await alerts.mutate(
        `fp${i}`,
        (cur) =>
          applyNotification(
            cur,
            {
              status: 'firing',
              labels: {
                alertname: 'HighErrorRate',
                severity: 'critical',
                environment: 'production',
                service: 'api',
                instance: `web-${i}:9100`,
                job: 'api',
              },
              annotations: {
                summary: 'Error rate above 0.1% for 5 minutes',
                description: 'api answers 5xx to 0.4% of requests',
              },
              startsAt: new Date().toISOString(),
              endsAt: '0001-01-01T00:00:00Z',
              generatorURL: 'http://prometheus:9090/graph?g0.expr=rate(errors%5B5m%5D)',
              fingerprint: `fp${i}`,
            },
            { now: Date.now(), channel: 'C0ALERTS', externalURL: 'http://alertmanager:9093' },
          ).next,
      );
    }
    const perAlert = ((await usedMemory(redis)) - beforeAlerts) / 1_000;
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
    return {
      id: 'memory',
      rows: [
        {
          scenario: '7. Redis memory per finished release (record + indexes)',
          flightdeck: kb(full),
          baseline: `${kb(bare)} with no steps or events`,
          ratio: `×${(full / bare).toFixed(2)}`,
          target: 'reported',
          met: true,
        },
        {
          scenario: '7. 1,000 releases of one service: records and memory left',
          flightdeck: `${records} records, ${kb(oneService)}`,
          baseline: `${kb(full * 1_000)} if every record were kept`,
          ratio: `×${(oneService / (full * 1_000)).toFixed(2)}`,
          target: `bounded: the last ${KEPT_PER_SERVICE} per service`,
          met: records === KEPT_PER_SERVICE,
        },
        {
          scenario: '7. Redis memory per alert record (record + open set)',
          flightdeck: kb(perAlert),
          baseline: '—',
          ratio: '—',
          target: 'reported (kept 30 days)',
          met: true,
        },
      ],
      raw: {
        bytesPerRelease: full,
        bytesPerBareRelease: bare,
        bytesOneService1000: oneService,
        records,
        bytesPerAlert: perAlert,
      },
    };
  } finally {
    redis.disconnect();
    await server.destroy();
  }
}
