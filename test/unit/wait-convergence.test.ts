import { describe, expect, it } from 'vitest';
import type { Convergence } from '../../src/integrations/swarm.js';
import type { StepOutcome } from '../../src/releases/release-context.js';
import type { Release } from '../../src/releases/schema.js';
import { waitConvergence } from '../../src/releases/steps/wait-convergence.js';
import { at, fakeContext, release, step } from './helpers.js';

// unitConfig's policy: convergeTimeout 90s, pollInterval 500ms.
const NOW = at('2026-01-01T12:00:00Z');

function ctxSeeing(c: Convergence, calls: unknown[][] = []) {
  return fakeContext({
    now: () => NOW,
    swarmFor: () => ({
      convergence: async (...args: unknown[]) => {
        calls.push(args);
        return c;
      },
    }),
  });
}

const converging: Convergence = { state: 'converging', running: 1, desired: 2, detail: '1/2 tasks running' };

describe('waitConvergence step', () => {
  it('asks Swarm about the new colour’s service and image', async () => {
    const calls: unknown[][] = [];
    await waitConvergence(ctxSeeing(converging, calls), release(), step('converge'));
    expect(calls).toEqual([['fdunit-staging-api-green', 'flightdeck/testapp:1.2.0']]);
  });

  it('is done when every task runs the new image', async () => {
    const out = await waitConvergence(
      ctxSeeing({ state: 'converged', running: 2, desired: 2 }),
      release(),
      step('converge'),
    );
    expect(out).toMatchObject({ kind: 'done', detail: '2/2 tasks running flightdeck/testapp:1.2.0' });
  });

  it('polls again after pollInterval while tasks are still starting', async () => {
    const out = await waitConvergence(
      ctxSeeing(converging),
      release(),
      step('converge', { startedAt: NOW - 10_000 }),
    );
    expect(out).toEqual({ kind: 'wait', until: NOW + 500, detail: '1/2 tasks running' });
  });

  it('fails at once when Swarm reports the update failed', async () => {
    const out = await waitConvergence(
      ctxSeeing({ state: 'failed', detail: 'update paused: task exited (1)' }),
      release(),
      step('converge'),
    );
    expect(out).toEqual({
      kind: 'fail',
      reason: 'fdunit-staging-api-green did not converge: update paused: task exited (1)',
    });
  });

  it('fails after convergeTimeout, saying how long it waited', async () => {
    const out = await waitConvergence(
      ctxSeeing(converging),
      release(),
      step('converge', { startedAt: NOW - 90_001 }),
    );
    expect(out).toEqual({
      kind: 'fail',
      reason: 'fdunit-staging-api-green did not converge within 90 s: 1/2 tasks running',
    });
  });

  it('still waits at exactly convergeTimeout', async () => {
    const out = await waitConvergence(
      ctxSeeing(converging),
      release(),
      step('converge', { startedAt: NOW - 90_000 }),
    );
    expect(out.kind).toBe('wait');
  });
});

