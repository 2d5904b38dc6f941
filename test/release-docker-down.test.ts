import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import { releaseIds, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';

// flightdeck pointed at a Docker socket where no engine answers.
const stack = new TestStack({ prefix: 'fdnodock', basePort: 28500 });

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, { docker: { socketPath: '/tmp/flightdeck-no-docker-here.sock' } });
      Object.assign(cfg.release, { maxStepRetries: 1 });
    },
  });
});
afterAll(async () => {
  await stack.stop();
});

describe('Docker engine unreachable', () => {
  it('/readyz names docker', async () => {
    const res = await fetch(`${stack.apps[0]?.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { failing: string[] };
    expect(body.failing).toEqual(['docker']);
  });

  it('a release fails safe with a clear message and traffic stays where it was', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.1.0');
    const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
    const r = await waitRelease(
      stack,
      id as string,
      (x) => x.status === 'rolled_back',
      'rolled back',
      60_000,
    );
    expect(r.outcome).toMatch(/Docker engine unreachable \(ENOENT\)/);
    expect(r.steps[0]?.status).toBe('failed');
    expect(r.steps.find((s) => s.kind === 'shift')?.status).toBe('skipped');
    const state = await new ServiceStateStore(stack.client, stack.prefix).get('staging', 'api');
    expect(state.weights).toEqual({ blue: 100, green: 0 });
    expect(state.inFlight).toBeUndefined();
  });
});
