import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LUA_MODULES } from './helpers/nginx-server.js';
import { waitFor } from './helpers/ports.js';
import { TestStack } from './helpers/stack.js';

// Sticky canary sessions (services.<svc>.sticky, nginx.driver: lua) in a real nginx: 200 clients,
// each with its own cookie jar, while the weights move as a release and a rollback move them. The
// colours are two small HTTP servers answering their name.
const stack = new TestStack({ prefix: 'fdsticky', basePort: 33700 });
const colours: Server[] = [];
const COOKIE = 'fd_bucket';

beforeAll(async () => {
  stack.nginx.modules = LUA_MODULES;
  for (const [colour, port] of Object.entries({ blue: 33701, green: 33702 })) {
    const server = createServer((req, res) => {
      // The application's own cookie: nginx's bucket cookie goes beside it.
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': 'app_session=1; Path=/' });
      res.end(req.url === '/health' ? 'ok\n' : `${colour}\n`);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    colours.push(server);
  }
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg.nginx, { driver: 'lua' });
      // 127.0.0.2 and 127.0.0.3 are the testers' network; 127.0.0.1 and 127.0.0.4 are not.
      Object.assign(cfg.environments.staging.services.api, {
        sticky: { cookie: COOKIE, maxAge: '1h', pinFrom: ['127.0.0.2/31'] },
      });
    },
  });
}, 120_000);

afterAll(async () => {
  await stack.stop();
  for (const s of colours) await new Promise((r) => s.close(r));
});

interface Answer {
  colour: string;
  setCookie: string[];
}

/** One GET to staging api through nginx, on a fresh connection from `localAddress`. */
function get(headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: stack.nginx.port,
        path: '/staging/api/colour',
        headers,
        localAddress,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ colour: body.trim(), setCookie: res.headers['set-cookie'] ?? [] }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A browser of its own: keeps the bucket cookie nginx hands it, and sends it back. */
class Client {
  cookie: string | undefined;
  seen: string[] = [];
  async visit(): Promise<string> {
    const { colour, setCookie } = await get(this.cookie ? { cookie: `${COOKIE}=${this.cookie}` } : {});
    for (const c of setCookie) {
      const m = new RegExp(`^${COOKIE}=(\\d+);`).exec(c);
      if (m) this.cookie = m[1];
    }
    this.seen.push(colour);
    return colour;
  }
}

const clients = Array.from({ length: 200 }, () => new Client());

/** Every client visits `times` times (20 at a time); returns the percentage of clients on each colour at their last visit. */
async function visitAll(times = 1): Promise<{ blue: number; green: number; other: number }> {
  for (let i = 0; i < clients.length; i += 20)
    await Promise.all(
      clients.slice(i, i + 20).map(async (c) => {
        for (let t = 0; t < times; t += 1) await c.visit();
      }),
    );
  const share = { blue: 0, green: 0, other: 0 };
  for (const c of clients) {
    const last = c.seen.at(-1) ?? '';
    if (last === 'blue' || last === 'green') share[last] += 1;
    else share.other += 1;
  }
  // 200 clients: a client is half a point.
  return { blue: share.blue / 2, green: share.green / 2, other: share.other / 2 };
}

async function traffic(text: string): Promise<void> {
  const before = stack.emulator.channelMessages('C0RELEASES').length;
  await stack.driver.command('/traffic', text);
  const answer = await waitFor(() => stack.emulator.channelMessages('C0RELEASES').slice(before)[0]?.text, {
    timeoutMs: 20_000,
    what: `the answer to /traffic ${text}`,
  });
  expect(answer).toMatch(/\(nginx (updated live|reloaded) in \d+ ms\)/);
}

const measured: string[] = [];
function record(
  label: string,
  weights: { blue: number; green: number },
  share: { blue: number; green: number },
) {
  const line = `${label.padEnd(44)} weights blue ${weights.blue}/green ${weights.green} → clients blue ${share.blue}%, green ${share.green}%`;
  measured.push(line);
  console.log(`[sticky] ${line}`);
}

/** Clients whose colour changed between two visits (from → to), counted. */
const moved = (from: number, to: number, fromColour: string, toColour: string) =>
  clients.filter((c) => c.seen[from] === fromColour && c.seen[to] === toColour).length;

