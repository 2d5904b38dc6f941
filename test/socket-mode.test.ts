import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlackDriver } from '../tools/slack-emulator/driver.js';
import { waitFor } from './helpers/ports.js';
import { TestStack } from './helpers/stack.js';

// flightdeck with SLACK_APP_TOKEN: Socket Mode over the emulator's WebSocket, no /slack/events.
const stack = new TestStack({ prefix: 'fdsock', basePort: 28700 });

beforeAll(async () => {
  await stack.start({ roles: [] });
  const app = await stack.addApp('all', { SLACK_APP_TOKEN: stack.emulator.appToken });
  // No signing secret in Socket Mode: the driver delivers envelopes over the app's WebSocket.
  stack.driver = new SlackDriver(stack.emulator, app.url, 'unused');
  await waitFor(() => stack.emulator.socketConnected, {
    timeoutMs: 60_000,
    what: 'a Socket Mode connection',
  });
});
afterAll(async () => {
  await stack.stop();
});

describe('Socket Mode', () => {
  it('connects with the app token and serves no HTTP Slack endpoint', async () => {
    expect(stack.emulator.callCount('apps.connections.open', 200)).toBeGreaterThan(0);
    const res = await fetch(`${stack.apps[0]?.url}/slack/events`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(404);
    expect((await fetch(`${stack.apps[0]?.url}/healthz`)).status).toBe(200);
  });

  it('acks slash commands over the socket well within 3 s and answers through response_url', async () => {
    const help = await stack.driver.command('/deploy', 'help', { socket: true });
    expect(help.timedOut).toBe(false);
    expect(help.body?.text).toContain('*/deploy*');

    const bad = await stack.driver.command('/traffic', 'api 101', { socket: true });
    expect(bad.body?.text).toMatch(/whole number from 0 to 100, got `101`/);

    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const ok = await stack.driver.command('/traffic', 'status', { socket: true });
    expect(ok.body?.text).toContain('on it');
    expect(await stack.answerTo('U0DEV', seen, /\*staging\*/)).toMatch(/api .*blue .*100%/);
  });
});
