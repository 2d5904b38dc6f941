import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../tools/slack-emulator/sign.js';
import { SIGNING_SECRET } from '../helpers/flightdeck-process.js';
import { TestStack } from '../helpers/stack.js';
import { postRaw } from './helpers/abuse-requests.js';

// POST /slack/events reads nothing of an unsigned request and no more than Slack ever sends: the
// signature is checked before any parsing, and the body is capped at 1 MB (Bolt alone takes 4 MB).
const stack = new TestStack({ prefix: 'fdbody' });
const form = 'application/x-www-form-urlencoded';

beforeAll(async () => {
  await stack.start();
}, 120_000);

afterAll(async () => {
  await stack.stop();
});

const signed = (body: string, ts = Math.floor(Date.now() / 1000)) => ({
  'content-type': form,
  'x-slack-request-timestamp': String(ts),
  'x-slack-signature': signRequest(SIGNING_SECRET, ts, body),
});

describe('the Slack endpoint before Bolt', () => {
  const url = () => `${stack.apps[0]?.url}/slack/events`;

  it('refuses an unsigned body without parsing it (401, not a parse error)', async () => {
    const res = await postRaw(url(), 'payload=null', { 'content-type': form });
    expect(res.status).toBe(401);
    const forged = await postRaw(url(), 'payload=null', {
      ...signed('payload=null'),
      'x-slack-signature': `v0=${'0'.repeat(64)}`,
    });
    expect(forged.status).toBe(401);
  });

  it('refuses a stale timestamp before reading the body', async () => {
    const body = `payload=${'x'.repeat(512 * 1024)}`;
    const res = await postRaw(url(), body, signed(body, Math.floor(Date.now() / 1000) - 600));
    expect(res.status).toBe(401);
  });

  it('caps a signed body at 1 MB (413), declared or not', async () => {
    const body = `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions', pad: 'x'.repeat(1.5 * 1024 * 1024) }))}`;
    const res = await postRaw(url(), body, signed(body));
    expect(res.status).toBe(413);
    const chunked = await postRaw(url(), Buffer.from(body), {
      ...signed(body),
      'transfer-encoding': 'chunked',
    });
    expect(chunked.status).toBe(413);
    // Still answering real commands afterwards.
    const sent = await stack.driver.command('/deploy', 'status');
    expect(String(sent.body?.text)).toMatch(/on it/);
  });
});
