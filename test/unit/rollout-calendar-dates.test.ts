import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTemplate } from '../../src/checklists/load-template.js';
import { effectivePhase, gateRefusal } from '../../src/checklists/progress.js';
import { phaseDates, rolloutDay } from '../../src/checklists/rollout-calendar.js';

const at = (iso: string) => new Date(iso);

describe('day N of 28 and the phase, in the team’s time zone', () => {
  it('counts across a month end', () => {
    expect(rolloutDay('2027-01-29', 'UTC', at('2027-02-04T12:00:00Z'))).toMatchObject({ day: 7, phase: 1 });
    expect(rolloutDay('2027-01-29', 'UTC', at('2027-02-05T00:00:00Z'))).toMatchObject({ day: 8, phase: 2 });
    expect(phaseDates('2027-01-29', 2)).toEqual({ first: '2027-02-05', last: '2027-02-11' });
  });

  it('counts across a leap day, and without one', () => {
    expect(rolloutDay('2028-02-20', 'UTC', at('2028-02-29T12:00:00Z')).day).toBe(10);
    expect(rolloutDay('2028-02-20', 'UTC', at('2028-03-01T12:00:00Z')).day).toBe(11);
    expect(rolloutDay('2027-02-20', 'UTC', at('2027-03-01T12:00:00Z')).day).toBe(10);
    expect(phaseDates('2028-02-15', 4)).toEqual({ first: '2028-03-07', last: '2028-03-13' });
  });

  it('follows the local date across a DST change (Europe/London, 29 March 2026)', () => {
    // 23:30 UTC on the 29th is already 00:30 BST on the 30th in London.
    expect(rolloutDay('2026-03-25', 'Europe/London', at('2026-03-29T00:30:00Z')).day).toBe(5);
    expect(rolloutDay('2026-03-25', 'Europe/London', at('2026-03-29T23:30:00Z')).day).toBe(6);
    expect(rolloutDay('2026-03-25', 'UTC', at('2026-03-29T23:30:00Z')).day).toBe(5);
    // And back in October: 23:30 UTC on 25 Oct is 23:30 GMT, still the 25th.
    expect(rolloutDay('2026-10-20', 'Europe/London', at('2026-10-25T23:30:00Z')).day).toBe(6);
  });

  it('uses the team’s date on the other side of the world', () => {
    expect(rolloutDay('2026-11-02', 'Asia/Tokyo', at('2026-11-21T20:00:00Z'))).toMatchObject({
      day: 21,
      today: '2026-11-22',
    });
    expect(rolloutDay('2026-11-02', 'America/Los_Angeles', at('2026-11-21T05:00:00Z'))).toMatchObject({
      day: 19,
      today: '2026-11-20',
    });
  });

  it('is phase 0 before day 1 and 5 after day 28', () => {
    expect(rolloutDay('2026-12-01', 'UTC', at('2026-11-30T12:00:00Z'))).toMatchObject({ day: 0, phase: 0 });
    expect(rolloutDay('2026-11-01', 'UTC', at('2026-11-28T12:00:00Z'))).toMatchObject({ day: 28, phase: 4 });
    expect(rolloutDay('2026-11-01', 'UTC', at('2026-11-29T12:00:00Z'))).toMatchObject({ day: 29, phase: 5 });
  });
});

describe('templates', () => {
  it('ships both seed template sets, valid', () => {
    const files = readdirSync(join(import.meta.dirname, '../../templates'));
    expect(files.sort()).toEqual(['bizosaas.yml', 'teamflow.yml']);
    const biz = loadTemplate('bizosaas');
    expect(biz.phases.map((p) => p.title)).toEqual([
      'Staging environment validation',
      'Pre-production testing',
      'Production deployment',
      'Post-deployment monitoring',
    ]);
    expect(biz.checklists.pre?.sections.map((s) => s.title)).toEqual([
      'Environment setup',
      'Application readiness',
      'Monitoring setup',
      'Team readiness',
    ]);
    expect(biz.checklists.post?.sections.map((s) => s.title)).toEqual([
      'Immediate verification',
      'Functional verification',
      'Performance verification',
      'Monitoring verification',
    ]);
    const tf = loadTemplate('teamflow');
    expect(Object.values(tf.checklists).flatMap((c) => c.sections.map((s) => s.title))).toEqual(
      expect.arrayContaining([
        'Infrastructure setup',
        'Application configuration',
        'Security configuration',
        'Monitoring and alerting',
        'Performance and scaling',
        'Backup and disaster recovery',
      ]),
    );
  });

  it('names what is wrong in a broken template', () => {
    expect(() => loadTemplate('/nonexistent/template.yml')).toThrow(/cannot read the template/);
  });
});

describe('gates', () => {
  const t = loadTemplate('bizosaas');
  it('holds the phase while an earlier checklist is incomplete, unless a lead overrides', () => {
    expect(effectivePhase(3, t, {}, { overrides: {} })).toEqual({ phase: 1, heldBy: 1 });
    const by = { by: 'U0LEAD', reason: 'done elsewhere', at: 0 };
    expect(effectivePhase(3, t, {}, { overrides: { 'phase-1': by } })).toEqual({ phase: 2, heldBy: 2 });
    expect(effectivePhase(3, t, {}, { overrides: { 'phase-1': by, 'phase-2': by } })).toEqual({ phase: 3 });
  });

  it('refuses production while the pre-deployment checklist is open, naming what is missing', () => {
    const text = gateRefusal(t, {}, { overrides: {} });
    expect(text).toMatch(/not complete \(0\/23\)/);
    expect(text).toContain('• Environment setup: Production environment variables configured');
    expect(text).toContain('/checklist override pre <reason>');
    expect(gateRefusal(t, {}, { overrides: { pre: { by: 'U0LEAD', reason: 'r', at: 0 } } })).toBeUndefined();
  });
});
