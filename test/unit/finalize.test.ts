import { describe, expect, it } from 'vitest';
import type { ServiceState } from '../../src/releases/schema.js';
import { finalize, finalizedBy } from '../../src/releases/steps/finalize.js';
import { at, fakeContext, release, step, unitConfig } from './helpers.js';

const NOW = at('2026-01-01T12:00:00Z');
const ID = 'rel-20260101-api-1';

/** During a release of 1.2.0 to green: blue serves 1.1.0 and is the last good colour. */
const during = (): ServiceState => ({
  live: 'blue',
  weights: { blue: 0, green: 100 },
  images: { blue: 'flightdeck/testapp:1.1.0', green: 'flightdeck/testapp:1.2.0' },
  lastGood: { colour: 'blue', image: 'flightdeck/testapp:1.1.0' },
  inFlight: { releaseId: ID, by: 'U0DEV', since: '2026-01-01T10:00:00Z', what: 'release 1.2.0' },
  updatedAt: '2026-01-01T11:00:00Z',
});

/** A service state store in memory, with `mutate` as the real one (a copy in, an optional state out). */
function memoryStates(initial: ServiceState) {
  const box = { state: initial, writes: 0 };
  return {
    box,
    states: {
      mutate: async <T>(
        _env: string,
        _svc: string,
        fn: (s: ServiceState) => { state?: ServiceState; result: T },
      ) => {
        const { state, result } = fn(structuredClone(box.state));
        if (state) {
          box.state = state;
          box.writes += 1;
        }
        return result;
      },
    },
  };
}

function setup(
  opts: { state?: ServiceState; afterRelease?: 'keep' | 'scale-down'; scaleFails?: boolean } = {},
) {
  const mem = memoryStates(opts.state ?? during());
  const applied: number[] = [];
  const scaled: Array<[string, number]> = [];
  const config = unitConfig((raw) => {
    if (opts.afterRelease) raw.release = { ...raw.release, afterRelease: opts.afterRelease };
  });
  const ctx = fakeContext({
    config,
    now: () => NOW,
    states: mem.states,
    traffic: {
      apply: async () => {
        applied.push(mem.box.writes);
        return { changed: true, generation: 'g', ms: 1 };
      },
    },
    swarmFor: () => ({
      scale: async (name: string, n: number) => {
        scaled.push([name, n]);
        if (opts.scaleFails) throw new Error('node is down');
      },
    }),
  });
  return { ctx, mem, applied, scaled };
}

describe('finalize step', () => {
  it('records the new colour as live and last good, with both colours’ images, and frees the lock', async () => {
    const { ctx, mem } = setup();
    const out = await finalize(ctx, release(), step('finalize'));
    expect(out.kind).toBe('done');
    expect(mem.box.state).toMatchObject({
      live: 'green',
      weights: { blue: 0, green: 100 },
      lastGood: { colour: 'green', image: 'flightdeck/testapp:1.2.0' },
      images: { blue: 'flightdeck/testapp:1.1.0', green: 'flightdeck/testapp:1.2.0' },
    });
    expect(mem.box.state.inFlight).toBeUndefined();
  });

  it('remembers where a rollback goes: the colour and image that served before this release', async () => {
    const { ctx, mem } = setup();
    await finalize(ctx, release(), step('finalize'));
    expect(mem.box.state.previous).toEqual({
      colour: 'blue',
      image: 'flightdeck/testapp:1.1.0',
      releaseId: ID,
    });
  });

  it('applies nginx after the state is written, so nginx serves what is recorded', async () => {
    const { ctx, applied } = setup();
    await finalize(ctx, release(), step('finalize'));
    expect(applied).toEqual([1]);
  });

  it('marks the release completed with an outcome people read', async () => {
    const { ctx } = setup();
    const out = await finalize(ctx, release(), step('finalize'));
    expect(out).toMatchObject({ detail: 'green is live with flightdeck/testapp:1.2.0' });
    const r = release();
    if (out.kind === 'done') out.patch?.(r);
    expect(r).toMatchObject({
      status: 'completed',
      finishedAt: NOW,
      weights: { blue: 0, green: 100 },
      outcome: 'api 1.2.0 is live on green in staging',
    });
  });

  it('fails without touching anything when another release holds the service', async () => {
    const other: ServiceState = {
      ...during(),
      inFlight: {
        releaseId: 'rel-other',
        by: 'U0LEAD',
        since: '2026-01-01T11:00:00Z',
        what: 'release 1.3.0',
      },
    };
    const { ctx, mem, applied } = setup({ state: other });
    const out = await finalize(ctx, release(), step('finalize'));
    expect(out).toEqual({ kind: 'fail', reason: `${ID} no longer holds api in staging` });
    expect(mem.box.writes).toBe(0);
    expect(applied).toEqual([]);
  });

  it('after a crash that already recorded it, is done again without recording twice', async () => {
    const { ctx, mem } = setup();
    await finalize(ctx, release(), step('finalize'));
    const recorded = structuredClone(mem.box.state);
    const again = await finalize(ctx, release(), step('finalize'));
    expect(again.kind).toBe('done');
    expect(mem.box.writes).toBe(1);
    expect(mem.box.state).toEqual(recorded);
    expect(finalizedBy(mem.box.state, ID)).toBe(true);
    expect(finalizedBy(mem.box.state, 'rel-other')).toBe(false);
  });

  it('keeps the old colour running by default', async () => {
    const { ctx, scaled } = setup();
    await finalize(ctx, release(), step('finalize'));
    expect(scaled).toEqual([]);
  });

  it('scales the old colour to 0 with afterRelease: scale-down, and says so', async () => {
    const { ctx, scaled } = setup({ afterRelease: 'scale-down' });
    const out = await finalize(ctx, release(), step('finalize'));
    expect(scaled).toEqual([['fdunit-staging-api-blue', 0]]);
    expect(out).toMatchObject({
      detail: 'green is live with flightdeck/testapp:1.2.0; fdunit-staging-api-blue scaled to 0',
    });
  });

  it('still completes when the old colour cannot be scaled down, saying why', async () => {
    const { ctx } = setup({ afterRelease: 'scale-down', scaleFails: true });
    const out = await finalize(ctx, release(), step('finalize'));
    expect(out.kind).toBe('done');
    expect(out).toMatchObject({
      detail:
        'green is live with flightdeck/testapp:1.2.0; could not scale fdunit-staging-api-blue down: node is down',
    });
  });
});
