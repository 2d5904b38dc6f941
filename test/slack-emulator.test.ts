import { WebClient } from '@slack/web-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SlackEmulator } from '../tools/slack-emulator/emulator.js';

let emu: SlackEmulator;
let clock = 1_800_000_000_000;
const client = () =>
  new WebClient(emu.botToken, {
    slackApiUrl: emu.apiUrl,
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
  });

beforeEach(async () => {
  clock = 1_800_000_000_000;
  emu = await new SlackEmulator({ now: () => clock }).start();
});
afterEach(async () => {
  await emu.stop();
});

describe('Slack emulator follows Slack’s rules', () => {
  it('answers chat.postMessage bursts per channel with 429 and Retry-After, like Slack', async () => {
    const c = client();
    for (let i = 0; i < 3; i++) await c.chat.postMessage({ channel: 'C0RELEASES', text: `m${i}` });
    await expect(c.chat.postMessage({ channel: 'C0RELEASES', text: 'too many' })).rejects.toMatchObject({
      code: 'slack_webapi_rate_limited_error',
      retryAfter: 1,
    });
    // Another channel has its own budget.
    await expect(c.chat.postMessage({ channel: 'C0ALERTS', text: 'fine' })).resolves.toMatchObject({
      ok: true,
    });
    clock += 1_000;
    await expect(
      c.chat.postMessage({ channel: 'C0RELEASES', text: 'after a second' }),
    ).resolves.toMatchObject({ ok: true });
    expect(emu.callCount('chat.postMessage', 429)).toBe(1);
    expect(emu.channelMessages('C0RELEASES').map((m) => m.text)).toEqual([
      'm0',
      'm1',
      'm2',
      'after a second',
    ]);
  });

  it('rejects bad tokens and unknown channels as Slack does', async () => {
    const bad = new WebClient('xoxb-wrong', { slackApiUrl: emu.apiUrl, retryConfig: { retries: 0 } });
    await expect(bad.auth.test()).rejects.toMatchObject({ data: { error: 'invalid_auth' } });
    await expect(client().chat.postMessage({ channel: 'C0NOPE', text: 'x' })).rejects.toMatchObject({
      data: { error: 'channel_not_found' },
    });
    await expect(client().chat.postMessage({ channel: 'C0RELEASES' } as never)).rejects.toMatchObject({
      data: { error: 'no_text' },
    });
  });

  it('updates a message in place with chat.update, and keeps threads apart', async () => {
    const c = client();
    const posted = await c.chat.postMessage({ channel: 'C0RELEASES', text: 'release 10%' });
    await c.chat.update({ channel: 'C0RELEASES', ts: posted.ts as string, text: 'release 50%' });
    await c.chat.postMessage({ channel: 'C0RELEASES', thread_ts: posted.ts as string, text: 'detail' });
    expect(emu.channelMessages('C0RELEASES')).toMatchObject([{ text: 'release 50%', edits: 1 }]);
    expect(emu.threadReplies('C0RELEASES', posted.ts as string)).toHaveLength(1);
    await expect(c.chat.update({ channel: 'C0RELEASES', ts: '1.000001', text: 'x' })).rejects.toMatchObject({
      data: { error: 'message_not_found' },
    });
  });

  it('allows a response_url five times within 30 minutes', async () => {
    const url = emu.issueResponseUrl('C0RELEASES', 'U0DEV');
    const post = () =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'hi' }),
      });
    for (let i = 0; i < 5; i++) expect((await post()).status).toBe(200);
    const sixth = await post();
    expect(sixth.status).toBe(404);
    expect(await sixth.json()).toMatchObject({ error: 'used_url' });

    const later = emu.issueResponseUrl('C0RELEASES', 'U0DEV');
    clock += 30 * 60_000 + 1;
    const expired = await fetch(later, { method: 'POST', body: JSON.stringify({ text: 'late' }) });
    expect(await expired.json()).toMatchObject({ error: 'expired_url' });
    expect(emu.ephemeralsFor('U0DEV')).toHaveLength(5);
  });

  it('accepts a trigger_id for views.open only within 3 seconds', async () => {
    const view = { type: 'modal' as const, title: { type: 'plain_text' as const, text: 'x' }, blocks: [] };
    const fresh = emu.issueTriggerId();
    await expect(client().views.open({ trigger_id: fresh, view })).resolves.toMatchObject({ ok: true });
    const stale = emu.issueTriggerId();
    clock += 3_001;
    await expect(client().views.open({ trigger_id: stale, view })).rejects.toMatchObject({
      data: { error: 'expired_trigger_id' },
    });
  });

  it('knows its users and channels, and keeps App Home views', async () => {
    const c = client();
    await expect(c.users.info({ user: 'U0LEAD' })).resolves.toMatchObject({ user: { name: 'lena' } });
    await expect(c.users.info({ user: 'U0NOBODY' })).rejects.toMatchObject({
      data: { error: 'user_not_found' },
    });
    await expect(c.conversations.info({ channel: 'C0ALERTS' })).resolves.toMatchObject({
      channel: { name: 'alerts' },
    });
    await c.views.publish({ user_id: 'U0LEAD', view: { type: 'home', blocks: [] } });
    expect(emu.homeViews.get('U0LEAD')).toMatchObject({ type: 'home' });
  });

  it('lists a user group’s members (usergroups.users.list), Tier 2', async () => {
    const c = client();
    emu.userGroups.set('S0QA', { id: 'S0QA', handle: 'qa', users: ['U0DEV', 'U0ONCALL'] });
    await expect(c.usergroups.users.list({ usergroup: 'S0QA' })).resolves.toMatchObject({
      ok: true,
      users: ['U0DEV', 'U0ONCALL'],
    });
    await expect(c.usergroups.users.list({ usergroup: 'S0NONE' })).rejects.toMatchObject({
      data: { error: 'no_such_subteam' },
    });
    emu.userGroups.set('S0OLD', { id: 'S0OLD', handle: 'old', users: ['U0LEAD'], disabled: true });
    await expect(c.usergroups.users.list({ usergroup: 'S0OLD' })).rejects.toMatchObject({
      data: { error: 'no_such_subteam' },
    });
    await expect(
      c.usergroups.users.list({ usergroup: 'S0OLD', include_disabled: true }),
    ).resolves.toMatchObject({ users: ['U0LEAD'] });
    // 20 a minute: four calls above, sixteen more, and the next is refused.
    for (let i = 0; i < 16; i++) await c.usergroups.users.list({ usergroup: 'S0QA' });
    await expect(c.usergroups.users.list({ usergroup: 'S0QA' })).rejects.toMatchObject({
      code: 'slack_webapi_rate_limited_error',
    });
  });
});
