import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/ports.js';
import { TestStack } from '../helpers/stack.js';

// The web replica acks a slash command ("on it"), then queues it (the add, with the request's claim
// and audit entry sent alongside). Killed right after queueing, the command must still run, once.
const stack = new TestStack({ prefix: 'fdenqk' });

beforeAll(async () => {
  await stack.start({ roles: ['web'], env: { FLIGHTDECK_FAILPOINTS: 'after:enqueue' } });
  await stack.addApp('worker', { FLIGHTDECK_FAILPOINTS: '' });
}, 120_000);

afterAll(async () => {
  await stack.stop();
});

describe('the web replica SIGKILLed right after queueing a command', () => {
  it('after:enqueue: the user was told "on it", and the worker answers it, once', async () => {
    const web = stack.apps[0];
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const sent = await stack.driver.command('/deploy', 'status');
    expect(sent.timedOut).toBe(false);
    expect(stack.emulator.ephemeralsFor('U0DEV').at(-1)?.text).toMatch(/on it/);
    await web?.exited();
    expect(web?.output).toMatch(/failpoint after:enqueue/);
    await waitFor(
      () =>
        stack.emulator
          .ephemeralsFor('U0DEV')
          .slice(seen)
          .some((e) => e.via !== 'ack' && /In flight/.test(e.text)),
      { timeoutMs: 60_000, what: "the worker's answer to /deploy status" },
    );
    expect(await stack.jobsFor('status', '/deploy')).toBe(1);
  }, 120_000);
});
