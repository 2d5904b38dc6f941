import { describe, expect, it } from 'vitest';
import { Freeze } from '../../src/config/pipeline-schema.js';
import { freezeLine, freezeRefusal, freezeStatus } from '../../src/releases/freezes.js';

const TZ = 'Europe/London';
const parse = (f: unknown) => Freeze.parse(f);
const at = (iso: string) => new Date(iso);

describe('freeze windows in the team time zone', () => {
  const fridays = parse({
    name: 'Friday afternoons',
    days: ['fri'],
    from: '15:00',
    until: '24:00',
    environments: ['production'],
  });

  it('a Friday from 15:00 local is frozen until midnight local, and only for production', () => {
    // 2026-12-04 is a Friday; London is on GMT in December.
    const s = freezeStatus([fridays], 'production', at('2026-12-04T15:30:00Z'), TZ);
    expect(s.active?.name).toBe('Friday afternoons');
    expect(new Date(s.active?.end as number).toISOString()).toBe('2026-12-05T00:00:00.000Z');
    expect(freezeStatus([fridays], 'staging', at('2026-12-04T15:30:00Z'), TZ).active).toBeUndefined();
    expect(freezeStatus([fridays], 'production', at('2026-12-04T14:59:00Z'), TZ).active).toBeUndefined();
  });

  it('keeps 15:00 wall-clock across a DST change (summer: 14:00 UTC)', () => {
    // 2026-07-03 is a Friday on BST (UTC+1).
    const s = freezeStatus([fridays], 'production', at('2026-07-03T14:05:00Z'), TZ);
    expect(s.active).toBeDefined();
    expect(freezeStatus([fridays], 'production', at('2026-07-03T13:55:00Z'), TZ).active).toBeUndefined();
  });

  it('names the next freeze when none is in force', () => {
    const s = freezeStatus([fridays], 'production', at('2026-12-02T10:00:00Z'), TZ);
    expect(s.active).toBeUndefined();
    expect(new Date(s.next?.start as number).toISOString()).toBe('2026-12-04T15:00:00.000Z');
  });

  it('a weekly window runs from Friday into Monday; overlapping windows end at the last one', () => {
    const weekend = parse({ name: 'Weekend', weekly: { from: 'fri 17:00', until: 'mon 08:00' } });
    const holiday = parse({ name: 'Holidays', from: '2026-12-21', until: '2026-12-28', reason: 'team away' });
    const s = freezeStatus([weekend, holiday], 'staging', at('2026-12-19T12:00:00Z'), TZ);
    expect(s.active?.name).toBe('Weekend');
    // The weekend (until Mon 21 08:00) runs into the holidays (until the end of Mon 28), then no gap
    // before... the following weekend starts Fri 1 Jan, after the holidays ended.
    expect(new Date(s.active?.end as number).toISOString()).toBe('2026-12-29T00:00:00.000Z');
    const text = freezeRefusal('staging', s.active as never, at('2026-12-19T12:00:00Z').getTime(), TZ);
    expect(text).toContain('staging is frozen (Weekend) until Tue 29 Dec 00:00 Europe/London');
  });

  it('refuses a freeze that ends before it starts, or an empty window, naming the key', () => {
    const bad = Freeze.safeParse({ name: 'x', from: '2026-12-20 18:00', until: '2026-12-20 09:00' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['until']);
    expect(bad.error?.issues[0]?.message).toContain('before it starts');
    expect(Freeze.safeParse({ name: 'x', days: ['fri'], from: '15:00', until: '15:00' }).success).toBe(false);
    expect(Freeze.safeParse({ name: 'x', days: ['someday'], from: '15:00', until: '16:00' }).success).toBe(
      false,
    );
    expect(Freeze.safeParse({ name: 'x', weekly: { from: 'fri 25:00', until: 'mon 08:00' } }).success).toBe(
      false,
    );
    // A single day as a one-off range is the whole day.
    const day = parse({ name: 'Release party', from: '2026-12-24', until: '2026-12-24' });
    const s = freezeStatus([day], 'production', at('2026-12-24T23:30:00Z'), TZ);
    expect(s.active).toBeDefined();
  });

  it('the status line gives the freeze in force and the one after it', () => {
    const now = at('2026-12-04T16:00:00Z');
    const holiday = parse({ name: 'Holidays', from: '2026-12-21', until: '2026-12-28' });
    const line = freezeLine(
      'production',
      freezeStatus([fridays, holiday], 'production', now, TZ),
      now.getTime(),
      TZ,
    );
    expect(line).toBe(
      '❄️ production is frozen (Friday afternoons) until Sat 5 Dec 00:00 Europe/London, in 8 hours. Then next freeze of production: Friday afternoons, Fri 11 Dec 15:00 – Sat 12 Dec 00:00 Europe/London (in 7 days).',
    );
  });
});
