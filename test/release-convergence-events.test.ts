import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployRelease, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

// Swarm is polled only every 10 minutes here: a release that finishes within the test's wait was
// moved on by Docker's events, not by its poll.
const stack = new TestStack({ prefix: 'fdconv', basePort: 37400 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      cfg.release.soak = ['0s', '0s', '0s'];
      cfg.release.pollInterval = '10m';
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

describe('a release waiting for Swarm', () => {
  it('moves on when Swarm reports the new tasks running, not at its next poll, with every health check the policy asks for', async () => {
    const id = await deployRelease(stack, 'api 1.1.0 to staging');
    const done = await waitRelease(stack, id, (r) => r.status === 'completed', 'completed', 120_000);
    const converge = done.steps.find((s) => s.kind === 'converge');
    const health = done.steps.find((s) => s.kind === 'health');
    expect(converge?.detail).toBe('1/1 tasks running flightdeck/testapp:1.1.0');
    // The suite's policy: two healthy answers in a row (begun while Swarm confirmed the update, or after).
    expect(health?.detail).toMatch(/^2\/2 healthy: /);
    expect(await serviceImage('fdconv-staging-api-green')).toBe('flightdeck/testapp:1.1.0');
    const progress = await waitProgress(stack, id, /✅ Released/);
    expect(progress).toContain('✅ Swarm converges on flightdeck/testapp:1.1.0');
    expect(progress).toContain('✅ Health checks of green');
  }, 180_000);

  it('the next release of the same service is woken the same way (the event stream is shared and stays open)', async () => {
    const id = await deployRelease(stack, 'api 1.2.0 to staging');
    const done = await waitRelease(stack, id, (r) => r.status === 'completed', 'completed', 120_000);
    expect(done.toColour).toBe('blue');
    expect(await serviceImage('fdconv-staging-api-blue')).toBe('flightdeck/testapp:1.2.0');
  }, 180_000);
});
