// test/rollout-calendar.test.ts checks the gates against the shipped bizosaas template; this checks
// the rules on a small template where every count is visible.
import { describe, expect, it } from 'vitest';
import { effectivePhase, gateRefusal, progressOf } from '../../src/checklists/progress.js';
import { type ItemState, type Template, Template as TemplateSchema } from '../../src/checklists/schema.js';

const items = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}`, text: `${prefix} item ${i + 1}` }));

const template: Template = TemplateSchema.parse({
  name: 'small',
  phases: [
    { phase: 1, title: 'Staging', checklist: 'staging' },
    { phase: 2, title: 'Preprod', checklist: 'preprod' },
    { phase: 3, title: 'Production', checklist: 'pre' },
    { phase: 4, title: 'Monitoring', checklist: 'post' },
  ],
  checklists: {
    staging: { title: 'Staging', sections: [{ title: 'Setup', items: items('st', 2) }] },
    preprod: { title: 'Preprod', sections: [{ title: 'Tests', items: items('pp', 1) }] },
    pre: {
      title: 'Pre-deployment',
      sections: [
        { title: 'Environment', items: items('env', 6) },
        { title: 'Team', items: items('team', 4) },
      ],
    },
    post: { title: 'Post-deployment', sections: [{ title: 'Verify', items: items('post', 1) }] },
  },
});

const ticked = (...ids: string[]): Record<string, ItemState> =>
  Object.fromEntries(ids.map((id) => [id, { ticked: true, by: 'U0DEV', at: 0 }]));
const override = { by: 'U0LEAD', reason: 'done elsewhere', at: 0 };
const noOverrides = { overrides: {} };

describe('progressOf', () => {
  const pre = template.checklists.pre as Template['checklists'][string];

  it('counts ticked items per section and in all', () => {
    const p = progressOf(pre, ticked('env-1', 'env-2', 'team-4'));
    expect(p.done).toBe(3);
    expect(p.total).toBe(10);
    expect(p.sections).toEqual([
      { title: 'Environment', done: 2, total: 6 },
      { title: 'Team', done: 1, total: 4 },
    ]);
  });

  it('lists what is open in template order with its section', () => {
    const p = progressOf(pre, ticked('env-1', 'env-2', 'env-3', 'env-4', 'env-5', 'team-1', 'team-2'));
    expect(p.open.map((o) => [o.section, o.item.id])).toEqual([
      ['Environment', 'env-6'],
      ['Team', 'team-3'],
      ['Team', 'team-4'],
    ]);
  });

  it('does not count an item that was ticked and then unticked', () => {
    const states = { ...ticked('env-1'), 'env-2': { ticked: false, by: 'U0DEV', at: 1 } };
    expect(progressOf(pre, states).done).toBe(1);
  });

  it('ignores states of items the template does not have', () => {
    expect(progressOf(pre, ticked('gone-1', 'gone-2')).done).toBe(0);
  });
});

describe('effectivePhase', () => {
  it('never holds phase 1 or the time before the rollout', () => {
    expect(effectivePhase(1, template, {}, noOverrides)).toEqual({ phase: 1 });
    expect(effectivePhase(0, template, {}, noOverrides)).toEqual({ phase: 0 });
  });

  it('holds at the first earlier phase whose checklist is incomplete', () => {
    expect(effectivePhase(3, template, {}, noOverrides)).toEqual({ phase: 1, heldBy: 1 });
    const stagingDone = { staging: ticked('st-1', 'st-2') };
    expect(effectivePhase(3, template, stagingDone, noOverrides)).toEqual({ phase: 2, heldBy: 2 });
    expect(effectivePhase(3, template, { ...stagingDone, preprod: ticked('pp-1') }, noOverrides)).toEqual({
      phase: 3,
    });
  });

  it('lets a lead’s override of a phase count as complete', () => {
    expect(effectivePhase(2, template, {}, { overrides: { 'phase-1': override } })).toEqual({ phase: 2 });
  });

  it('does not let an override of a later phase skip an earlier incomplete one', () => {
    expect(effectivePhase(3, template, {}, { overrides: { 'phase-2': override } })).toEqual({
      phase: 1,
      heldBy: 1,
    });
  });

  it('after the rollout, still holds on an incomplete phase 4 checklist', () => {
    const done = {
      staging: ticked('st-1', 'st-2'),
      preprod: ticked('pp-1'),
      pre: ticked(...items('env', 6).map((i) => i.id), ...items('team', 4).map((i) => i.id)),
    };
    expect(effectivePhase(5, template, done, noOverrides)).toEqual({ phase: 4, heldBy: 4 });
    expect(effectivePhase(5, template, { ...done, post: ticked('post-1') }, noOverrides)).toEqual({
      phase: 5,
    });
  });
});

describe('gateRefusal', () => {
  it('opens the gate when every pre-deployment item is ticked, or a lead overrode it', () => {
    const all = ticked(...items('env', 6).map((i) => i.id), ...items('team', 4).map((i) => i.id));
    expect(gateRefusal(template, all, noOverrides)).toBeUndefined();
    expect(gateRefusal(template, {}, { overrides: { pre: override } })).toBeUndefined();
  });

  it('lists the first eight open items, then how many more', () => {
    const text = gateRefusal(template, ticked('env-1'), noOverrides) as string;
    expect(text).toMatch(/^the pre-deployment checklist is not complete \(1\/10\); still open:\n/);
    expect(text).toContain('• Environment: env item 2');
    expect(text).toContain('• Team: team item 3');
    expect(text).not.toContain('team item 4');
    expect(text).toContain('\n…and 1 more\n');
    expect(text.match(/^• /gm)).toHaveLength(8);
  });

  it('lists every open item when there are eight or fewer, without “more”', () => {
    const text = gateRefusal(template, ticked('env-1', 'env-2'), noOverrides) as string;
    expect(text.match(/^• /gm)).toHaveLength(8);
    expect(text).not.toContain('more');
    expect(text).toContain('`/checklist pre`');
    expect(text).toContain('`/checklist override pre <reason>`');
  });

  it('does not open the gate for an override of another phase', () => {
    expect(gateRefusal(template, {}, { overrides: { 'phase-3': override } })).toBeDefined();
  });

  it('refuses before any rollout exists', () => {
    expect(gateRefusal(template, {}, undefined)).toMatch(/not complete \(0\/10\)/);
  });
});
