import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/ports.js';
import { deployRelease, measureSplit, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, docker, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

// afterRelease: scale-down leaves the old colour at 0 replicas after each release.
const stack = new TestStack({ prefix: 'fdscale', basePort: 31200 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg.release, { afterRelease: 'scale-down', steps: [100], soak: ['0s'] });
    },
  });
  const api = stack.config.environments.staging?.services.api;
  if (!api) throw new Error('no staging api');
  names.push(...(await createColourServices([api])));
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const url = (path: string) => `http://127.0.0.1:${stack.nginx.port}/staging/api/${path}`;
const replicas = async (colour: string) =>
  Number(
    (await docker.getService(`fdscale-staging-api-${colour}`).inspect()).Spec.Mode?.Replicated?.Replicas,
  );

/** What a request through nginx answers: the version, or the error. */
async function version(): Promise<string> {
  const res = await fetch(url('version'), { headers: { connection: 'close' } });
  return res.ok ? (await res.text()).trim() : `HTTP ${res.status}`;
}

describe('afterRelease: scale-down', () => {
  it('the next release and /rollback scale the colour back up before it is updated or gets traffic', async () => {
    const first = await deployRelease(stack, 'api 1.1.0');
    const done1 = await waitRelease(stack, first, (r) => r.status === 'completed', 'completed', 120_000);
    expect(done1.outcome).toBe('api 1.1.0 is live on green in staging; fdscale-staging-api-blue scaled to 0');
    expect(await replicas('blue')).toBe(0);
    // As hours later: blue's last task is gone and nothing answers on its port.
    const blue = stack.config.environments.staging?.services.api?.blue.address;
    await waitFor(
      () =>
        fetch(`http://${blue}/health`, { signal: AbortSignal.timeout(1_000) }).then(
          () => false,
          () => true,
        ),
      { timeoutMs: 60_000, what: 'blue to stop answering' },
    );

    // The second release goes to blue, which has 0 replicas: it gets its one replica back with the image.
    const second = await deployRelease(stack, 'api 1.2.0');
    const done2 = await waitRelease(
      stack,
      second,
      (r) => r.status === 'completed' || r.status === 'rolled_back',
      'finished',
      120_000,
    );
    expect(done2.outcome).toBe('api 1.2.0 is live on blue in staging; fdscale-staging-api-green scaled to 0');
    expect(await version()).toBe('1.2.0');
    expect(done2.steps[0]?.detail).toBe(
      'fdscale-staging-api-blue: flightdeck/testapp:1.0.0 → flightdeck/testapp:1.2.0 (scaled back from 0 to 1 replica)',
    );
    await waitProgress(stack, second, /✅ Released/);
    expect(await replicas('blue')).toBe(1);
    expect(await replicas('green')).toBe(0);
    expect(await version()).toBe('1.2.0');

    // /rollback goes back to green, scaled to 0 by the second release: it runs and is healthy first.
    const seen = stack.emulator.channelMessages('C0RELEASES').length;
    await stack.driver.command('/rollback', 'api');
    const answer = await waitFor(
      () =>
        stack.emulator
          .channelMessages('C0RELEASES')
          .slice(seen)
          .find((m) => /api in staging/.test(m.text))?.text,
      { timeoutMs: 120_000, what: 'the rollback answer' },
    );
    expect(answer).toMatch(
      /^↩️ api in staging: green scaled back from 0 to 1 replica first; traffic 100% on green \(flightdeck\/testapp:1\.1\.0\) in \d+\.\d+ s; fdscale-staging-api-blue rolled back to flightdeck\/testapp:1\.0\.0\.$/,
    );
    // nginx sends everything to green (old nginx workers may take a moment to stop accepting).
    await waitFor(async () => (await measureSplit(url('colour'), 20)).green === 20, {
      timeoutMs: 10_000,
      what: 'nginx to send all of api to green',
    });
    expect(await version()).toBe('1.1.0');
    expect(await replicas('green')).toBe(1);
    expect(await serviceImage('fdscale-staging-api-green')).toBe('flightdeck/testapp:1.1.0');
  }, 300_000);
});
