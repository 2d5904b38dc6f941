import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NGINX_ADMIN_TOKEN, runToExit } from './helpers/flightdeck-process.js';
import { LUA_MODULES } from './helpers/nginx-server.js';
import { waitFor } from './helpers/ports.js';
import { measureSplit } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';

// nginx with its Lua module, flightdeck with `nginx.driver: lua`. The colours are two small HTTP
// servers: what is under test is how weights reach nginx, not Swarm.
const stack = new TestStack({ prefix: 'fdlua', basePort: 30700 });
const colours: Server[] = [];

beforeAll(async () => {
  stack.nginx.logLevel = 'notice'; // reloads() counts "reconfiguring" lines
  stack.nginx.modules = LUA_MODULES;
  const draft = { blue: 30701, green: 30702 }; // staging api in testConfig(basePort 30700)
  for (const [colour, port] of Object.entries(draft)) {
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.url === '/health' ? 'ok\n' : `${colour}\n`);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    colours.push(server);
  }
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg.nginx, { driver: 'lua' });
    },
  });
}, 120_000);

afterAll(async () => {
  await stack.stop();
  for (const s of colours) await new Promise((r) => s.close(r));
});

const url = () => `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;
const admin = (path: string) => `http://${stack.nginx.statusListen}/flightdeck/${path}`;
const AUTH = { authorization: `Bearer ${NGINX_ADMIN_TOKEN}` };
/** The weights nginx holds, read with flightdeck's token. */
const heldWeights = async () => (await fetch(admin('weights'), { headers: AUTH })).text();
const errorLog = () => readFileSync(join(stack.nginx.prefix, 'logs', 'error.log'), 'utf8');
const weightsFile = () => readFileSync(`${stack.nginx.upstreamFile}.weights`, 'utf8');

async function traffic(text: string): Promise<string> {
  const before = stack.emulator.channelMessages('C0RELEASES').length;
  await stack.driver.command('/traffic', text);
  return waitFor(() => stack.emulator.channelMessages('C0RELEASES').slice(before)[0]?.text, {
    timeoutMs: 20_000,
    what: `the answer to /traffic ${text}`,
  });
}

