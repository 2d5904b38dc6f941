import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../tools/slack-emulator/sign.js';
import { SIGNING_SECRET } from './helpers/flightdeck-process.js';
import { waitFor } from './helpers/ports.js';
import { TestStack } from './helpers/stack.js';

const stack = new TestStack();
beforeAll(async () => {
  await stack.start();
});
afterAll(async () => {
  await stack.stop();
});

/** Sends a command and asserts it was answered with usage and nothing was queued or changed. */
async function expectRejected(command: string, text: string, reason: RegExp) {
  const sent = await stack.driver.command(command, text);
  expect(sent.status).toBe(200);
  expect(sent.body?.response_type).toBe('ephemeral');
  expect(sent.body?.text).toMatch(reason);
  expect(sent.body?.text).toContain(`*${command}*`); // the usage is appended
  await waitFor(async () => (await stack.auditFor(text.trim())).some((e) => e.outcome === 'rejected'), {
    what: 'a rejected audit entry',
  });
  expect(await stack.jobsFor(text)).toBe(0);
}

describe('request signing', () => {
  const body = new URLSearchParams({
    command: '/deploy',
    text: 'api 1.0.0',
    user_id: 'U0DEV',
    user_name: 'dev',
    team_id: 'T1',
    channel_id: 'C0RELEASES',
    response_url: 'http://127.0.0.1:1/x',
    trigger_id: 'forged.1',
  }).toString();

  it.each([
    ['missing', { unsigned: true }],
    ['wrong', { signWith: 'not-the-secret' }],
    ['older than 5 minutes', { timestampSkewSec: -301 }],
  ])('refuses a %s signature with 401 and enqueues nothing', async (_label, opts) => {
    const before = await stack.jobCount();
    const ack = await stack.driver.raw(body, opts);
    expect(ack.status).toBe(401);
    expect(ack.body).toBeUndefined();
    expect(await stack.jobCount()).toBe(before);
    expect((await stack.audit.recent(500)).some((e) => e.requestId.includes('forged'))).toBe(false);
  });

  it('refuses a replayed body whose signature was made for another timestamp', async () => {
    const ts = Math.floor(Date.now() / 1000) - 10;
    const res = await fetch(`${stack.apps[0]?.url}/slack/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(ts + 5),
        'x-slack-signature': signRequest(SIGNING_SECRET, ts, body),
      },
      body,
    });
    expect(res.status).toBe(401);
  });

  it('acks a correctly signed command well within 3 s', async () => {
    const sent = await stack.driver.command('/deploy', 'status');
    expect(sent.status).toBe(200);
    expect(sent.timedOut).toBe(false);
  });
});

describe('Slack retries', () => {
  it('makes one job for a command delivered three times', async () => {
    const sent = await stack.driver.command('/deploy', 'web 1.1.0');
    expect(sent.status).toBe(200);
    const r1 = await stack.driver.resend(sent, 1);
    const r2 = await stack.driver.resend(sent, 2);
    expect([r1.status, r2.status]).toEqual([200, 200]);
    await waitFor(async () => (await stack.jobsFor('web 1.1.0')) > 0, { what: 'the job' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await stack.jobsFor('web 1.1.0')).toBe(1);
    const accepted = (await stack.auditFor('web 1.1.0')).filter((e) => e.outcome === 'accepted');
    expect(accepted).toHaveLength(1);
  });
});

// Valid calls reach a worker and get a real answer; here there are no Swarm services, so the
// engine's answers are the honest ones (the release engine's own suite drives real services).
describe.each([
  ['/deploy', 'history api', /\*api in staging\* — live blue[\s\S]*no releases yet/, 'done'],
  ['/traffic', 'status', /staging[\s\S]*api .*blue .*100%/, 'done'],
  ['/traffic', 'api 25 green', /unhealthy colour: .*127\.0\.0\.1:28002\/health/, 'refused'],
  // A /rollback goes straight to the rollback lane: its answer is the rollback's own outcome.
  ['/rollback', 'web staging', /Nothing to roll back: web in staging has all traffic on blue/, 'done'],
  [
    '/checklist',
    'status',
    /No rollout has started: a lead sets its first day with `\/checklist start YYYY-MM-DD`/,
    'done',
  ],
] as const)('%s %s', (command, validText, answer, outcome) => {
  it('answers help with its usage, ephemeral, nothing queued', async () => {
    const sent = await stack.driver.command(command, 'help');
    expect(sent.body?.response_type).toBe('ephemeral');
    expect(sent.body?.text).toContain(`*${command}*`);
    await waitFor(async () => (await stack.auditFor('help')).some((e) => e.command === command));
    expect(await stack.jobsFor('help')).toBe(0);
  });

  it('queues a valid call, audits it, and answers through response_url', async () => {
    const user = 'U0LEAD';
    const seen = stack.emulator.ephemeralsFor(user).length;
    const posted = stack.emulator.messages.length;
    const sent = await stack.driver.command(command, validText, { user });
    expect(sent.status).toBe(200);
    expect(sent.body?.text).toContain('on it');
    // A rollback's outcome is the channel's business: it is answered in the channel.
    const text =
      command === '/rollback'
        ? await waitFor(() => stack.emulator.messages.slice(posted).find((m) => answer.test(m.text))?.text, {
            what: `the rollback's answer matching ${answer}`,
          })
        : await stack.answerTo(user, seen, answer);
    expect(text).toMatch(answer);
    if (command === '/rollback') expect(await stack.rollbackJobsFor('staging', 'web')).toBe(1);
    else expect(await stack.jobsFor(validText, command)).toBe(1);
    const outcomes = await waitFor(async () => {
      const o = (await stack.auditFor(validText)).map((e) => e.outcome);
      return o.includes(outcome) ? o : undefined;
    });
    expect(outcomes).toEqual(expect.arrayContaining(['accepted', outcome]));
    expect(stack.emulator.calls.some((c) => c.method === 'response_url' && c.status === 200)).toBe(true);
  });
});

