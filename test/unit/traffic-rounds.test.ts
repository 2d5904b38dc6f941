import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { Upstream } from '../../src/integrations/nginx.js';
import { NginxReloadFailed } from '../../src/integrations/nginx.js';
import type { ServiceState, Weights } from '../../src/releases/schema.js';
import { ServiceStateStore } from '../../src/releases/service-state-store.js';
import { Traffic, TrafficRefused } from '../../src/releases/traffic.js';
import { unitConfig } from './helpers.js';

/** The few Redis commands the state store and the locks use, in memory. */
function memoryRedis(): Redis {
  const kv = new Map<string, string>();
  return {
    get: async (k: string) => kv.get(k) ?? null,
    mget: async (keys: string[]) => keys.map((k) => kv.get(k) ?? null),
    set: async (k: string, v: string, ...args: unknown[]) => {
      if (args.includes('NX') && kv.has(k)) return null;
      kv.set(k, v);
      return 'OK';
    },
    // The lock's release (compare-and-delete) and renewal scripts: unknown by SHA, so sent as text.
    evalsha: async () => {
      throw new Error('NOSCRIPT No matching script.');
    },
    eval: async (script: string, _n: number, key: string, token: string) => {
      if (script.includes("'del'") && kv.get(key) === token) kv.delete(key);
      return 1;
    },
  } as unknown as Redis;
}

const deferred = () => {
  let open: () => void = () => {};
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { opened, open };
};

/** Traffic on a fake nginx that records each apply's weights (by upstream name), optionally held or failing. */
function setup(opts: { fail?: (call: number) => Error | undefined } = {}) {
  const redis = memoryRedis();
  const states = new ServiceStateStore(redis, 'fdunit');
  const applies: Array<Record<string, Weights>> = [];
  const holds = new Map<number, { entered: () => void; opened: Promise<void> }>();
  const driver = {
    apply: async (ups: Upstream[]) => {
      const call = applies.length;
      applies.push(
        Object.fromEntries(
          ups.map((u) => [
            u.name,
            {
              blue: u.servers.find((s) => s.colour === 'blue')?.weight ?? 0,
              green: u.servers.find((s) => s.colour === 'green')?.weight ?? 0,
            },
          ]),
        ),
      );
      const h = holds.get(call);
      if (h) {
        h.entered();
        await h.opened;
      }
      const err = opts.fail?.(call);
      if (err) throw err;
      return { changed: true, generation: `g${call}`, ms: 1 };
    },
  };
  const traffic = new Traffic(unitConfig(), states, () => driver, redis);
  return {
    traffic,
    states,
    applies,
    /** Apply number `n` (from 0) waits until released; `started` resolves once it began. */
    holdCall(n: number) {
      const gate = deferred();
      let entered: () => void = () => {};
      const started = new Promise<void>((r) => {
        entered = r;
      });
      holds.set(n, { entered, opened: gate.opened });
      return { started, release: gate.open };
    },
  };
}

const toGreen = (p: number): Weights => ({ blue: 100 - p, green: p });
const API = 'flightdeck_staging_api';
const WEB = 'flightdeck_staging_web';
const PROD_API = 'flightdeck_production_api';

