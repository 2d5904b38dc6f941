import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FlightdeckConfig } from '../../src/config/schema.js';
import { runSmoke } from '../../src/releases/steps/run-smoke.js';
import { fakeContext, release, step, unitConfig } from './helpers.js';

// The smoke step's one integration is an HTTP GET of the new colour: here two in-process servers on
// loopback play blue and green (no module mock, so the file is safe without per-file isolation).
const answers = new Map<string, { status: number; body: string }>();
const seen: string[] = [];
const servers: Server[] = [];
const ports = { blue: 0, green: 0 };
let config: FlightdeckConfig;

async function listen(): Promise<number> {
  const server = createServer((req, res) => {
    const key = `${(server.address() as AddressInfo).port}${req.url}`;
    seen.push(key);
    const a = answers.get(key) ?? { status: 200, body: 'ok' };
    res.writeHead(a.status).end(a.body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  ports.blue = await listen();
  ports.green = await listen();
  config = unitConfig((raw) => {
    raw.release = {
      ...raw.release,
      smoke: [{ path: '/health' }, { path: '/version', status: 203, contains: '1.2.0' }],
    };
    raw.environments.staging.services.api.blue.address = `127.0.0.1:${ports.blue}`;
    raw.environments.staging.services.api.green.address = `127.0.0.1:${ports.green}`;
  });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

beforeEach(() => {
  answers.clear();
  seen.length = 0;
  answers.set(`${ports.green}/version`, { status: 203, body: 'version 1.2.0' });
  answers.set(`${ports.blue}/version`, { status: 203, body: 'version 1.2.0' });
});

describe('runSmoke step', () => {
  it('runs every configured check against the new colour directly', async () => {
    const out = await runSmoke(fakeContext({ config }), release(), step('smoke'));
    expect(out).toEqual({ kind: 'done', detail: '2 passed' });
    expect(seen.sort()).toEqual([`${ports.green}/health`, `${ports.green}/version`]);
  });

  it('checks blue when the release goes to blue', async () => {
    await runSmoke(
      fakeContext({ config }),
      release({ toColour: 'blue', fromColour: 'green' }),
      step('smoke'),
    );
    expect(seen.sort()).toEqual([`${ports.blue}/health`, `${ports.blue}/version`]);
  });

  it('fails on an unexpected status, naming the URL', async () => {
    answers.set(`${ports.green}/health`, { status: 500, body: 'boom' });
    expect(await runSmoke(fakeContext({ config }), release(), step('smoke'))).toEqual({
      kind: 'fail',
      reason: `smoke checks failed: http://127.0.0.1:${ports.green}/health answered 500`,
    });
  });

  it('holds a check to its own status: 200 is wrong where 203 is expected', async () => {
    answers.set(`${ports.green}/version`, { status: 200, body: 'version 1.2.0' });
    const out = await runSmoke(fakeContext({ config }), release(), step('smoke'));
    expect(out).toEqual({
      kind: 'fail',
      reason: `smoke checks failed: http://127.0.0.1:${ports.green}/version answered 200`,
    });
  });

  it('fails when the body lacks the expected text', async () => {
    answers.set(`${ports.green}/version`, { status: 203, body: 'version 1.1.0' });
    expect(await runSmoke(fakeContext({ config }), release(), step('smoke'))).toEqual({
      kind: 'fail',
      reason: `smoke checks failed: http://127.0.0.1:${ports.green}/version answered without "1.2.0"`,
    });
  });

  it('names every failed check', async () => {
    answers.set(`${ports.green}/health`, { status: 503, body: '' });
    answers.set(`${ports.green}/version`, { status: 404, body: '' });
    const out = await runSmoke(fakeContext({ config }), release(), step('smoke'));
    expect(out.kind === 'fail' && out.reason).toBe(
      `smoke checks failed: http://127.0.0.1:${ports.green}/health answered 503; http://127.0.0.1:${ports.green}/version answered 404`,
    );
  });
});
