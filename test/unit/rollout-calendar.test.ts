// test/rollout-calendar.test.ts covers month ends, leap days, DST and far time zones; this covers
// the phase boundaries, the start day itself and the helpers.
import { describe, expect, it } from 'vitest';
import { phaseDates, prettyDate, rolloutDay, todayIn } from '../../src/checklists/rollout-calendar.js';

const noon = (date: string) => new Date(`${date}T12:00:00Z`);

describe('rolloutDay', () => {
  it('is day 1, phase 1 on the start date itself', () => {
    expect(rolloutDay('2026-11-02', 'UTC', noon('2026-11-02'))).toEqual({
      day: 1,
      phase: 1,
      today: '2026-11-02',
    });
  });

  it('changes phase every seven days', () => {
    const phaseOn = (date: string) => rolloutDay('2026-11-01', 'UTC', noon(date)).phase;
    expect([
      phaseOn('2026-11-07'), // day 7
      phaseOn('2026-11-08'), // day 8
      phaseOn('2026-11-14'), // day 14
      phaseOn('2026-11-15'), // day 15
      phaseOn('2026-11-21'), // day 21
      phaseOn('2026-11-22'), // day 22
    ]).toEqual([1, 2, 2, 3, 3, 4]);
  });

  it('counts negative days before the start, still phase 0', () => {
    expect(rolloutDay('2026-11-10', 'UTC', noon('2026-11-01'))).toMatchObject({ day: -8, phase: 0 });
  });

  it('turns the day at local midnight, not at UTC midnight', () => {
    // 23:59 UTC on 1 Nov is 08:59 on 2 Nov in Tokyo; 00:01 UTC on 2 Nov is still 1 Nov in New York.
    expect(rolloutDay('2026-11-02', 'Asia/Tokyo', new Date('2026-11-01T23:59:00Z')).day).toBe(1);
    expect(rolloutDay('2026-11-02', 'UTC', new Date('2026-11-01T23:59:00Z')).day).toBe(0);
    expect(rolloutDay('2026-11-02', 'America/New_York', new Date('2026-11-02T00:01:00Z')).day).toBe(0);
  });
});

describe('phaseDates', () => {
  it('gives each of the four phases seven consecutive dates', () => {
    expect([1, 2, 3, 4].map((p) => phaseDates('2026-11-02', p))).toEqual([
      { first: '2026-11-02', last: '2026-11-08' },
      { first: '2026-11-09', last: '2026-11-15' },
      { first: '2026-11-16', last: '2026-11-22' },
      { first: '2026-11-23', last: '2026-11-29' },
    ]);
  });

  it('crosses a year end', () => {
    expect(phaseDates('2026-12-20', 2)).toEqual({ first: '2026-12-27', last: '2027-01-02' });
  });

  it('agrees with rolloutDay on which phase a date is in', () => {
    const start = '2027-02-15';
    for (const p of [1, 2, 3, 4]) {
      const { first, last } = phaseDates(start, p);
      expect(rolloutDay(start, 'UTC', noon(first)).phase).toBe(p);
      expect(rolloutDay(start, 'UTC', noon(last)).phase).toBe(p);
    }
  });
});

describe('todayIn and prettyDate', () => {
  it('gives the calendar date in the time zone', () => {
    const t = new Date('2026-06-30T22:30:00Z');
    expect(todayIn('UTC', t)).toBe('2026-06-30');
    expect(todayIn('Europe/London', t)).toBe('2026-06-30');
    expect(todayIn('Europe/Berlin', t)).toBe('2026-07-01');
    expect(todayIn('Pacific/Honolulu', new Date('2026-07-01T09:00:00Z'))).toBe('2026-06-30');
  });

  it('writes a date for people, with the weekday', () => {
    expect(prettyDate('2026-11-02')).toBe('Mon 2 Nov 2026');
    expect(prettyDate('2028-02-29')).toBe('Tue 29 Feb 2028');
  });
});