describe('Traffic.setWeights in rounds', () => {
  it('applies changes that wait for the same nginx together, and records each', async () => {
    const t = setup();
    const held = t.holdCall(0);
    const first = t.traffic.setWeights('staging', 'api', toGreen(10));
    await held.started;
    // These arrive while the first apply runs: they share the next one.
    const second = t.traffic.setWeights('staging', 'web', toGreen(10));
    const third = t.traffic.setWeights('production', 'api', toGreen(50));
    held.release();
    const results = await Promise.all([first, second, third]);
    expect(t.applies).toHaveLength(2);
    expect(t.applies[1]).toMatchObject({ [API]: toGreen(10), [WEB]: toGreen(10), [PROD_API]: toGreen(50) });
    expect(results.map((r) => r.before)).toEqual([toGreen(0), toGreen(0), toGreen(0)]);
    expect((await t.states.get('staging', 'web')).weights).toEqual(toGreen(10));
    expect((await t.states.get('production', 'api')).weights).toEqual(toGreen(50));
  });

  it('applies two changes of one service one after the other, the later last', async () => {
    const t = setup();
    const held = t.holdCall(0);
    const a = t.traffic.setWeights('staging', 'api', toGreen(10));
    await held.started;
    const b = t.traffic.setWeights('staging', 'api', toGreen(50));
    const c = t.traffic.setWeights('staging', 'api', toGreen(100));
    held.release();
    await Promise.all([a, b, c]);
    expect(t.applies.map((x) => x[API])).toEqual([toGreen(10), toGreen(50), toGreen(100)]);
    expect((await t.states.get('staging', 'api')).weights).toEqual(toGreen(100));
  });

  it('refuses a change whose service changed during the apply and puts nginx back on the record', async () => {
    const t = setup();
    const held = t.holdCall(0);
    const second = t.holdCall(1);
    const first = t.traffic.setWeights('staging', 'web', toGreen(10));
    await held.started;
    let moved = false;
    const refused = t.traffic.setWeights('staging', 'api', toGreen(50), () =>
      moved ? 'rel-x no longer holds api' : undefined,
    );
    const kept = t.traffic.setWeights('production', 'api', toGreen(10));
    held.release();
    await first;
    // The second round is applying: now the guard refuses (someone took the service meanwhile).
    await second.started;
    moved = true;
    second.release();
    await expect(refused).rejects.toBeInstanceOf(TrafficRefused);
    await expect(kept).resolves.toMatchObject({ before: toGreen(0) });
    // Rounds: web alone; api + production api; then back to what is recorded (api untouched).
    expect(t.applies).toHaveLength(3);
    expect(t.applies[2]).toMatchObject({ [API]: toGreen(0), [WEB]: toGreen(10), [PROD_API]: toGreen(10) });
    expect((await t.states.get('staging', 'api')).weights).toEqual(toGreen(0));
  });

  it('records none of a round whose apply nginx refused; `extra` still is', async () => {
    const t = setup({ fail: (call) => (call === 1 ? new Error('nginx -t: invalid parameter') : undefined) });
    const held = t.holdCall(0);
    const first = t.traffic.setWeights('staging', 'web', toGreen(10));
    await held.started;
    const a = t.traffic.setWeights('staging', 'api', toGreen(10));
    const b = t.traffic.setWeights('production', 'api', toGreen(10), undefined, (s: ServiceState) => ({
      ...s,
      images: { green: 'noted' },
    }));
    held.release();
    await first;
    await expect(a).rejects.toThrow('invalid parameter');
    await expect(b).rejects.toThrow('invalid parameter');
    expect((await t.states.get('staging', 'api')).weights).toEqual(toGreen(0));
    expect(await t.states.get('production', 'api')).toMatchObject({
      weights: toGreen(0),
      images: { green: 'noted' },
    });
  });

  it('keeps moves to safety apart and first: a failed reload keeps their file, never that of plain changes', async () => {
    // Call 1 is the move to safety's own round (it goes before the plain change queued ahead of
    // it); call 2, the plain change's round, fails to reload.
    const t = setup({ fail: (call) => (call === 2 ? new NginxReloadFailed('nginx is down') : undefined) });
    const held = t.holdCall(0);
    const first = t.traffic.setWeights('staging', 'web', toGreen(10));
    await held.started;
    const plain = t.traffic.setWeights('staging', 'api', toGreen(50));
    const safety = t.traffic.setWeights('production', 'api', toGreen(0), undefined, undefined, {
      keepOnReloadFailure: true,
    });
    held.release();
    await first;
    // The move to safety went first and is recorded; the plain change's failed round is not.
    await expect(safety).resolves.toBeDefined();
    await expect(plain).rejects.toBeInstanceOf(NginxReloadFailed);
    expect(t.applies).toHaveLength(3);
    expect((await t.states.get('staging', 'api')).weights).toEqual(toGreen(0));
    expect((await t.states.get('production', 'api')).weights).toEqual(toGreen(0));
    // The safety round came before the plain one, each with only its own change.
    expect(t.applies[1]).toMatchObject({ [API]: toGreen(0), [PROD_API]: toGreen(0) });
    expect(t.applies[2]).toMatchObject({ [API]: toGreen(50) });
  });

  it("renders an environment's recorded state in the next round (a finalize), not in an apply of its own", async () => {
    const t = setup();
    const held = t.holdCall(0);
    const first = t.traffic.setWeights('staging', 'web', toGreen(10));
    await held.started;
    await t.states.mutate('staging', 'api', (s) => ({
      state: { ...s, weights: toGreen(100) },
      result: undefined,
    }));
    const refresh = t.traffic.apply({ environment: 'staging' });
    const shift = t.traffic.setWeights('production', 'api', toGreen(10));
    held.release();
    await Promise.all([first, shift]);
    const [applied] = await refresh;
    expect(applied?.generation).toBe('g1');
    expect(t.applies).toHaveLength(2);
    expect(t.applies[1]).toMatchObject({ [API]: toGreen(100), [PROD_API]: toGreen(10) });
  });
});
