import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { type AmAlert, startWithAlertmanager, TestAlertmanager } from '../helpers/alertmanager-server.js';
import { waitFor } from '../helpers/ports.js';
import { TestStack } from '../helpers/stack.js';

// Slack misbehaving under flightdeck: 500s, 429 storms with Retry-After, and timeouts (with the
// call done or not). Slack is the emulator; Alertmanager is real.
const TOKEN = 'alertmanager-slack-fault-token-0123';
const am = new TestAlertmanager();
const stack = new TestStack({ prefix: 'fdinfs' });
let outbox: Queue;

beforeAll(async () => {
  await startWithAlertmanager(stack, am, {
    token: TOKEN,
    alerts: {
      defaultChannel: 'C0ALERTS',
      routes: [{ match: { severity: 'critical' }, channel: 'C0ONCALL' }],
      escalation: { after: '1s', repeat: '1s', maxTimes: 3, notify: ['U0ONCALL'] },
      summariseAbove: 20,
      duringRelease: 'none',
    },
  });
  outbox = new Queue('slack-outbox', { connection: stack.redis.client(), prefix: stack.prefix });
}, 120_000);

afterAll(async () => {
  await outbox?.close();
  await am.destroy();
  await stack.stop();
});

const alert = (name: string, severity = 'warning'): AmAlert => ({
  labels: { alertname: name, severity, instance: 'web-1:9100' },
  annotations: { summary: `${name} on web-1` },
});

/** Top-level messages (any channel) about an alert, by its name in the title. */
const messagesAbout = (name: string) =>
  stack.emulator.messages.filter((m) => !m.threadTs && renderBlocks(m.blocks, m.text).includes(`· ${name}*`));

