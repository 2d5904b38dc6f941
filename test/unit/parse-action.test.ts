import { describe, expect, it } from 'vitest';
import { parseButton, parseChecklistTick } from '../../src/commands/parse-action.js';

describe('parseButton: release buttons', () => {
  it.each(['approve', 'reject', 'promote', 'pause', 'resume', 'abort'])(
    'release_%s names the release',
    (action) => {
      expect(parseButton(`release_${action}`, 'rel-20260101-api-1')).toEqual({
        command: 'release',
        action,
        releaseId: 'rel-20260101-api-1',
      });
    },
  );

  it('refuses a value that is no release id', () => {
    expect(parseButton('release_approve', 'rel-')).toBeUndefined();
    expect(parseButton('release_approve', 'REL-1')).toBeUndefined();
    expect(parseButton('release_approve', 'rel-1; drop')).toBeUndefined();
    expect(parseButton('release_approve', '')).toBeUndefined();
  });

  it('refuses an action that is not one of the release buttons', () => {
    expect(parseButton('release_deploy', 'rel-1')).toBeUndefined();
    expect(parseButton('release_approve_all', 'rel-1')).toBeUndefined();
    expect(parseButton('xrelease_approve', 'rel-1')).toBeUndefined();
  });
});

describe('parseButton: alert buttons', () => {
  it('acknowledges the alert named by its fingerprint', () => {
    expect(parseButton('alert_ack', 'abc123')).toEqual({ command: 'alert', action: 'ack', target: 'abc123' });
  });

  it('silences for the duration after the bar', () => {
    expect(parseButton('alert_silence', 'abc123|4h')).toEqual({
      command: 'alert',
      action: 'silence',
      target: 'abc123',
      duration: '4h',
    });
  });

  it('refuses a silence for a duration the message never offered', () => {
    expect(parseButton('alert_silence', 'abc123|2h')).toBeUndefined();
    expect(parseButton('alert_silence', 'abc123|999h')).toBeUndefined();
  });

  it('maps the group button to ack-group and keeps rollback', () => {
    expect(parseButton('alert_group_ack', 'feed01')).toEqual({
      command: 'alert',
      action: 'ack-group',
      target: 'feed01',
    });
    expect(parseButton('alert_rollback', 'abc123')).toEqual({
      command: 'alert',
      action: 'rollback',
      target: 'abc123',
    });
  });

  it('refuses a target that is not a hex fingerprint', () => {
    expect(parseButton('alert_ack', 'not-hex')).toBeUndefined();
    expect(parseButton('alert_ack', '')).toBeUndefined();
    expect(parseButton('alert_ack', 'a'.repeat(65))).toBeUndefined();
  });
});

describe('parseButton: rollback confirmation and checklist recheck', () => {
  it('reads environment|target from the rollback confirm button', () => {
    expect(parseButton('rollback_confirm', 'production|api')).toEqual({
      command: 'rollback',
      action: 'confirm',
      environment: 'production',
      target: 'api',
    });
    expect(parseButton('rollback_confirm', 'production|all')).toMatchObject({ target: 'all' });
  });

  it('refuses a rollback confirm without a target', () => {
    expect(parseButton('rollback_confirm', 'production')).toBeUndefined();
  });

  it('rechecks the phase the button names, 1 to 4 only', () => {
    expect(parseButton('checklist_recheck', '2')).toEqual({
      command: 'checklist',
      action: 'recheck',
      which: { phase: 2 },
    });
    expect(parseButton('checklist_recheck', '0')).toBeUndefined();
    expect(parseButton('checklist_recheck', '5')).toBeUndefined();
    expect(parseButton('checklist_recheck', 'pre')).toBeUndefined();
    expect(parseButton('checklist_recheck', '')).toBeUndefined();
  });

  it('knows nothing of other action ids', () => {
    expect(parseButton('deploy', 'api')).toBeUndefined();
    expect(parseButton('constructor', 'x')).toBeUndefined();
    expect(parseButton('__proto__', 'x')).toBeUndefined();
  });
});

describe('parseChecklistTick', () => {
  const BLOCK = 'cl|pre|0|0';
  const options = ['env-vars', 'secrets', 'dns', 'tls'].map((value) => ({ value }));
  /** The message as this person saw it: `shown` were ticked then. */
  const message = (shown: string[], blockId = BLOCK) => ({
    blocks: [
      { type: 'section', block_id: 'head' },
      {
        type: 'actions',
        block_id: blockId,
        elements: [
          {
            type: 'checkboxes',
            options,
            ...(shown.length > 0 ? { initial_options: shown.map((value) => ({ value })) } : {}),
          },
        ],
      },
    ],
  });
  const click = (selected: string[], blockId = BLOCK) => ({
    action_id: 'checklist_tick',
    block_id: blockId,
    selected_options: selected.map((value) => ({ value })),
  });

  it('turns a tick into the one item this person ticked', () => {
    expect(parseChecklistTick(click(['env-vars', 'dns']), message(['env-vars']))).toEqual({
      command: 'checklist',
      action: 'tick',
      checklistId: 'pre',
      changes: [{ itemId: 'dns', ticked: true }],
    });
  });

  it('turns an untick into that item unticked', () => {
    expect(parseChecklistTick(click(['dns']), message(['env-vars', 'dns']))).toMatchObject({
      changes: [{ itemId: 'env-vars', ticked: false }],
    });
  });

  it('never undoes what others ticked since the message was drawn (only the difference counts)', () => {
    // Someone else ticked "secrets" meanwhile; this person's stale message does not show it and
    // their click does not include it: that is no change by them.
    const parsed = parseChecklistTick(click(['tls']), message([]));
    expect(parsed).toMatchObject({ changes: [{ itemId: 'tls', ticked: true }] });
  });

  it('ignores selected values that the message never offered', () => {
    expect(parseChecklistTick(click(['dns', 'forged-item']), message([]))).toMatchObject({
      changes: [{ itemId: 'dns', ticked: true }],
    });
  });

  it('finds the clicked group among several by its block id', () => {
    const msg = { blocks: [...message(['tls'], 'cl|pre|0|0').blocks, ...message([], 'cl|pre|1|0').blocks] };
    expect(parseChecklistTick(click(['secrets'], 'cl|pre|1|0'), msg)).toMatchObject({
      changes: [{ itemId: 'secrets', ticked: true }],
    });
  });

  it('is a tick with no changes when the message is missing', () => {
    expect(parseChecklistTick(click(['dns']), undefined)).toMatchObject({ checklistId: 'pre', changes: [] });
  });

  it('refuses a block id that is not a checklist group', () => {
    expect(parseChecklistTick(click(['dns'], 'release:rel-1'), message([], 'release:rel-1'))).toBeUndefined();
    expect(parseChecklistTick(click(['dns'], 'cl|PRE|0|0'), message([], 'cl|PRE|0|0'))).toBeUndefined();
    expect(parseChecklistTick(click(['dns'], 'cl|pre|0'), message([], 'cl|pre|0'))).toBeUndefined();
    expect(parseChecklistTick({ action_id: 'checklist_tick' }, message([]))).toBeUndefined();
  });

  it('refuses an item id that could not come from a template', () => {
    const msg = {
      blocks: [{ block_id: BLOCK, elements: [{ options: [{ value: 'Bad Item' }] }] }],
    };
    expect(parseChecklistTick(click(['Bad Item']), msg)).toBeUndefined();
  });
});
