import { describe, expect, it } from 'vitest';
import {
  applyNotification,
  escalationJobId,
  firingCritical,
  shortName,
  summarise,
  withoutMembers,
} from '../../src/alerts/apply-notification.js';
import {
  AlertGroup,
  type AlertmanagerAlert,
  type AlertmanagerWebhook,
  type AlertRecord,
} from '../../src/alerts/schema.js';

const T0 = Date.parse('2026-01-01T12:00:00Z');
const ctx = (now: number, extra: { groupId?: string } = {}) => ({
  now,
  channel: 'C0ALERTS',
  externalURL: 'http://alertmanager:9093',
  ...extra,
});

const alert = (extra: Partial<AlertmanagerAlert> = {}): AlertmanagerAlert => ({
  status: 'firing',
  labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'api' },
  annotations: { summary: 'errors are up' },
  startsAt: '2026-01-01T11:59:00Z',
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: 'http://prometheus/graph',
  fingerprint: 'abc123',
  ...extra,
});

describe('applyNotification', () => {
  it('starts a new episode for an alert never seen, seen once, not acknowledged', () => {
    const { next, newEpisode } = applyNotification(undefined, alert(), ctx(T0));
    expect(newEpisode).toBe(true);
    expect(next).toMatchObject({
      fingerprint: 'abc123',
      status: 'firing',
      channel: 'C0ALERTS',
      externalURL: 'http://alertmanager:9093',
      firstSeen: T0,
      lastSeen: T0,
      count: 1,
      escalations: 0,
      silences: [],
    });
    expect(next.ack).toBeUndefined();
    expect(next.resolvedAt).toBeUndefined();
  });

  it('treats a repeat of a firing alert as the same episode: counted, acknowledgement kept', () => {
    const first = applyNotification(undefined, alert(), ctx(T0)).next;
    const acked: AlertRecord = {
      ...first,
      ack: { by: 'U0LEAD', name: 'lead', at: T0 + 1 },
      escalations: 1,
      message: { channel: 'C0ALERTS', ts: '1.1' },
    };
    const { next, newEpisode } = applyNotification(
      acked,
      alert({ annotations: { summary: 'errors are way up' } }),
      ctx(T0 + 60_000),
    );
    expect(newEpisode).toBe(false);
    expect(next).toMatchObject({
      count: 2,
      firstSeen: T0,
      lastSeen: T0 + 60_000,
      ack: { by: 'U0LEAD' },
      escalations: 1,
      message: { ts: '1.1' },
      annotations: { summary: 'errors are way up' },
    });
  });

  it('resolves an alert at the time the resolution arrives, and keeps that time on repeats', () => {
    const first = applyNotification(undefined, alert(), ctx(T0)).next;
    const resolved = applyNotification(first, alert({ status: 'resolved' }), ctx(T0 + 5_000));
    expect(resolved.newEpisode).toBe(false);
    expect(resolved.next).toMatchObject({ status: 'resolved', resolvedAt: T0 + 5_000, count: 2 });
    const again = applyNotification(resolved.next, alert({ status: 'resolved' }), ctx(T0 + 9_000));
    expect(again.next.resolvedAt).toBe(T0 + 5_000);
    expect(again.newEpisode).toBe(false);
  });

  it('starts a new episode when a resolved alert fires again with a new start time', () => {
    const first = applyNotification(undefined, alert(), ctx(T0)).next;
    const resolved: AlertRecord = {
      ...applyNotification(first, alert({ status: 'resolved' }), ctx(T0 + 5_000)).next,
      ack: { by: 'U0LEAD', name: 'lead', at: T0 + 1 },
      silences: [{ id: 's1', by: 'U0LEAD', until: T0 + 3_600_000 }],
      escalations: 2,
      message: { channel: 'C0ALERTS', ts: '1.1' },
    };
    const { next, newEpisode } = applyNotification(
      resolved,
      alert({ startsAt: '2026-01-01T13:00:00Z' }),
      ctx(T0 + 3_600_000),
    );
    expect(newEpisode).toBe(true);
    expect(next).toMatchObject({ status: 'firing', count: 1, firstSeen: T0 + 3_600_000, escalations: 0 });
    // A new episode is a new message, with nobody's old acknowledgement on it.
    expect(next.ack).toBeUndefined();
    expect(next.message).toBeUndefined();
    expect(next.silences).toEqual([]);
    expect(next.resolvedAt).toBeUndefined();
  });

  it('reopens the same episode when a resolved alert fires again with the same start time', () => {
    const first = applyNotification(undefined, alert(), ctx(T0)).next;
    const resolved = applyNotification(first, alert({ status: 'resolved' }), ctx(T0 + 5_000)).next;
    const { next, newEpisode } = applyNotification(resolved, alert(), ctx(T0 + 6_000));
    expect(newEpisode).toBe(false);
    expect(next).toMatchObject({ status: 'firing', count: 3, firstSeen: T0 });
    expect(next.resolvedAt).toBeUndefined();
  });

  it('records an alert first seen already resolved as resolved now', () => {
    const { next, newEpisode } = applyNotification(undefined, alert({ status: 'resolved' }), ctx(T0));
    expect(newEpisode).toBe(true);
    expect(next).toMatchObject({ status: 'resolved', resolvedAt: T0 });
  });

  it('puts a new alert into a storm group when one is given', () => {
    expect(applyNotification(undefined, alert(), ctx(T0, { groupId: 'g1' })).next.groupId).toBe('g1');
    expect(applyNotification(undefined, alert(), ctx(T0)).next.groupId).toBeUndefined();
  });

  it('does not change the record it was given', () => {
    const first = applyNotification(undefined, alert(), ctx(T0)).next;
    const copy = structuredClone(first);
    applyNotification(first, alert({ status: 'resolved' }), ctx(T0 + 1));
    expect(first).toEqual(copy);
  });
});

