import { describe, expect, it } from 'vitest';
import type { AlertStore } from '../../src/alerts/alert-store.js';
import { createAlertHandlers } from '../../src/alerts/handle-alerts.js';
import type { AlertGroup, AlertmanagerWebhook, AlertRecord } from '../../src/alerts/schema.js';
import type { AlertmanagerClient } from '../../src/integrations/alertmanager.js';
import type { Outbox } from '../../src/integrations/slack/outbox.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { ReleaseContext } from '../../src/releases/release-context.js';
import { unitConfig } from './helpers.js';

const T0 = Date.parse('2026-01-01T12:00:00Z');

/** The alert store in memory, with a log of what was written in which order. */
class MemoryAlerts {
  records = new Map<string, AlertRecord>();
  groups = new Map<string, AlertGroup>();
  members = new Map<string, Set<string>>();
  log: string[] = [];
  /** Runs before a record's first write: what happens meanwhile elsewhere (an outbox post). */
  beforeWrite = new Map<string, (r: AlertRecord) => AlertRecord>();

  async get(fp: string) {
    return structuredClone(this.records.get(fp));
  }
  async many(fps: string[]) {
    return fps.flatMap((fp) =>
      this.records.has(fp) ? [structuredClone(this.records.get(fp) as AlertRecord)] : [],
    );
  }
  async mutate(fp: string, fn: (cur: AlertRecord | undefined) => AlertRecord | undefined) {
    const race = this.beforeWrite.get(fp);
    const existing = this.records.get(fp);
    if (race && existing) {
      this.records.set(fp, race(existing));
      this.beforeWrite.delete(fp);
    }
    const next = fn(structuredClone(this.records.get(fp)));
    if (next) {
      this.records.set(fp, next);
      this.log.push(`record ${fp}`);
    }
    return structuredClone(next ?? this.records.get(fp));
  }
  async open() {
    return [...this.records.values()].filter((r) => r.status === 'firing');
  }
  async noteGroupMembers(id: string, fps: string[]) {
    const set = this.members.get(id) ?? new Set();
    for (const fp of fps) set.add(fp);
    this.members.set(id, set);
    return set.size;
  }
  async groupMembers(id: string) {
    return [...(this.members.get(id) ?? [])];
  }
  async getGroup(id: string) {
    return structuredClone(this.groups.get(id));
  }
  async mutateGroup(id: string, fn: (cur: AlertGroup | undefined) => AlertGroup | undefined) {
    const next = fn(structuredClone(this.groups.get(id)));
    if (next) {
      this.groups.set(id, next);
      this.log.push('group');
    }
    return structuredClone(next ?? this.groups.get(id));
  }
}

function setup(opts: { active?: Set<string> } = {}) {
  const alerts = new MemoryAlerts();
  const queued: string[] = [];
  const outbox = {
    alert: async (fp: string) => {
      queued.push(`alert ${fp}`);
      alerts.log.push(`queue alert ${fp}`);
    },
    alertGroup: async (id: string) => {
      queued.push(`group ${id}`);
      alerts.log.push('queue group');
    },
    alertThread: async () => {},
  } as unknown as Outbox;
  let now = T0;
  const alertmanager = {
    uptimeSeconds: async () => 3_600,
    activeFingerprints: async () => opts.active ?? new Set<string>(),
  } as unknown as AlertmanagerClient;
  const handlers = createAlertHandlers({
    config: unitConfig((raw) => {
      raw.alerts = { defaultChannel: 'C0ALERTS', summariseAbove: 5, reconcileEvery: '1s' };
    }),
    alerts: alerts as unknown as AlertStore,
    outbox,
    jobs: { escalate: async () => {}, cancelEscalations: async () => {} },
    release: {} as ReleaseContext,
    alertmanager,
    metrics: createMetrics(),
    logger: createLogger('silent'),
    now: () => now,
  });
  return { alerts, queued, handlers, tick: (ms: number) => (now += ms) };
}

