import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { waitFor } from '../helpers/ports.js';
import { TestStack } from '../helpers/stack.js';

// A command whose effect happened but whose answer (or audit) failed is retried by its queue: the
// retry must not do the effect again. Slack is the emulator, Redis and the processes are real.
const stack = new TestStack({ prefix: 'fdonce' });

beforeAll(async () => {
  await stack.start();
}, 120_000);

afterAll(async () => {
  await stack.stop();
});

const checklistPosts = () =>
  stack.emulator
    .channelMessages('C0RELEASES')
    .filter((m) => /Pre-deployment/i.test(renderBlocks(m.blocks, m.text)));

describe('a command whose answer could not be delivered', () => {
  it('is answered on a retry without being run again (one checklist post, audited done once)', async () => {
    // The first attempt's answer fails both ways: response_url 500 on all three tries, then
    // chat.postEphemeral 500 through all of WebClient's retries. The job then fails and is retried.
    stack.emulator.injectFault('response_url', { status: 500, count: 3 });
    stack.emulator.injectFault('chat.postEphemeral', { status: 500, count: 6 });
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const sent = await stack.driver.command('/checklist', 'pre');
    expect(sent.timedOut).toBe(false);
    // WebClient backs off between its retries, so the answer comes after tens of seconds.
    await waitFor(
      () =>
        stack.emulator
          .ephemeralsFor('U0DEV')
          .slice(seen)
          .some((e) => e.via !== 'ack' && /checklist is in this channel/i.test(e.text)),
      { timeoutMs: 90_000, what: 'the answer to /checklist pre' },
    );
    // Every attempt of the job has ended (completed): nothing is left to run the command again.
    await waitFor(async () => (await stack.queue.getJobCounts('completed')).completed >= 1, {
      timeoutMs: 60_000,
      what: 'the command job to complete',
    });
    await waitFor(() => checklistPosts().length >= 1, { what: 'the checklist post' });
    const failedSends = stack.emulator.calls.filter(
      (c) => c.method === 'chat.postEphemeral' && c.status === 500,
    );
    expect(failedSends.length).toBeGreaterThan(0);
    expect(checklistPosts()).toHaveLength(1);
    const audited = (await stack.auditFor('pre')).filter((e) => e.outcome === 'done');
    expect(audited).toHaveLength(1);
  }, 120_000);
});
