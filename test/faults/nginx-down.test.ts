import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Weights } from '../../src/releases/schema.js';
import { ServiceStateStore } from '../../src/releases/service-state-store.js';
import { waitFor } from '../helpers/ports.js';
import {
  deployRelease,
  measureSplit,
  promoteRelease,
  soakingAt,
  waitProgress,
  waitRelease,
} from '../helpers/release.js';
import { TestStack } from '../helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from '../helpers/swarm.js';

// The suite's nginx stopped in the middle of a release (and started again).
const stack = new TestStack({ prefix: 'fdinfn', basePort: 29650 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      // Two retries (2 s, 4 s) of a failing step before the release rolls back.
      Object.assign(cfg.release, { maxStepRetries: 2 });
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const url = () => `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;
const states = () => new ServiceStateStore(stack.client, stack.prefix);

async function stopNginx(): Promise<void> {
  stack.nginx.stop();
  await waitFor(
    async () => {
      try {
        await fetch(stack.nginx.probeUrl, { signal: AbortSignal.timeout(500) });
        return false;
      } catch {
        return true;
      }
    },
    { what: 'nginx to stop answering' },
  );
}

/** Starts the stopped nginx again as an operator would: same prefix, config and upstream file. */
async function startNginx(): Promise<void> {
  const p = stack.nginx.prefix;
  // `nginx -t` (run by flightdeck meanwhile) leaves an empty pid file behind.
  const masterGone = () => {
    const pid = Number(readFileSync(join(p, 'nginx.pid'), 'utf8').trim() || 0);
    if (!pid) return true;
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  await waitFor(() => !existsSync(join(p, 'nginx.pid')) || masterGone(), {
    what: 'the old nginx master to exit',
  });
  execFileSync('nginx', ['-p', p, '-c', 'nginx.conf', '-e', join(p, 'logs', 'error.log')]);
  await waitFor(async () => (await fetch(stack.nginx.probeUrl)).ok, { what: 'nginx to answer' });
}

/** Every split flightdeck records for the service until `stop()`: what it claims nginx serves. */
function recordWeights(): { stop: () => Promise<Weights[]> } {
  const seen = new Map<string, Weights>();
  let running = true;
  const look = async () => {
    const w = await states()
      .get('staging', 'api')
      .then((s) => s.weights)
      .catch(() => undefined);
    if (w) seen.set(`${w.blue}/${w.green}`, w);
  };
  const loop = (async () => {
    while (running) {
      await look();
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      // The last change can land between two looks (e.g. just before the release's final record).
      await look();
      return [...seen.values()];
    },
  };
}

const deploy = (text: string) => deployRelease(stack, text);

const promote = () => promoteRelease(stack, 'api');

async function readyzFailing(): Promise<string[]> {
  const res = await fetch(`${stack.apps[0]?.url}/readyz`);
  return ((await res.json()) as { failing: string[] }).failing;
}

describe('nginx down in the middle of a release', () => {
  it('back within the step retries: the traffic step waits (weights not recorded) and the release completes', async () => {
    const id = await deploy('api 1.1.0');
    await waitRelease(stack, id, soakingAt(10), 'soaking at 10%', 120_000);
    await stopNginx();
    expect(await readyzFailing()).toEqual(['nginx']);
    const watch = recordWeights();
    await promote();
    const retrying = await waitRelease(
      stack,
      id,
      (r) => r.steps[r.stepIndex]?.kind === 'shift' && (r.steps[r.stepIndex]?.failures ?? 0) >= 1,
      'the 50% shift failing once',
    );
    expect(retrying.steps[retrying.stepIndex]?.detail).toMatch(/retrying after error: nginx reload failed/);
    expect(retrying.weights).toEqual({ blue: 90, green: 10 });
    // While nginx could not take the 50/50 split, flightdeck never recorded it.
    const recorded = await watch.stop();
    expect(recorded).toEqual([{ blue: 90, green: 10 }]);
    await startNginx();
    await waitRelease(stack, id, soakingAt(50), 'soaking at 50% once nginx is back');
    expect((await states().get('staging', 'api')).weights).toEqual({ blue: 50, green: 50 });
    const split = await measureSplit(url(), 100);
    expect(split.other).toBe(0);
    expect(split.green).toBeGreaterThanOrEqual(35);
    expect(split.blue).toBeGreaterThanOrEqual(35);
    await promote();
    await waitRelease(stack, id, soakingAt(100), 'soaking at 100%');
    await promote();
    const done = await waitRelease(stack, id, (r) => r.status === 'completed', 'completed');
    expect(done.steps.find((s) => s.kind === 'shift' && s.percent === 50)?.failures).toBe(1);
    console.log(
      `[fault:nginx-blip] nginx down across the 50% shift: 1 failed attempt; recorded splits while down ${recorded.map((w) => `${w.blue}/${w.green}`).join(', ')}; then 50/50 (measured ${split.blue}/${split.green} over 100 requests); release ${done.status}`,
    );
  }, 240_000);

  it('down for longer: the release rolls back with a clear message, and nginx comes back on the last good colour', async () => {
    // green is live now; this release goes to blue.
    const id = await deploy('api 1.2.0');
    await waitRelease(stack, id, soakingAt(10), 'soaking at 10%', 120_000);
    expect(await measureSplit(url(), 20)).toMatchObject({ other: 0 });
    await stopNginx();
    const watch = recordWeights();
    await promote();
    const r = await waitRelease(
      stack,
      id,
      (x) => ['rolled_back', 'failed', 'completed'].includes(x.status),
      'to end',
      90_000,
    );
    const recorded = await watch.stop();
    expect(r.status).toBe('rolled_back');
    expect(r.outcome).toMatch(
      /nginx reload failed .*the new upstream file is in place and nginx will use it when it starts/,
    );
    const message = await waitProgress(stack, id, /Rolled back/);
    expect(message).toMatch(/nginx reload failed/);
    // The state says all on green (the last good colour), lock released; never 50/50.
    const state = await states().get('staging', 'api');
    expect(state.weights).toEqual({ blue: 0, green: 100 });
    expect(state.inFlight).toBeUndefined();
    expect(recorded).toEqual([
      { blue: 10, green: 90 },
      { blue: 0, green: 100 },
    ]);
    // The file nginx will read sends nothing to blue.
    const file = readFileSync(stack.nginx.upstreamFile, 'utf8');
    expect(file).toMatch(/upstream flightdeck_staging_api \{\n\s+server 127\.0\.0\.1:\d+ down; # blue 0%/);

    await startNginx();
    const split = await measureSplit(url(), 40);
    expect(split).toEqual({ blue: 0, green: 40, other: 0 });
    expect(await readyzFailing()).toEqual([]);
    // And the service can be released again.
    const again = await deploy('api 1.2.0');
    await waitRelease(stack, again, soakingAt(10), 'the next release soaking at 10%', 120_000);
    console.log(
      `[fault:nginx-down] nginx down through the step retries: release ${r.status} (${r.steps.find((s) => s.status === 'failed')?.label} failed after ${(r.steps.find((s) => s.status === 'failed')?.failures ?? 0) + 1} attempts); recorded splits ${recorded.map((w) => `${w.blue}/${w.green}`).join(', ')}; after restart nginx served ${split.green}/40 green; next /deploy accepted`,
    );
  }, 240_000);
});