describe('nginx.driver: lua', () => {
  it('moves the split without reloading nginx, exactly as asked, and nginx reads back what was sent', async () => {
    const reloads = stack.nginx.reloads();
    const answer = await traffic('api 30 green');
    expect(answer).toMatch(/🔀 api in staging: .*70%.*30%/);
    expect(answer).toMatch(/\(nginx updated live in \d+ ms\)/);

    const split = await measureSplit(url(), 100);
    expect(split).toEqual({ blue: 70, green: 30, other: 0 });
    expect(stack.nginx.reloads()).toBe(reloads);

    // What flightdeck wrote is what nginx holds: same text, same generation.
    const held = await heldWeights();
    expect(held).toBe(weightsFile());
    expect(held).toMatch(/^flightdeck_staging_api 127\.0\.0\.1:30701 70 127\.0\.0\.1:30702 30$/m);
    const generation = /^generation (\S+)$/m.exec(held)?.[1];
    expect(await (await fetch(admin('generation'))).text()).toBe(generation);
  });

  it('keeps every keep-alive request answered while weights change', async () => {
    const reloads = stack.nginx.reloads();
    let stop = false;
    const seen = { blue: 0, green: 0, failed: 0 };
    // fetch keeps connections alive: the clients a reload would cut.
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const body = (await (await fetch(url())).text()).trim();
          if (body === 'blue' || body === 'green') seen[body] += 1;
          else seen.failed += 1;
        } catch {
          seen.failed += 1;
        }
      }
    });
    for (const percent of [10, 50, 100, 0, 60]) await traffic(`api ${percent} green`);
    stop = true;
    await Promise.all(clients);
    expect(seen.failed).toBe(0);
    expect(seen.blue).toBeGreaterThan(0);
    expect(seen.green).toBeGreaterThan(0);
    expect(stack.nginx.reloads()).toBe(reloads);
  });

  it('serves the last weights after nginx itself is restarted, before flightdeck does anything', async () => {
    await traffic('api 20 green');
    const held = await heldWeights();
    await stack.nginx.restart(); // a fresh master: the shared dict starts empty and is filled from the file
    expect(await heldWeights()).toBe(held);
    expect(await measureSplit(url(), 100)).toEqual({ blue: 80, green: 20, other: 0 });
  });

  it('refuses malformed or unknown weights at its admin endpoint and keeps the old ones', async () => {
    const held = await heldWeights();
    for (const body of [
      'flightdeck_staging_api 127.0.0.1:30701 50 127.0.0.1:30702 50\n', // no generation
      'generation x\nflightdeck_staging_api 127.0.0.1:30701 150 127.0.0.1:30702 50\n', // weight > 100
      'generation x\nflightdeck_staging_api api-blue:8001 50 127.0.0.1:30702 50\n', // not an IP
      'generation x\nsomeone_else 127.0.0.1:30701 50 127.0.0.1:30702 50\n', // unknown upstream
    ]) {
      const res = await fetch(admin('weights'), { method: 'PUT', body, headers: AUTH });
      expect(res.status).toBe(400);
    }
    expect(await heldWeights()).toBe(held);
  });

  it("takes weights only with the admin token and only for the upstream's own addresses, logging each refusal", async () => {
    await traffic('api 10 green');
    const held = await heldWeights();
    const before = await measureSplit(url(), 100);
    expect(before).toEqual({ blue: 90, green: 10, other: 0 });
    const allGreen = 'generation evil\nflightdeck_staging_api 127.0.0.1:30701 0 127.0.0.1:30702 100\n';
    const put = (body: string, headers: Record<string, string> = {}) =>
      fetch(admin('weights'), { method: 'PUT', body, headers });
    const refusals: Array<[Response, number, string]> = [
      [await put(allGreen), 401, 'no admin token (send Authorization: Bearer <token>)'],
      [await put(allGreen, { authorization: 'Bearer not-the-admin-token-000000' }), 403, 'wrong admin token'],
      [
        await put(allGreen, { authorization: `Basic ${NGINX_ADMIN_TOKEN}` }),
        401,
        'the Authorization header is not Bearer <token>',
      ],
      [await fetch(admin('weights')), 401, 'no admin token (send Authorization: Bearer <token>)'], // reads too
      // With the token, but sending staging api's traffic somewhere else: a stranger's port, or staging web's blue.
      [
        await put('generation evil\nflightdeck_staging_api 127.0.0.1:30701 0 127.0.0.1:39999 100\n', AUTH),
        400,
        'address 127.0.0.1:39999 is not configured for upstream flightdeck_staging_api',
      ],
      [
        await put('generation evil\nflightdeck_staging_api 127.0.0.1:30711 100\n', AUTH),
        400,
        'address 127.0.0.1:30711 is not configured for upstream flightdeck_staging_api',
      ],
    ];
    for (const [res, status, reason] of refusals) {
      expect(res.status).toBe(status);
      expect((await res.text()).trim()).toBe(reason);
    }
    // Nothing changed: the same weights, the same split; and nginx said why at warn.
    expect(await heldWeights()).toBe(held);
    expect(await measureSplit(url(), 100)).toEqual(before);
    const log = errorLog();
    for (const line of [
      '[warn] ',
      'flightdeck: refused PUT /flightdeck/weights from 127.0.0.1 (401): no admin token',
      'flightdeck: refused PUT /flightdeck/weights from 127.0.0.1 (403): wrong admin token',
      'flightdeck: refused GET /flightdeck/weights from 127.0.0.1 (401): no admin token',
      'flightdeck: refused PUT /flightdeck/weights from 127.0.0.1 (400): address 127.0.0.1:39999 is not configured for upstream flightdeck_staging_api',
    ])
      expect(log).toContain(line);
    expect(log).not.toContain(NGINX_ADMIN_TOKEN); // the token is neither logged nor in the rendered file
    expect(readFileSync(stack.nginx.upstreamFile, 'utf8')).not.toContain(NGINX_ADMIN_TOKEN);

    // flightdeck itself, with the token, still moves the split.
    expect(await traffic('api 40 green')).toMatch(/\(nginx updated live in \d+ ms\)/);
    expect(await measureSplit(url(), 100)).toEqual({ blue: 60, green: 40, other: 0 });
  });

  it('refuses to start the lua driver without an admin token, or with a short one', async () => {
    const config = [
      'nginx:',
      '  upstreamFile: /tmp/fd-lua-upstreams.conf',
      '  probeUrl: http://127.0.0.1:8088/',
      '  statusListen: 127.0.0.1:18089',
      '  driver: lua',
      'channels: { releases: C0RELEASES }',
      'environments:',
      '  staging:',
      '    services:',
      '      api:',
      '        image: registry.example.com/api',
      '        port: 8080',
      '        blue: { swarmService: api-blue, address: "10.0.0.1:8001" }',
      '        green: { swarmService: api-green, address: "10.0.0.2:8001" }',
    ].join('\n');
    const missing = await runToExit(config);
    expect(missing.code).toBe(78);
    expect(missing.output).toMatch(/NGINX_ADMIN_TOKEN: is required with nginx\.driver: lua/);
    const short = await runToExit(config, { NGINX_ADMIN_TOKEN: 'short' });
    expect(short.code).toBe(78);
    expect(short.output).toMatch(/NGINX_ADMIN_TOKEN: must be at least 16 characters/);
  });

  it('refuses to start with driver lua but no statusListen, or with host names as addresses', async () => {
    const { code, output } = await runToExit(
      [
        'nginx:',
        '  upstreamFile: /tmp/fd-lua-upstreams.conf',
        '  probeUrl: http://127.0.0.1:8088/',
        '  driver: lua',
        'channels: { releases: C0RELEASES }',
        'environments:',
        '  staging:',
        '    services:',
        '      api:',
        '        image: registry.example.com/api',
        '        port: 8080',
        '        blue: { swarmService: api-blue, address: "api-blue:8001" }',
        '        green: { swarmService: api-green, address: "10.0.0.2:8001" }',
      ].join('\n'),
    );
    expect(code).toBe(78);
    expect(output).toMatch(/nginx\.statusListen.*required with driver: lua/);
    expect(output).toMatch(/environments\.staging\.services\.api\.blue\.address.*IPv4 address/);
    expect(output).not.toMatch(/green\.address/);
  });
});
