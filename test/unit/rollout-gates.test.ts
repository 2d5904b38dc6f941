// The phase rule of production deploys (issue 15, item 5): phases pass when complete or at their
// template's passRate, and a deploy waits for phase 3 of the calendar and phases 1–2 passed.
import { describe, expect, it } from 'vitest';
import { loadTemplate } from '../../src/checklists/load-template.js';
import { effectivePhase, gateRefusal, phasePassed, phaseRefusal } from '../../src/checklists/progress.js';
import { tickBlockId } from '../../src/checklists/render-checklist.js';
import { covers, pickRollout } from '../../src/checklists/rollouts.js';
import { type ItemState, type RolloutRecord, Template } from '../../src/checklists/schema.js';
import { parseButton, parseChecklistTick } from '../../src/commands/parse-action.js';

const items = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i + 1}`, text: `${prefix} item ${i + 1}` }));
const template = Template.parse({
  name: 'gates',
  phases: [
    { phase: 1, title: 'Staging', checklist: 'staging' },
    { phase: 2, title: 'Preprod', checklist: 'preprod', passRate: 0.95 },
    { phase: 3, title: 'Production', checklist: 'pre' },
    { phase: 4, title: 'Monitoring', checklist: 'post' },
  ],
  checklists: {
    staging: { title: 'Staging', sections: [{ title: 'S', items: items('st', 2) }] },
    preprod: { title: 'Preprod', sections: [{ title: 'P', items: items('pp', 20) }] },
    pre: { title: 'Pre', sections: [{ title: 'R', items: items('pre', 1) }] },
    post: { title: 'Post', sections: [{ title: 'V', items: items('post', 1) }] },
  },
});
const ticked = (...ids: string[]): Record<string, ItemState> =>
  Object.fromEntries(ids.map((id) => [id, { ticked: true, by: 'U0DEV', at: 0 }]));
const none = { overrides: {} };
const pp = (n: number) => ticked(...Array.from({ length: n }, (_, i) => `pp-${i + 1}`));
const calendar = (phase: number, day = (phase - 1) * 7 + 1) => ({
  phase,
  day,
  phase3Starts: 'Mon 16 Nov 2026',
});

describe('passRate', () => {
  it('is checked by the template schema (0 < passRate ≤ 1)', () => {
    const raw = (rate: number) => ({
      ...template,
      phases: template.phases.map((p) => (p.phase === 2 ? { ...p, passRate: rate } : p)),
    });
    expect(Template.safeParse(raw(0)).success).toBe(false);
    expect(Template.safeParse(raw(95)).success).toBe(false);
    expect(Template.safeParse(raw(1)).success).toBe(true);
  });

  it('passes phase 2 at 19 of 20 (95%) and not at 18; phase 1 only when complete', () => {
    expect(phasePassed(2, template, { preprod: pp(19) }, none)).toMatchObject({ passed: true, needed: 19 });
    expect(phasePassed(2, template, { preprod: pp(18) }, none)).toMatchObject({ passed: false, done: 18 });
    expect(phasePassed(1, template, { staging: ticked('st-1') }, none).passed).toBe(false);
    expect(phasePassed(1, template, { staging: ticked('st-1', 'st-2') }, none).passed).toBe(true);
  });

  it('lets the rollout advance past a phase that passed at its rate', () => {
    const states = { staging: ticked('st-1', 'st-2'), preprod: pp(19) };
    expect(effectivePhase(3, template, states, none)).toEqual({ phase: 3 });
    expect(effectivePhase(3, template, { ...states, preprod: pp(18) }, none)).toEqual({
      phase: 2,
      heldBy: 2,
    });
  });

  it('the shipped bizosaas template passes pre-production validation at 95%', () => {
    expect(loadTemplate('bizosaas').phases[1]).toMatchObject({ phase: 2, passRate: 0.95 });
  });
});

describe('phaseRefusal', () => {
  const passed = { staging: ticked('st-1', 'st-2'), preprod: pp(19) };

  it('refuses in phase 1 and 2 of the calendar, saying when production opens', () => {
    expect(phaseRefusal(template, passed, none, calendar(1))).toBe(
      'the rollout is in phase 1 (day 1 of 28); production deploys open in phase 3, on Mon 16 Nov 2026',
    );
    expect(phaseRefusal(template, passed, none, { phase: 0, day: -2, phase3Starts: 'x' })).toMatch(
      /has not started yet/,
    );
  });

  it('refuses in phase 3 while phase 1 or 2 has not passed, with the count and the rule', () => {
    const text = phaseRefusal(template, { preprod: pp(18) }, none, calendar(3));
    expect(text).toBe(
      'phase 1 (Staging) has not passed: 0/2 ticked (0%), needs all; phase 2 (Preprod) has not passed: 18/20 ticked (90%), needs 95% (19)',
    );
  });

  it('allows from phase 3 once phases 1 and 2 passed, or a lead let them advance', () => {
    expect(phaseRefusal(template, passed, none, calendar(3))).toBeUndefined();
    expect(phaseRefusal(template, passed, none, calendar(4))).toBeUndefined();
    const overrides = {
      'phase-1': { by: 'U0LEAD', reason: 'staging done elsewhere', at: 0 },
      'phase-2': { by: 'U0LEAD', reason: 'ok', at: 0 },
    };
    expect(phaseRefusal(template, {}, { overrides }, calendar(3))).toBeUndefined();
  });

  it('names the rollout in the pre-deployment refusal and its commands', () => {
    const text = gateRefusal(template, {}, none, 'web-q2') as string;
    expect(text).toMatch(
      /^the pre-deployment checklist is not complete \(0\/1\) of rollout \*web-q2\*; still open:/,
    );
    expect(text).toContain('`/checklist pre web-q2`');
    expect(text).toContain('`/checklist override web-q2 pre <reason>`');
  });
});

const record = (id: string, more: Partial<RolloutRecord> = {}): RolloutRecord => ({
  id,
  template: 'bizosaas',
  startDate: '2026-11-02',
  channels: [],
  status: 'active',
  setBy: 'U0LEAD',
  setAt: 0,
  overrides: {},
  ...more,
});

describe('which rollouts a deploy and a channel mean', () => {
  it('covers by services and environments (absent: all); finished ones cover nothing', () => {
    const api = record('api-q1', { services: ['api'], environments: ['production'] });
    expect(covers(api, 'production', 'api')).toBe(true);
    expect(covers(api, 'production', 'web')).toBe(false);
    expect(covers(api, 'staging', 'api')).toBe(false);
    expect(covers(api, 'production')).toBe(true);
    expect(covers(record('all'), 'staging', 'web')).toBe(true);
    expect(covers(record('old', { status: 'finished' }), 'production', 'api')).toBe(false);
  });

  it("picks the channel's rollout, the only active one, or asks which", () => {
    const a = record('a', { channels: ['C1'] });
    const b = record('b', { channels: ['C2'] });
    expect(pickRollout([a, b], 'C2')).toEqual({ rollout: b });
    expect(pickRollout([a], 'C9')).toEqual({ rollout: a });
    expect(pickRollout([a, b], 'C9')).toEqual({
      error: 'Which rollout? Active: *a*, *b*. Name it, e.g. `/checklist status a`.',
    });
    expect(pickRollout([], 'C1')).toEqual({ error: '' });
  });
});

describe('checklist messages carry their rollout or release', () => {
  const message = (blockId: string) => ({
    blocks: [
      {
        block_id: blockId,
        elements: [{ options: [{ value: 'a' }, { value: 'b' }], initial_options: [{ value: 'a' }] }],
      },
    ],
  });
  const click = (blockId: string) =>
    parseChecklistTick(
      { action_id: 'checklist_tick', block_id: blockId, selected_options: [{ value: 'a' }, { value: 'b' }] },
      message(blockId),
    );

  it('parses the rollout, the release, or neither (messages from before named rollouts)', () => {
    expect(tickBlockId('pre', 0, 1, 'teamflow-q1')).toBe('cl|teamflow-q1/pre|0|1');
    expect(click('cl|teamflow-q1/pre|0|1')).toEqual({
      command: 'checklist',
      action: 'tick',
      checklistId: 'pre',
      changes: [{ itemId: 'b', ticked: true }],
      rollout: 'teamflow-q1',
    });
    expect(click('cl|rel-production-api-abc123/post|0|0')).toMatchObject({
      checklistId: 'post',
      release: 'rel-production-api-abc123',
    });
    const legacy = click('cl|pre|0|0');
    expect(legacy).toMatchObject({ checklistId: 'pre' });
    expect(legacy).not.toHaveProperty('rollout');
    expect(click('cl|Bad/pre|0|0')).toBeUndefined();
  });

  it('parses re-check buttons old and new', () => {
    expect(parseButton('checklist_recheck', '3')).toEqual({
      command: 'checklist',
      action: 'recheck',
      which: { phase: 3 },
    });
    expect(parseButton('checklist_recheck', 'q1|2')).toMatchObject({ which: { phase: 2 }, rollout: 'q1' });
    expect(parseButton('checklist_recheck', 'rel-production-api-x1|post')).toMatchObject({
      which: 'post',
      release: 'rel-production-api-x1',
    });
    expect(parseButton('checklist_recheck', 'q1|9')).toBeUndefined();
  });
});
