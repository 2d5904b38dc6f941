import { describe, expect, it } from 'vitest';
import type { Convergence } from '../../src/integrations/swarm.js';
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
    expect(out).toEqual({ kind: 'done', detail: '2/2 tasks running flightdeck/testapp:1.2.0' });
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