describe('escalationJobId', () => {
  it('differs per episode and per escalation, so each runs once and can be cancelled', () => {
    expect(escalationJobId('abc', 1, 1)).toBe('esc-abc-1-1');
    expect(
      new Set([escalationJobId('abc', 1, 1), escalationJobId('abc', 2, 1), escalationJobId('abc', 1, 2)])
        .size,
    ).toBe(3);
  });
});

describe('summarise (storm summary)', () => {
  const payload = {
    groupKey: '{}:{alertname="X"}',
    groupLabels: { alertname: 'X' },
    commonLabels: { alertname: 'X' },
  } as unknown as AlertmanagerWebhook;
  const rec = (fp: string, status: 'firing' | 'resolved', severity?: string, groupId = 'g1'): AlertRecord =>
    ({
      fingerprint: fp,
      status,
      labels: severity ? { alertname: 'X', severity } : { alertname: 'X' },
      groupId,
    }) as unknown as AlertRecord;

  it('starts a group with the payload’s key and labels, counting firing alerts by severity', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [
        rec('a1', 'firing', 'critical'),
        rec('a2', 'firing', 'critical'),
        rec('a3', 'firing', 'warning'),
        rec('a4', 'firing'),
      ],
      T0,
    );
    expect(g).toMatchObject({
      id: 'g1',
      groupKey: '{}:{alertname="X"}',
      groupLabels: { alertname: 'X' },
      channel: 'C0ALERTS',
      fingerprints: ['a1', 'a2', 'a3', 'a4'],
      firing: 4,
      resolved: 0,
      bySeverity: { critical: 2, warning: 1, none: 1 },
      updatedAt: T0,
    });
  });

  it('lists every alert once across notifications, and counts each by its latest state', () => {
    const first = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [rec('a1', 'firing', 'critical'), rec('a2', 'firing', 'warning')],
      T0,
    );
    const g = summarise(
      structuredClone(first),
      'g1',
      payload,
      'C0ALERTS',
      [rec('a1', 'resolved', 'critical'), rec('a3', 'firing', 'critical')],
      T0 + 1_000,
    );
    expect(g.fingerprints).toEqual(['a1', 'a2', 'a3']);
    expect(g).toMatchObject({
      firing: 2,
      resolved: 1,
      bySeverity: { critical: 1, warning: 1 },
      updatedAt: T0 + 1_000,
    });
  });

  it('drops a severity from the counts once none of its alerts fire', () => {
    const first = summarise(undefined, 'g1', payload, 'C0ALERTS', [rec('a1', 'firing', 'critical')], T0);
    const g = summarise(first, 'g1', payload, 'C0ALERTS', [rec('a1', 'resolved', 'critical')], T0 + 1);
    expect(g.bySeverity).toEqual({});
    expect(g).toMatchObject({ firing: 0, resolved: 1 });
  });

  it('ignores alerts that belong to no group or another group', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [
        rec('a1', 'firing', 'critical'),
        rec('b1', 'firing', 'critical', 'g2'),
        { ...rec('c1', 'firing'), groupId: undefined },
      ],
      T0,
    );
    expect(g.fingerprints).toEqual(['a1']);
    expect(g.firing).toBe(1);
  });

  it('keeps what the thread has listed and the acknowledgement of an existing group', () => {
    const cur: AlertGroup = {
      ...summarise(undefined, 'g1', payload, 'C0ALERTS', [rec('a1', 'firing', 'critical')], T0),
      listed: 1,
      ack: { by: 'U0LEAD', name: 'lead', at: T0 },
      message: { channel: 'C0ALERTS', ts: '9.9' },
    };
    const g = summarise(cur, 'g1', payload, 'C0OTHER', [rec('a2', 'firing', 'critical')], T0 + 1);
    expect(g).toMatchObject({
      listed: 1,
      ack: { by: 'U0LEAD' },
      message: { ts: '9.9' },
      channel: 'C0ALERTS',
    });
  });

  // A fingerprint that arrives twice in one notification is listed once, so the storm headline
  // ("Alert storm: N alerts") does not over-count.
  it('lists an alert once even when one notification carries it twice', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [rec('a1', 'firing', 'critical'), rec('a1', 'firing', 'critical'), rec('a2', 'firing')],
      T0,
    );
    expect(g.fingerprints).toEqual(['a1', 'a2']);
  });

  // Severities are counted by severityKey: a name Object.prototype has ("constructor", "__proto__")
  // is `other`, never an inherited function (a count like "function Object() { [native code] }1")
  // nor a lost key; "toString" lower-cases to the harmless "tostring".
  it('counts severities named like Object.prototype members as plain numbers', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [rec('a1', 'firing', 'constructor'), rec('a2', 'firing', 'toString'), rec('a3', 'firing', '__proto__')],
      T0,
    );
    expect(g.firing).toBe(3);
    expect(Object.entries(g.bySeverity)).toEqual([
      ['other', 2],
      ['tostring', 1],
    ]);
    expect(Object.getPrototypeOf(g.bySeverity)).toBe(Object.prototype);
    expect(AlertGroup.safeParse(JSON.parse(JSON.stringify(g))).success).toBe(true);
  });

  it('counts severities case and space aside, keeps custom ones, and calls odd ones other', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [
        rec('a1', 'firing', 'critical'),
        rec('a2', 'firing', 'Critical'),
        rec('a3', 'firing', ' CRITICAL '),
        rec('a4', 'firing', 'page'),
        rec('a5', 'firing', 'P1'),
        rec('a6', 'firing', '<!channel>'),
        rec('a7', 'firing', 'x'.repeat(33)),
        rec('a8', 'firing'),
        rec('a9', 'firing', ''),
      ],
      T0,
    );
    expect(g.bySeverity).toEqual({ critical: 3, page: 1, p1: 1, other: 2, none: 2 });
    expect(g.statuses.a2).toEqual({ status: 'firing', severity: 'critical', name: 'Critical' });
  });

  it('normalises the severities of a group stored before severities were normalised', () => {
    const old: AlertGroup = {
      ...summarise(undefined, 'g1', payload, 'C0ALERTS', [], T0),
      fingerprints: ['a1', 'a2'],
      statuses: {
        a1: { status: 'firing', severity: 'CRITICAL' },
        a2: { status: 'firing', severity: 'Warning' },
      },
      firing: 2,
      bySeverity: { CRITICAL: 1, Warning: 1 },
    };
    expect(firingCritical(old)).toBe(1);
    const g = summarise(old, 'g1', payload, 'C0ALERTS', [rec('a3', 'firing', 'Critical')], T0 + 1);
    expect(g.bySeverity).toEqual({ critical: 2, warning: 1 });
  });

  it('firingCritical counts the critical alerts of a storm whatever the case of their label', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [rec('a1', 'firing', 'CRITICAL'), rec('a2', 'firing', 'Critical'), rec('a3', 'firing', 'warning')],
      T0,
    );
    expect(firingCritical(g)).toBe(2);
    expect(firingCritical({ bySeverity: {} })).toBe(0);
    expect(firingCritical({ bySeverity: { warning: 3, constructor: 1 } })).toBe(0);
  });
});

