import { describe, expect, it } from 'vitest';
import { releasePolicy } from '../../src/config/schema.js';
import { planSteps } from '../../src/releases/plan-steps.js';
import { ACTIONS, releaseLine, renderRelease } from '../../src/releases/render-release.js';
import type { Release } from '../../src/releases/schema.js';
import { at, release, unitConfig } from './helpers.js';

const plan = planSteps(releasePolicy(unitConfig(), 'staging'), {
  swarmService: 'fdunit-staging-api-green',
  colour: 'green',
  image: 'flightdeck/testapp:1.2.0',
});

/** Steps 0…stepIndex-1 done, the current one as given. */
function stepsAt(stepIndex: number, current: Partial<Release['steps'][number]> = {}): Release['steps'] {
  return plan.map((s, i) =>
    i < stepIndex
      ? { ...s, status: 'done' as const }
      : i === stepIndex
        ? { ...s, status: 'running' as const, ...current }
        : s,
  );
}

type Block = {
  type: string;
  block_id?: string;
  text?: { text: string };
  elements?: Array<Record<string, unknown>>;
};
const blocksOf = (r: Release) => renderRelease(r).blocks as Block[];
const allText = (r: Release) =>
  blocksOf(r)
    .flatMap((b) => [
      b.text?.text ?? '',
      ...(b.elements ?? []).map((e) => String((e as { text?: unknown }).text ?? '')),
    ])
    .join('\n');
const buttonIds = (r: Release) =>
  blocksOf(r)
    .filter((b) => b.type === 'actions')
    .flatMap((b) => (b.elements ?? []).map((e) => e.action_id));

describe('renderRelease', () => {
  it('heads the message with the status, service, version, environment and colours', () => {
    const r = release({ steps: stepsAt(3) });
    expect(allText(r)).toContain('🚀 Releasing: *api* `1.2.0` to *staging* (blue → green)');
    expect(renderRelease(r).text).toBe('🚀 Releasing: api 1.2.0 to staging');
  });

  it('shows every step with its state', () => {
    const text = allText(release({ steps: stepsAt(3, { detail: '10% → green (nginx reloaded in 12 ms)' }) }));
    expect(text).toContain('✅ Update green (fdunit-staging-api-green) to flightdeck/testapp:1.2.0');
    expect(text).toContain('🔄 Traffic 10% → green — 10% → green (nginx reloaded in 12 ms)');
    expect(text).toContain('▫️ Record green as live');
  });

  it('says until when a soak waits, and that Promote skips it', () => {
    const r = release({
      steps: stepsAt(4, { status: 'waiting', due: at('2026-01-01T13:05:00Z'), detail: 'x' }),
    });
    expect(allText(r)).toContain('⏳ Soak 1h at 10% — until 13:05:00 UTC (Promote skips the rest)');
  });

  it('says when a waiting check looks again', () => {
    const r = release({
      steps: stepsAt(2, { status: 'waiting', due: at('2026-01-01T12:00:02Z'), detail: '1/2 healthy' }),
    });
    expect(allText(r)).toContain('⏳ Health checks of green — 1/2 healthy, next check 12:00:02 UTC');
  });

  it('shows the split as bars', () => {
    expect(allText(release({ weights: { blue: 90, green: 10 } }))).toContain(
      'Traffic: blue `█████████░  90%` · green `█░░░░░░░░░  10%`',
    );
  });

  it('names who asked and who approved', () => {
    const text = allText(release({ approvedBy: { id: 'U0LEAD', name: 'lead' } }));
    expect(text).toContain(
      'Requested by <@U0DEV> · approved by <@U0LEAD> · `rel-20260101-api-1` · flightdeck/testapp:1.2.0',
    );
  });

  it('offers Promote, Pause and Abort while running; Abort confirms where traffic goes', () => {
    const r = release({ steps: stepsAt(4) });
    expect(buttonIds(r)).toEqual([ACTIONS.promote, ACTIONS.pause, ACTIONS.abort]);
    const actions = blocksOf(r).find((b) => b.type === 'actions');
    expect(actions?.block_id).toBe('release:rel-20260101-api-1');
    expect(JSON.stringify(actions)).toContain('All traffic goes back to blue at once.');
    expect(actions?.elements?.every((e) => e.value === 'rel-20260101-api-1')).toBe(true);
  });

  it('offers Resume and Abort while paused', () => {
    const r = release({ status: 'paused' });
    expect(allText(r)).toMatch(/^⏸️ Paused: /);
    expect(buttonIds(r)).toEqual([ACTIONS.resume, ACTIONS.abort]);
  });

  it('offers Approve and Reject while awaiting approval, with the deadline', () => {
    const r = release({ status: 'awaiting_approval', approvalDeadline: at('2026-01-01T11:00:00Z') });
    expect(buttonIds(r)).toEqual([ACTIONS.approve, ACTIONS.reject]);
    expect(allText(r)).toContain('A lead other than <@U0DEV> must approve before 11:00:00 UTC');
  });

  it.each(['completed', 'rolled_back', 'failed', 'rejected', 'expired', 'cancelled'] as const)(
    'has no buttons once %s',
    (status) => {
      expect(buttonIds(release({ status }))).toEqual([]);
    },
  );

  it('shows the outcome and the last gate results', () => {
    const r = release({
      status: 'rolled_back',
      outcome: 'Rolled back: gate failed',
      gateResults: [
        { name: 'error rate', value: 0.2, limit: '≤ 0.01', ok: false },
        { name: 'rps', value: null, limit: '≥ 1', ok: false },
      ],
    });
    const text = allText(r);
    expect(text).toMatch(/^↩️ Rolled back: /);
    expect(text).toContain('Rolled back: gate failed');
    expect(text).toContain('Last gate: ✗ error rate 0.2 (≤ 0.01) · ✗ rps no data (≥ 1)');
  });

  it('shows the latest takeover after a crash, not hiding it', () => {
    const r = release({
      events: [
        { at: 1, text: '↻ resumed by worker 1' },
        { at: 2, text: 'shifted' },
        { at: 3, text: '↻ resumed by worker 2' },
      ],
    });
    const text = allText(r);
    expect(text).toContain('↻ resumed by worker 2');
    expect(text).not.toContain('worker 1');
  });
});

describe('releaseLine', () => {
  it('is one line with the status icon, id, service, version, environment and requester', () => {
    const r = release({ status: 'completed', finishedAt: at('2026-01-01T12:34:00Z') });
    expect(releaseLine(r)).toBe(
      '✅ `rel-20260101-api-1` *api* 1.2.0 → staging (completed) by <@U0DEV>, 2026-01-01 12:34 UTC',
    );
  });

  it('names the current step of a running release, dated when it was created', () => {
    const r = release({ steps: stepsAt(4), stepIndex: 4 });
    expect(releaseLine(r)).toBe(
      '🚀 `rel-20260101-api-1` *api* 1.2.0 → staging (running — Soak 1h at 10%) by <@U0DEV>, 2026-01-01 10:00 UTC',
    );
  });

  it('writes statuses with spaces', () => {
    expect(releaseLine(release({ status: 'awaiting_approval' }))).toContain('(awaiting approval)');
    expect(releaseLine(release({ status: 'rolling_back' }))).toContain('(rolling back)');
  });
});