// unitConfig's policy: healthCheck { attempts: 2, interval: 300ms, timeout: 1s }.
describe('waitConvergence: health checks while Swarm monitors the update', () => {
  /** Every desired task runs the new image; Swarm has not yet completed the update (its monitor window). */
  const monitoring = (tasks = ['t1', 't2']): Convergence => ({
    state: 'converging',
    running: 2,
    desired: 2,
    detail: '2/2 tasks running flightdeck/testapp:1.2.0, update updating',
    tasks,
  });

  function ctxWith(c: Convergence, healthy: boolean, checks: unknown[][] = [], now = NOW) {
    return fakeContext({
      now: () => now,
      swarmFor: () => ({ convergence: async () => c }),
      traffic: {
        checkColour: async (...args: unknown[]) => {
          checks.push(args);
          return { ok: healthy, status: healthy ? 200 : 503, ms: 2, detail: healthy ? '200 in 2 ms' : '503' };
        },
      },
    });
  }

  /** A release at its converge step, with the health step after it. */
  const converging = (health = {}) =>
    release({ stepIndex: 0, steps: [step('converge', { startedAt: NOW - 2_000 }), step('health', health)] });

  /** What the release machine does with the outcome: apply its patch to the release. */
  function applied(out: StepOutcome, r: Release): Release {
    const next = structuredClone(r);
    const s = next.steps[next.stepIndex];
    if (out.kind === 'wait' && s) out.patch?.(next, s);
    if (out.kind === 'done') out.patch?.(next);
    return next;
  }

  it('checks the new colour once its tasks run and records the streak on the health step', async () => {
    const checks: unknown[][] = [];
    const r = converging();
    const out = await waitConvergence(ctxWith(monitoring(), true, checks), r, r.steps[0] as never);
    expect(checks).toEqual([['staging', 'api', 'green', 1_000]]);
    // The next check one interval on, before the poll (500 ms) is due.
    expect(out).toMatchObject({ kind: 'wait', until: NOW + 300 });
    expect(applied(out, r).steps[1]).toMatchObject({
      streak: 1,
      checkedAt: NOW,
      tasks: ['t1', 't2'],
      detail: '1/2 healthy: 200 in 2 ms',
    });
  });

  it('keeps the spacing: no check before one interval has passed since the last', async () => {
    const checks: unknown[][] = [];
    const r = converging({ streak: 1, checkedAt: NOW - 100, tasks: ['t1', 't2'] });
    const out = await waitConvergence(ctxWith(monitoring(), true, checks), r, r.steps[0] as never);
    expect(checks).toEqual([]);
    expect(out).toMatchObject({ kind: 'wait', until: NOW + 200 });
    expect(applied(out, r).steps[1]).toMatchObject({ streak: 1, checkedAt: NOW - 100 });
  });

  it('stops checking at a full streak and waits for Swarm', async () => {
    const checks: unknown[][] = [];
    const r = converging({ streak: 2, checkedAt: NOW - 400, tasks: ['t1', 't2'], detail: '2/2 healthy: x' });
    const out = await waitConvergence(ctxWith(monitoring(), true, checks), r, r.steps[0] as never);
    expect(checks).toEqual([]);
    expect(out).toMatchObject({ kind: 'wait', until: NOW + 500 });
  });

  it('starts over, counting no failure, when a check fails before convergence', async () => {
    const r = converging({ streak: 1, checkedAt: NOW - 300, tasks: ['t1', 't2'] });
    const out = await waitConvergence(ctxWith(monitoring(), false), r, r.steps[0] as never);
    const h = applied(out, r).steps[1];
    expect(h).toMatchObject({ streak: 0, failures: 0, checkedAt: NOW });
  });

  it('starts over when the tasks changed (one restarted) since the checks began', async () => {
    const r = converging({ streak: 1, checkedAt: NOW - 300, tasks: ['t1', 't0'] });
    const out = await waitConvergence(ctxWith(monitoring(), true), r, r.steps[0] as never);
    expect(applied(out, r).steps[1]).toMatchObject({ streak: 1, tasks: ['t1', 't2'] });
  });

  it('forgets checks of other tasks than those that converged', async () => {
    const r = converging({ streak: 2, checkedAt: NOW - 300, tasks: ['t1', 't0'], detail: '2/2 healthy: x' });
    const done: Convergence = { state: 'converged', running: 2, desired: 2, tasks: ['t1', 't2'] };
    const out = await waitConvergence(ctxWith(done, true), r, r.steps[0] as never);
    expect(out.kind).toBe('done');
    const h = applied(out, r).steps[1];
    expect(h?.streak).toBe(0);
    expect(h?.checkedAt).toBeUndefined();
  });

  it('keeps checks of the tasks that converged', async () => {
    const r = converging({ streak: 2, checkedAt: NOW - 300, tasks: ['t1', 't2'], detail: '2/2 healthy: x' });
    const done: Convergence = { state: 'converged', running: 2, desired: 2, tasks: ['t1', 't2'] };
    const out = await waitConvergence(ctxWith(done, true), r, r.steps[0] as never);
    expect(applied(out, r).steps[1]).toMatchObject({ streak: 2, checkedAt: NOW - 300 });
  });

  it('looks again soon at a task Swarm is starting, not a whole poll later', async () => {
    const c: Convergence = { state: 'converging', running: 0, desired: 1, detail: '0/1', starting: 1 };
    const r = converging();
    const out = await waitConvergence(ctxWith(c, true), r, r.steps[0] as never);
    expect(out).toMatchObject({ kind: 'wait', until: NOW + 250 });
  });
});
