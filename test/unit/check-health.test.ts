import { describe, expect, it } from 'vitest';
import type { StepOutcome } from '../../src/releases/release-context.js';
import type { Step } from '../../src/releases/schema.js';
import { checkHealth } from '../../src/releases/steps/check-health.js';
import { at, fakeContext, release, step } from './helpers.js';

// unitConfig's policy: healthCheck { attempts: 2, interval: 300ms, timeout: 1s }.
const NOW = at('2026-01-01T12:00:00Z');

function ctxAnswering(ok: boolean, calls: unknown[][] = []) {
  return fakeContext({
    now: () => NOW,
    traffic: {
      checkColour: async (...args: unknown[]) => {
        calls.push(args);
        return {
          ok,
          status: ok ? 200 : 503,
          ms: 2,
          detail: ok ? 'http://x/health 200 in 2 ms' : 'answered 503',
        };
      },
    },
  });
}

/** What the release machine does with a wait: apply the patch to the step. */
function applied(out: StepOutcome, s: Step): Step {
  const next = { ...s };
  if (out.kind === 'wait') out.patch?.(release(), next);
  return next;
}

describe('checkHealth step', () => {
  it('checks the new colour of the release’s service with the configured timeout', async () => {
    const calls: unknown[][] = [];
    await checkHealth(ctxAnswering(true, calls), release(), step('health'));
    expect(calls).toEqual([['staging', 'api', 'green', 1_000]]);
  });

  it('waits one interval after a healthy answer that does not yet make a full streak', async () => {
    const out = await checkHealth(ctxAnswering(true), release(), step('health'));
    expect(out).toMatchObject({ kind: 'wait', until: NOW + 300, detail: '1/2 healthy' });
    expect(applied(out, step('health')).streak).toBe(1);
  });

  it('is done once `attempts` healthy answers come in a row', async () => {
    const out = await checkHealth(ctxAnswering(true), release(), step('health', { streak: 1 }));
    expect(out).toMatchObject({ kind: 'done', detail: '2/2 healthy: http://x/health 200 in 2 ms' });
  });

  it('starts the streak over after an unhealthy answer and says why it retries', async () => {
    const out = await checkHealth(ctxAnswering(false), release(), step('health', { streak: 1 }));
    expect(out).toMatchObject({ kind: 'wait', detail: 'unhealthy (answered 503), retrying' });
    const s = applied(out, step('health', { streak: 1 }));
    expect(s.streak).toBe(0);
    expect(s.failures).toBe(1);
  });

  it('gives up after three times `attempts` unhealthy answers, naming the colour', async () => {
    const almost = await checkHealth(ctxAnswering(false), release(), step('health', { failures: 4 }));
    expect(almost.kind).toBe('wait');
    const out = await checkHealth(ctxAnswering(false), release(), step('health', { failures: 5 }));
    expect(out).toEqual({ kind: 'fail', reason: 'green is not healthy: answered 503' });
  });

  it('does not count healthy answers as failures', async () => {
    const out = await checkHealth(ctxAnswering(true), release(), step('health', { failures: 5 }));
    expect(applied(out, step('health', { failures: 5 })).failures).toBe(5);
  });
});

describe('checkHealth after checks made while Swarm confirmed the update', () => {
  it('is done at once when the streak is already complete', async () => {
    const calls: unknown[][] = [];
    const out = await checkHealth(
      ctxAnswering(true, calls),
      release(),
      step('health', { streak: 2, checkedAt: NOW - 500, detail: '2/2 healthy: 200 in 2 ms' }),
    );
    expect(calls).toEqual([]);
    expect(out).toEqual({
      kind: 'done',
      detail: '2/2 healthy: 200 in 2 ms (checked while Swarm confirmed the update)',
    });
  });

  it('waits out the interval since the last check before the next', async () => {
    const calls: unknown[][] = [];
    const out = await checkHealth(
      ctxAnswering(true, calls),
      release(),
      step('health', { streak: 1, checkedAt: NOW - 100 }),
    );
    expect(calls).toEqual([]);
    expect(out).toMatchObject({ kind: 'wait', until: NOW + 200 });
  });

  it('carries the streak on once the interval has passed', async () => {
    const out = await checkHealth(
      ctxAnswering(true),
      release(),
      step('health', { streak: 1, checkedAt: NOW - 300 }),
    );
    expect(out).toMatchObject({ kind: 'done', detail: '2/2 healthy: http://x/health 200 in 2 ms' });
  });

  it('records when it checked, for the spacing of the next check', async () => {
    const out = await checkHealth(ctxAnswering(true), release(), step('health'));
    expect(applied(out, step('health')).checkedAt).toBe(NOW);
  });
});
