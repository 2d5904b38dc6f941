import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/ports.js';
import { TestStack } from '../helpers/stack.js';

// Redis is a trust boundary too: a job written straight into the command queue (by anything that
// got to Redis) skips the listener's checks. The worker checks the user's rights again.
const stack = new TestStack({ prefix: 'fdforge' });

beforeAll(async () => {
  await stack.start();
}, 120_000);

afterAll(async () => {
  await stack.stop();
});

describe('a command job forged in Redis', () => {
  it("a guest's production deploy and a lead-only override are refused by the worker, audited, nothing done", async () => {
    const forge = async (requestId: string, text: string, parsed: unknown) => {
      const responseUrl = stack.emulator.issueResponseUrl('C0RELEASES', 'U0GUEST');
      await stack.queue.add(
        'deploy',
        {
          requestId,
          receivedAt: new Date().toISOString(),
          teamId: stack.emulator.teamId,
          user: { id: 'U0GUEST', name: 'guest' },
          channelId: 'C0RELEASES',
          responseUrl,
          text,
          parsed,
        },
        { jobId: requestId },
      );
    };
    const seen = stack.emulator.ephemeralsFor('U0GUEST').length;
    await forge('forged-1', 'api 1.1.0 to production', {
      command: 'deploy',
      action: 'release',
      environment: 'production',
      target: 'api',
      version: '1.1.0',
    });
    await forge('forged-2', 'override pre because', {
      command: 'checklist',
      action: 'override',
      gate: 'pre',
      reason: 'because',
    });
    const answers = await waitFor(
      () => {
        const mine = stack.emulator.ephemeralsFor('U0GUEST').slice(seen);
        return mine.length >= 2 ? mine : undefined;
      },
      { timeoutMs: 30_000, what: 'answers to both forged jobs' },
    );
    expect(answers.map((a) => a.text)).toEqual([
      expect.stringMatching(/Not done: you are not a deployer for \*production\*/),
      expect.stringMatching(/Not done: only leads can override a checklist gate/),
    ]);
    expect(await stack.client.keys(`${stack.prefix}:data:release:*`)).toEqual([]);
    // The worker answers first and audits after: wait for both entries, then check them.
    const forged = async () =>
      (await stack.audit.recent(50)).filter((e) => e.requestId.startsWith('forged-')).map((e) => e.outcome);
    await waitFor(async () => (await forged()).length >= 2, {
      timeoutMs: 30_000,
      what: 'both audit entries',
    });
    expect(await forged()).toEqual(['refused', 'refused']);
  }, 60_000);

  it("a guest's rollback job on the rollback lane is refused by the rollback worker, audited, traffic untouched", async () => {
    const responseUrl = stack.emulator.issueResponseUrl('C0RELEASES', 'U0GUEST');
    const posted = stack.emulator.messages.length;
    const rollbacks = new Queue('rollbacks', { connection: stack.redis.client(), prefix: stack.prefix });
    const stateKeys = async () => (await stack.client.keys(`${stack.prefix}:data:state:production:*`)).sort();
    const before = await Promise.all((await stateKeys()).map((k) => stack.client.get(k)));
    try {
      await rollbacks.add(
        'rollback',
        {
          environment: 'production',
          service: 'api',
          reason: '/rollback by <@U0GUEST>',
          by: 'U0GUEST',
          trigger: 'command',
          requestedAt: Date.now(),
          requestId: 'forged-rb',
          reply: { responseUrl, channelId: 'C0RELEASES', userId: 'U0GUEST' },
        },
        { jobId: 'forged-rb-api' },
      );
      const answer = await waitFor(
        () => stack.emulator.messages.slice(posted).find((m) => /Not done/.test(m.text))?.text,
        { timeoutMs: 30_000, what: "the rollback worker's refusal" },
      );
      expect(answer).toMatch(/Not done: you are not a deployer for \*production\*/);
      await waitFor(async () =>
        (await stack.audit.recent(50)).some((e) => e.requestId === 'forged-rb' && e.outcome === 'refused'),
      );
      expect(await Promise.all((await stateKeys()).map((k) => stack.client.get(k)))).toEqual(before);
    } finally {
      await rollbacks.close();
    }
  }, 60_000);
});