describe('shortName (how a storm’s summary names an alert)', () => {
  it('is the one label value an alert does not share with its group', () => {
    expect(shortName({ alertname: 'X', instance: 'web-1', job: 'node' }, ['alertname', 'job'])).toBe('web-1');
  });
  it('is `key=value` pairs when several labels differ, severity left to the icon', () => {
    expect(shortName({ alertname: 'X', instance: 'web-1', shard: 's1', severity: 'critical' }, [])).toBe(
      'instance=web-1 shard=s1',
    );
  });
  it('is the severity when nothing else differs, and undefined when nothing does', () => {
    expect(shortName({ alertname: 'X', instance: 'a', severity: 'p1' }, ['instance'])).toBe('p1');
    expect(shortName({ alertname: 'X', instance: 'a' }, ['instance'])).toBeUndefined();
  });
  it('is clipped to 60 characters (raw: the summary escapes it)', () => {
    const n = shortName({ alertname: 'X', instance: `<!channel>${'x'.repeat(100)}` }, []) as string;
    expect(n).toHaveLength(60);
    expect(n.startsWith('<!channel>')).toBe(true);
  });
});

describe('summarise names and withoutMembers', () => {
  const payload = {
    groupKey: 'k',
    groupLabels: { alertname: 'X' },
    commonLabels: { alertname: 'X', job: 'node' },
  } as unknown as AlertmanagerWebhook;
  const member = (fp: string, instance: string, status: 'firing' | 'resolved' = 'firing') => ({
    fingerprint: fp,
    status,
    labels: { alertname: 'X', job: 'node', instance },
    groupId: 'g1',
  });

  it('keeps the labels the group shared when it began, and names each alert by the others', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [member('a', 'web-1'), member('b', 'web-2')],
      T0,
    );
    expect(g.commonKeys.sort()).toEqual(['alertname', 'job']);
    expect(g.statuses.a?.name).toBe('web-1');
    // Names stay comparable as the storm grows: a later alert is named by the same labels, even when
    // it differs in one the group shared (its thread line shows every label).
    const later = { ...member('c', 'web-3'), labels: { alertname: 'X', job: 'db', instance: 'web-3' } };
    const g2 = summarise(
      g,
      'g1',
      { ...payload, commonLabels: { alertname: 'X' } },
      'C0ALERTS',
      [later],
      T0 + 1,
    );
    expect(g2.statuses.c?.name).toBe('web-3');
  });

  it('takes out alerts that kept their own message, the thread’s position included', () => {
    const g = summarise(
      undefined,
      'g1',
      payload,
      'C0ALERTS',
      [member('a', '1'), member('b', '2', 'resolved'), member('c', '3')],
      T0,
    );
    g.listed = 2;
    const out = withoutMembers(g, new Set(['a']), T0 + 5);
    expect(out).toMatchObject({
      fingerprints: ['b', 'c'],
      listed: 1,
      firing: 1,
      resolved: 1,
      updatedAt: T0 + 5,
    });
    expect(Object.keys(out.statuses)).toEqual(['b', 'c']);
  });
});