const fp = (i: number) => `f${String(i).padStart(3, '0')}`;
const notification = (
  from: number,
  to: number,
  status: 'firing' | 'resolved' = 'firing',
): AlertmanagerWebhook => ({
  version: '4',
  groupKey: '{}:{alertname="NodeDown"}',
  truncatedAlerts: 0,
  status,
  receiver: 'flightdeck',
  groupLabels: { alertname: 'NodeDown' },
  commonLabels: { alertname: 'NodeDown', severity: 'warning' },
  commonAnnotations: {},
  externalURL: '',
  alerts: Array.from({ length: to - from }, (_, k) => ({
    status,
    labels: { alertname: 'NodeDown', severity: 'warning', instance: `node-${from + k}` },
    annotations: {},
    startsAt: '2026-01-01T11:59:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: '',
    fingerprint: fp(from + k),
  })),
});

describe('a storm notification', () => {
  it('names its alerts in the summary and queues the summary before the alerts’ own records', async () => {
    const { alerts, handlers } = setup();
    await handlers.onWebhook(notification(0, 30));
    const [g] = [...alerts.groups.values()];
    expect(g?.fingerprints).toHaveLength(30);
    expect(g?.statuses[fp(7)]).toEqual({ status: 'firing', severity: 'warning', name: 'node-7' });
    // The summary goes out without waiting for thirty record writes.
    expect(alerts.log.slice(0, 2)).toEqual(['group', 'queue group']);
    expect(alerts.log.filter((l) => l.startsWith('record'))).toHaveLength(30);
    expect(alerts.records.get(fp(7))?.groupId).toBe(g?.id);
  });

  it('grows the same summary as the group grows, and counts resolved alerts as resolved', async () => {
    const { alerts, handlers, queued } = setup();
    await handlers.onWebhook(notification(0, 10));
    await handlers.onWebhook(notification(0, 20));
    await handlers.onWebhook(notification(0, 4, 'resolved'));
    const [g] = [...alerts.groups.values()];
    expect(alerts.groups.size).toBe(1);
    expect(g).toMatchObject({ firing: 16, resolved: 4 });
    expect(g?.statuses[fp(2)]?.status).toBe('resolved');
    // One summary refresh per notification (the outbox coalesces them), none per alert.
    expect(queued.filter((q) => q.startsWith('group'))).toHaveLength(3);
    expect(queued.filter((q) => q.startsWith('alert'))).toHaveLength(0);
  });

  it('leaves out an alert already shown in its own message', async () => {
    const { alerts, handlers } = setup();
    await handlers.onWebhook(notification(0, 1));
    await alerts.mutate(fp(0), (r) => (r ? { ...r, message: { channel: 'C0ALERTS', ts: '1.1' } } : r));
    await handlers.onWebhook(notification(0, 10));
    const [g] = [...alerts.groups.values()];
    expect(g?.fingerprints).toEqual(Array.from({ length: 9 }, (_, i) => fp(i + 1)));
    expect(alerts.records.get(fp(0))?.groupId).toBeUndefined();
  });

  it('takes an alert out of the summary again when its own message was posted meanwhile', async () => {
    const { alerts, handlers, queued } = setup();
    await handlers.onWebhook(notification(0, 1));
    // Posted by the outbox after the summary named it, before its record was written.
    alerts.beforeWrite.set(fp(0), (r) => ({ ...r, message: { channel: 'C0ALERTS', ts: '1.1' } }));
    await handlers.onWebhook(notification(0, 10));
    const [g] = [...alerts.groups.values()];
    expect(g?.fingerprints).not.toContain(fp(0));
    expect(g).toMatchObject({ firing: 9, resolved: 0 });
    expect(g?.statuses[fp(0)]).toBeUndefined();
    expect(queued.filter((q) => q.startsWith('group'))).toHaveLength(2);
  });
});

describe('reconciliation in a storm', () => {
  it('shows an alert Alertmanager dropped (silenced, then ended) as resolved in the summary', async () => {
    const active = new Set(Array.from({ length: 10 }, (_, i) => fp(i)));
    const { alerts, handlers, tick } = setup({ active });
    await handlers.onWebhook(notification(0, 10));
    active.delete(fp(3));
    tick(2_000);
    await handlers.onReconcile(); // first miss
    tick(2_000);
    await handlers.onReconcile(); // second: resolved
    const [g] = [...alerts.groups.values()];
    expect(g).toMatchObject({ firing: 9, resolved: 1 });
    expect(g?.statuses[fp(3)]?.status).toBe('resolved');
  });
});