describe('sticky canary sessions (nginx.driver: lua)', () => {
  it('keeps 200 cookie-holding clients on their colour, in shares that follow the weights as the canary grows', async () => {
    await traffic('api 10 green');
    const first = await visitAll(); // each client gets its bucket here
    record('a release at 10%: first visit', { blue: 90, green: 10 }, first);
    expect(clients.every((c) => c.cookie !== undefined)).toBe(true);
    // A new client gets its bucket beside the application's cookie; one with a bucket, only the application's.
    const fresh = await get();
    expect(fresh.setCookie).toEqual([
      'app_session=1; Path=/',
      expect.stringMatching(new RegExp(`^${COOKIE}=\\d+; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax$`)),
    ]);
    expect((await get({ cookie: `${COOKIE}=7` })).setCookie).toEqual(['app_session=1; Path=/']);
    expect(first.other).toBe(0);
    expect(Math.abs(first.green - 10)).toBeLessThanOrEqual(3);

    // Three more visits each: nobody changes colour while the weights stay.
    await visitAll(3);
    expect(clients.filter((c) => new Set(c.seen).size > 1)).toHaveLength(0);

    await traffic('api 50 green');
    const half = await visitAll(2);
    record('the release at 50%', { blue: 50, green: 50 }, half);
    expect(Math.abs(half.green - 50)).toBeLessThanOrEqual(3);
    // Those on the canary at 10% are all still on it: the canary only grows.
    expect(moved(0, 4, 'green', 'blue')).toBe(0);
    expect(moved(4, 5, 'green', 'blue') + moved(4, 5, 'blue', 'green')).toBe(0);
  }, 60_000);

  it('sends every sticky client back to the stable colour at once on a rollback', async () => {
    // A rollback's first act is 100% to the stable colour; the Lua driver sees exactly that.
    const onCanary = clients.filter((c) => c.seen.at(-1) === 'green').length;
    await traffic('api 0 green');
    const after = await visitAll(); // the first visit after the switch
    record(`rolled back (${onCanary} clients were on green)`, { blue: 100, green: 0 }, after);
    expect(after).toEqual({ blue: 100, green: 0, other: 0 });
    expect(clients.filter((c) => c.seen.at(-1) === 'green')).toHaveLength(0);
  }, 60_000);

  it('follows a completed release and the next one, whose canary is the other colour, without pinning anyone to the idle colour', async () => {
    await traffic('api 10 green');
    const again = await visitAll();
    record('the release again at 10% (same cookies)', { blue: 90, green: 10 }, again);
    expect(Math.abs(again.green - 10)).toBeLessThanOrEqual(3);
    await traffic('api 100 green');
    const done = await visitAll();
    record('completed: 100% green', { blue: 0, green: 100 }, done);
    expect(done).toEqual({ blue: 0, green: 100, other: 0 });

    // The next release's canary is blue: blue at 10%, then 50%; green is the stable colour now.
    await traffic('api 10 blue');
    const next = await visitAll();
    record('next release (blue canary) at 10%', { blue: 10, green: 90 }, next);
    expect(Math.abs(next.blue - 10)).toBeLessThanOrEqual(3);
    const at = clients[0]?.seen.length ?? 0;
    await traffic('api 50 blue');
    const nextHalf = await visitAll();
    record('next release (blue canary) at 50%', { blue: 50, green: 50 }, nextHalf);
    expect(Math.abs(nextHalf.blue - 50)).toBeLessThanOrEqual(3);
    expect(moved(at - 1, at, 'blue', 'green')).toBe(0);
    // No new buckets were handed out: every client kept the one it got on its first visit.
    const { setCookie } = await get({ cookie: `${COOKIE}=${clients[0]?.cookie}` });
    expect(setCookie).toEqual(['app_session=1; Path=/']);
  }, 60_000);

  it('honours the pin header only from the allowed network, and hands a pinned tester no bucket', async () => {
    await traffic('api 0 green'); // all on blue; green serves nobody but testers
    const pin = { 'x-flightdeck-colour': 'green' };
    const from = async (address: string, headers: Record<string, string>) =>
      (await get(headers, address)).colour;
    const allowed = await get(pin, '127.0.0.2');
    expect(allowed.colour).toBe('green');
    expect(allowed.setCookie).toEqual(['app_session=1; Path=/']);
    expect(await from('127.0.0.3', { 'x-flightdeck-colour': 'GREEN' })).toBe('green');
    expect(await from('127.0.0.2', { 'x-flightdeck-colour': 'blue' })).toBe('blue');
    // From elsewhere the header is ignored: the client goes where its bucket says (blue, at 100%).
    expect(await from('127.0.0.1', pin)).toBe('blue');
    expect(await from('127.0.0.4', pin)).toBe('blue');
    // A colour that is not one, from the allowed network: ignored too.
    expect(await from('127.0.0.2', { 'x-flightdeck-colour': 'purple' })).toBe('blue');

    // During a canary, a tester pins either colour; everyone else keeps their bucket's colour.
    await traffic('api 10 green');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        from('127.0.0.2', { 'x-flightdeck-colour': i % 2 ? 'green' : 'blue' }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 ? 'green' : 'blue')));
    const outsider = await Promise.all(Array.from({ length: 20 }, () => from('127.0.0.1', pin)));
    // Cookie-less outsiders get fresh buckets: about 10% green, never all of them.
    expect(outsider.filter((c) => c === 'green').length).toBeLessThanOrEqual(4);
    // A forged or broken bucket is replaced, never an error.
    for (const bad of ['abc', '-1', '100', '2.5', ''])
      expect((await get({ cookie: `${COOKIE}=${bad}` })).setCookie).toContainEqual(
        expect.stringMatching(new RegExp(`^${COOKIE}=\\d+;`)),
      );
    // No Lua error on the way (the log's only errors are the placeholder status server's, before the first reload).
    expect(readFileSync(join(stack.nginx.prefix, 'logs', 'error.log'), 'utf8')).not.toMatch(
      /\[lua\]|lua entry thread|runtime error|flightdeck: /,
    );
    console.log(`[sticky] measured shares:\n  ${measured.join('\n  ')}`);
  }, 60_000);
});