describe('bad input is answered with usage and nothing is queued', () => {
  it.each([
    ['/deploy', 'apii 1.0.0', /Unknown service `apii`/],
    ['/deploy', 'api 1.0.0;rm -rf /', /I did not understand|not a valid image tag/],
    ['/deploy', 'api $(reboot)', /not a valid image tag/],
    ['/deploy', 'api -1.0', /not a valid image tag/],
    ['/deploy', '', /Tell me what to deploy/],
    ['/deploy', 'api 1.0.0 to moon', /Unknown environment `moon`/],
    ['/deploy', 'api {{7*7}}', /not a valid image tag/],
    ['/traffic', 'api 101', /whole number from 0 to 100, got `101`/],
    ['/traffic', 'api -5', /whole number from 0 to 100/],
    ['/traffic', 'api 12.5', /whole number from 0 to 100/],
    ['/traffic', 'api 50 purple', /not a colour/],
    ['/traffic', '', /which service/],
    ['/traffic', 'db 50', /Unknown service `db`/],
    ['/rollback', '', /Which service/],
    ['/rollback', 'api mars', /Unknown environment `mars`/],
    ['/rollback', "api' OR 1=1 --", /Unknown service|did not understand/],
    ['/rollback', 'ａｐｉ', /Unknown service/],
    ['/checklist', 'phase 5', /number from 1 to 4/],
    ['/checklist', 'start 2026-02-30', /is not a date/],
    ['/checklist', 'start tomorrow', /is not a date/],
    ['/checklist', 'delete everything', /I don't know/],
    ['/checklist', `pre ${'x'.repeat(400)}`, /at most 300/],
  ])('%s %s', async (command, text, reason) => {
    await expectRejected(command, text, reason);
  });

  it('does not echo markup back from the input', async () => {
    const sent = await stack.driver.command('/deploy', '<!channel> 1.0.0');
    expect(sent.body?.text).not.toContain('<!channel>');
  });
});

describe('authorisation', () => {
  it('refuses a user who is not a deployer in production, says why, and audits it', async () => {
    const sent = await stack.driver.command('/deploy', 'api 1.1.0 to production', { user: 'U0GUEST' });
    expect(sent.body?.text).toMatch(/not a deployer for \*production\*/);
    expect(sent.body?.text).toContain('environments.production.deployers');
    const entry = await waitFor(async () =>
      (await stack.auditFor('api 1.1.0 to production')).find(
        (e) => e.outcome === 'refused' && e.userId === 'U0GUEST',
      ),
    );
    expect(entry.detail).toMatch(/not a deployer/);
    expect(await stack.jobsFor('api 1.1.0 to production')).toBe(0);
  });

  it.each([
    ['/rollback', 'api production'],
    ['/traffic', 'api 100 blue to production'],
    ['/deploy', 'cancel api in production'],
    ['/checklist', 'start 2026-12-01'],
  ])('refuses %s %s to a guest', async (command, text) => {
    const sent = await stack.driver.command(command, text, { user: 'U0GUEST' });
    expect(sent.body?.text).toMatch(/^:no_entry: Not done/);
    await waitFor(async () => (await stack.auditFor(text)).some((e) => e.outcome === 'refused'));
    expect(await stack.jobsFor(text)).toBe(0);
  });

  it('lets a named deployer deploy to production', async () => {
    const sent = await stack.driver.command('/deploy', 'web 1.2.0 to production', { user: 'U0DEV' });
    expect(sent.body?.text).toContain('on it');
    await waitFor(async () => (await stack.jobsFor('web 1.2.0 to production')) === 1, { what: 'the job' });
  });
});

describe('/metrics', () => {
  it('counts commands by outcome', async () => {
    const text = await (await fetch(`${stack.apps[0]?.url}/metrics`)).text();
    expect(text).toMatch(/flightdeck_commands_total\{command="deploy",outcome="rejected"\} [1-9]/);
    expect(text).toMatch(/flightdeck_commands_total\{command="deploy",outcome="refused"\} [1-9]/);
    expect(text).toContain('flightdeck_command_ack_seconds_bucket');
    expect(text).toContain('flightdeck_process_cpu_seconds_total');
    expect(text).toMatch(/flightdeck_queue_jobs\{queue="commands",state="completed"\} [1-9]/);
  });
});