async function expectEachShownOnce(names: string[], re: RegExp = /firing/): Promise<void> {
  await waitFor(
    () => names.every((n) => messagesAbout(n).some((m) => re.test(renderBlocks(m.blocks, m.text)))),
    {
      timeoutMs: 90_000,
      intervalMs: 200,
      what: `a message about each of ${names.join(', ')} matching ${re}`,
    },
  );
  // Every send finished (a retry of a call that did land would show up as a duplicate).
  await waitFor(
    async () =>
      (await outbox.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')) ===
      0,
    { timeoutMs: 60_000, intervalMs: 200, what: 'the Slack outbox to drain' },
  );
  for (const n of names) expect(messagesAbout(n), `messages about ${n}`).toHaveLength(1);
}

const calls = (status: number, method?: string, channel?: string) =>
  stack.emulator.calls.filter(
    (c) => c.status === status && (!method || c.method === method) && (!channel || c.channel === channel),
  ).length;

async function healthy(): Promise<void> {
  expect((await fetch(`${stack.apps[0]?.url}/healthz`)).status).toBe(200);
  expect(await outbox.getJobCountByTypes('failed')).toBe(0);
}

describe('Slack failing under flightdeck', () => {
  it('500s: messages, updates and thread replies are retried and delivered once, thread replies in order', async () => {
    const before = calls(500);
    stack.emulator.injectFault('chat.postMessage', { status: 500, count: 6 });
    const names = ['Slack500A', 'Slack500B', 'Slack500C', 'Slack500D'];
    await am.post([...names.map((n) => alert(n)), alert('Slack500Crit', 'critical')]);
    // Once the critical alert is shown, its escalations (1 s apart) meet 500s of their own.
    await waitFor(() => messagesAbout('Slack500Crit').length > 0, {
      timeoutMs: 60_000,
      what: 'Slack500Crit',
    });
    const threadFailsBefore = calls(500, 'chat.postMessage', 'C0ONCALL');
    stack.emulator.injectFault('chat.postMessage', { status: 500, count: 3 });
    await expectEachShownOnce([...names, 'Slack500Crit']);
    // Escalations 1..3 in the critical alert's thread, each once, in order.
    const [crit] = messagesAbout('Slack500Crit');
    const replies = () => stack.emulator.threadReplies('C0ONCALL', crit?.ts ?? '');
    await waitFor(() => replies().length >= 3, { timeoutMs: 60_000, what: 'three escalations' });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(replies().map((m) => m.text.match(/Escalation (\d)\/3/)?.[1])).toEqual(['1', '2', '3']);
    const threadFails = calls(500, 'chat.postMessage', 'C0ONCALL') - threadFailsBefore;
    expect(threadFails).toBeGreaterThan(0);

    stack.emulator.injectFault('chat.update', { status: 500, count: 3 });
    await am.resolve(names.slice(0, 2).map((n) => alert(n)));
    await expectEachShownOnce(names.slice(0, 2), /resolved after/);
    const failed = calls(500) - before;
    expect(failed).toBe(12);
    await healthy();
    console.log(
      `[fault:slack-500] 12 calls answered 500 (9 chat.postMessage, ${threadFails} of them thread replies; 3 chat.update), all retried: 5 alert messages delivered once each, 3 escalations once each and in order, 2 resolutions applied; 0 lost, 0 duplicated`,
    );
  }, 120_000);

  it('a 429 storm: Retry-After honoured by every send, everything delivered once', async () => {
    const before429 = calls(429);
    const violations = stack.emulator.retryAfterViolations;
    stack.emulator.injectFault('chat.postMessage', {
      status: 429,
      count: Number.POSITIVE_INFINITY,
      forMs: 5_000,
    });
    stack.emulator.injectFault('chat.update', { status: 429, count: Number.POSITIVE_INFINITY, forMs: 5_000 });
    const names = Array.from({ length: 8 }, (_, i) => `Slack429N${i}`);
    await am.post(names.map((n) => alert(n)));
    await expectEachShownOnce(names);
    await am.resolve(names.slice(0, 3).map((n) => alert(n)));
    await expectEachShownOnce(names.slice(0, 3), /resolved after/);
    const limited = calls(429) - before429;
    expect(limited).toBeGreaterThan(0);
    expect(stack.emulator.retryAfterViolations - violations).toBe(0);
    await healthy();
    console.log(
      `[fault:slack-429] 5 s of 429s (Retry-After): ${limited} calls refused, 0 Retry-After violations; 8 alert messages delivered once each, 3 resolutions applied; 0 lost, 0 duplicated`,
    );
  }, 120_000);

  it('timeouts: a call Slack never got and a call whose answer was lost are each delivered once', async () => {
    const lookupsBefore = calls(200, 'conversations.history');
    stack.emulator.injectFault('chat.postMessage', { status: 0, count: 1, hang: 'request', delayMs: 12_000 });
    await am.post([alert('SlackTimeoutLostRequest')]);
    await expectEachShownOnce(['SlackTimeoutLostRequest']);
    stack.emulator.injectFault('chat.postMessage', {
      status: 0,
      count: 1,
      hang: 'response',
      delayMs: 12_000,
    });
    await am.post([alert('SlackTimeoutLostAnswer')]);
    await expectEachShownOnce(['SlackTimeoutLostAnswer']);
    expect(calls(0, 'chat.postMessage')).toBe(2);
    const lookups = calls(200, 'conversations.history') - lookupsBefore;
    expect(lookups).toBeGreaterThan(0);
    await healthy();
    console.log(
      `[fault:slack-timeout] 2 chat.postMessage calls timed out after 10 s (one not done, one done with its answer lost); ${lookups} history lookups before re-sending: both messages delivered exactly once`,
    );
  }, 120_000);

  it('response_url answering 500: the command answer is retried and shown once', async () => {
    stack.emulator.injectFault('response_url', { status: 500, count: 2 });
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const sent = await stack.driver.command('/deploy', 'status');
    expect(sent.timedOut).toBe(false);
    const answer = await stack.answerTo('U0DEV', seen, /./);
    await new Promise((r) => setTimeout(r, 1_500));
    const answers = stack.emulator
      .ephemeralsFor('U0DEV')
      .slice(seen)
      .filter((e) => e.via !== 'ack');
    expect(answers).toHaveLength(1);
    expect(answers[0]?.via).toBe('response_url');
    expect(answer.length).toBeGreaterThan(0);
    await healthy();
    console.log(
      '[fault:slack-response-url] response_url 500 twice: the answer arrived once, on the third try',
    );
  }, 60_000);
});
