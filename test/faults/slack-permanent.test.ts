import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/ports.js';
import { TestStack } from '../helpers/stack.js';

// Slack answers some calls with an error no retry changes (a deleted channel or message, an app
// removed from the channel, refused content). Such a send must fail at once, logged and counted,
// not back off for days while newer sends of the same message are swallowed by its dedupe.
const stack = new TestStack({ prefix: 'fdperm' });
let outbox: Queue;

beforeAll(async () => {
  await stack.start();
  outbox = new Queue('slack-outbox', { connection: stack.redis.client(), prefix: stack.prefix });
}, 120_000);

afterAll(async () => {
  await outbox?.close();
  await stack.stop();
});

describe('a Slack send refused for good', () => {
  it('channel_not_found: one call, the job fails at once, the log and /metrics say so', async () => {
    // `/checklist pre` in a channel Slack no longer has: flightdeck's outbox posts the checklist there.
    await stack.driver.command('/checklist', 'pre', { channel: 'C0DELETED' });
    const failed = await waitFor(
      async () => (await outbox.getFailed()).find((j) => j.name === 'checklist-post'),
      {
        timeoutMs: 30_000,
        what: 'the checklist post to a deleted channel to fail',
      },
    );
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toMatch(/channel_not_found/);
    const calls = stack.emulator.calls.filter(
      (c) => c.method === 'chat.postMessage' && c.channel === 'C0DELETED',
    );
    expect(calls.map((c) => c.error)).toEqual(['channel_not_found']);
    const metrics = await (await fetch(`${stack.apps[0]?.url}/metrics`)).text();
    expect(metrics).toMatch(
      /flightdeck_slack_calls_total\{method="chat\.postMessage",result="permanent"\} 1/,
    );
    await waitFor(() => /channel_not_found/.test(stack.apps[0]?.output ?? ''), {
      what: 'a log line naming the error',
    });
  }, 60_000);
});
