import { describe, expect, it } from 'vitest';
import type { ServiceState, Weights } from '../../src/releases/schema.js';
import { shiftTraffic } from '../../src/releases/steps/shift-traffic.js';
import { fakeContext, release, step } from './helpers.js';

const held = (releaseId: string): ServiceState => ({
  live: 'blue',
  weights: { blue: 100, green: 0 },
  images: {},
  lastGood: { colour: 'blue' },
  inFlight: { releaseId, by: 'U0DEV', since: '2026-01-01T10:00:00Z', what: 'release 1.2.0' },
  updatedAt: '2026-01-01T10:00:00Z',
});

/** Traffic that records what it was asked and runs the step's guard against `state`. */
function fakeTraffic(opts: { unhealthy?: string[]; state?: ServiceState; live?: boolean } = {}) {
  const set: Array<{ env: string; svc: string; weights: Weights; refusal: string | undefined }> = [];
  const checked: Weights[] = [];
  return {
    set,
    checked,
    traffic: {
      unhealthyServing: async (_env: string, _svc: string, w: Weights) => {
        checked.push(w);
        return opts.unhealthy ?? [];
      },
      setWeights: async (
        env: string,
        svc: string,
        weights: Weights,
        guard: (s: ServiceState) => string | undefined,
      ) => {
        const refusal = guard(opts.state ?? held('rel-20260101-api-1'));
        set.push({ env, svc, weights, refusal });
        if (refusal) throw new Error(refusal);
        return {
          before: { blue: 100, green: 0 },
          apply: { changed: true, generation: 'g1', ms: 84.4, ...(opts.live ? { live: true } : {}) },
        };
      },
    },
  };
}

describe('shiftTraffic step', () => {
  it('gives the new colour its step’s share and the old colour the rest', async () => {
    const t = fakeTraffic();
    const out = await shiftTraffic(
      fakeContext({ traffic: t.traffic }),
      release(),
      step('shift', { percent: 10 }),
    );
    expect(t.set.map((s) => [s.env, s.svc, s.weights])).toEqual([
      ['staging', 'api', { blue: 90, green: 10 }],
    ]);
    expect(out).toMatchObject({ kind: 'done', detail: '10% → green (nginx reloaded in 84 ms)' });
    const r = release();
    out.patch?.(r, step('shift'));
    expect(r.weights).toEqual({ blue: 90, green: 10 });
  });

  it('says when nginx took the change live, without a reload', async () => {
    const t = fakeTraffic({ live: true });
    const out = await shiftTraffic(
      fakeContext({ traffic: t.traffic }),
      release(),
      step('shift', { percent: 50 }),
    );
    expect(out).toMatchObject({ detail: '50% → green (nginx updated live in 84 ms)' });
  });

  it('moves everything when the step names no percentage', async () => {
    const t = fakeTraffic();
    await shiftTraffic(fakeContext({ traffic: t.traffic }), release(), step('shift'));
    expect(t.set[0]?.weights).toEqual({ blue: 0, green: 100 });
  });

  it('checks the health of every colour that would serve, under the new split', async () => {
    const t = fakeTraffic();
    await shiftTraffic(fakeContext({ traffic: t.traffic }), release(), step('shift', { percent: 50 }));
    expect(t.checked).toEqual([{ blue: 50, green: 50 }]);
  });

  it('refuses to shift towards an unhealthy colour and changes no weights', async () => {
    const t = fakeTraffic({ unhealthy: ['http://127.0.0.1:38003/health answered 503'] });
    const out = await shiftTraffic(
      fakeContext({ traffic: t.traffic }),
      release(),
      step('shift', { percent: 50 }),
    );
    expect(out).toEqual({
      kind: 'fail',
      reason: 'not shifting traffic to an unhealthy colour: http://127.0.0.1:38003/health answered 503',
    });
    expect(t.set).toEqual([]);
  });

  it('only shifts while this release still holds the service', async () => {
    const t = fakeTraffic({ state: held('rel-someone-else') });
    await expect(
      shiftTraffic(fakeContext({ traffic: t.traffic }), release(), step('shift', { percent: 50 })),
    ).rejects.toThrow('rel-20260101-api-1 no longer holds api in staging');
    const unlocked = fakeTraffic({ state: { ...held('x'), inFlight: undefined } });
    await expect(
      shiftTraffic(fakeContext({ traffic: unlocked.traffic }), release(), step('shift', { percent: 50 })),
    ).rejects.toThrow(/no longer holds/);
  });
});
