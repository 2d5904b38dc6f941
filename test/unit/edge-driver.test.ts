import { describe, expect, it } from 'vitest';
import { checkBackend } from '../../src/integrations/http-check.js';
import { describeApply } from '../../src/integrations/nginx.js';
import { EdgeDriver, type EdgeStatus, parseReport } from '../../src/integrations/nginx-edge.js';
import { renderEdgeConfig } from '../../src/integrations/nginx-edge-render.js';

const replica = (name: string, generation: string, health = 'ok') => ({
  name,
  generation,
  config: 'c1',
  appliedAt: 0,
  health,
});

// confirmed() reads only its arguments; the Redis client is never used here.
const driver = (minReplicas = 1) =>
  new EdgeDriver({} as never, {
    redisPrefix: 'fd',
    group: 'flightdeck',
    confirmTimeoutMs: 1_000,
    minReplicas,
    now: () => 100_000,
  });

describe('edge reports', () => {
  it('reads what an edge wrote, health last with its spaces', () => {
    expect(parseReport('edge-1', 'generation=abc123 config=def456 applied=1700000000000 health=ok')).toEqual({
      name: 'edge-1',
      generation: 'abc123',
      config: 'def456',
      appliedAt: 1_700_000_000_000,
      health: 'ok',
    });
    expect(
      parseReport('edge-1', 'generation=none config=d applied=0 health=no weights taken yet')?.health,
    ).toBe('no weights taken yet');
  });

  it('makes an edge-written health text inert for Slack and refuses odd names and formats', () => {
    const r = parseReport('edge-1', 'generation=a config=b applied=1 health=<!channel> & <https://evil|x>');
    expect(r?.health).toBe('&lt;!channel&gt; &amp; &lt;https://evil|x&gt;');
    expect(parseReport('<@U0LEAD>', 'generation=a config=b applied=1 health=ok')).toBeUndefined();
    expect(parseReport('edge 1', 'generation=a config=b applied=1 health=ok')).toBeUndefined();
    expect(parseReport('edge-1', 'generation=A;B config=b applied=1 health=ok')).toBeUndefined();
    expect(parseReport('edge-1', 'hello')).toBeUndefined();
  });
});

describe('when a change counts as taken', () => {
  const status = (live: EdgeStatus['live'], missing: EdgeStatus['missing'] = []): EdgeStatus => ({
    desired: 'g2',
    live,
    missing,
  });

  it('once every live edge serves the generation, healthy', () => {
    expect(driver().confirmed(status([replica('a', 'g2'), replica('b', 'g2')]), 'g2')).toEqual({ ok: true });
  });

  it('not while an edge still serves the old one, naming it', () => {
    const c = driver().confirmed(status([replica('a', 'g2'), replica('b', 'g1')]), 'g2');
    expect(c).toMatchObject({ ok: false, why: 'edge b still serves generation g1 (ok)' });
  });

  it('at once when an edge refused the generation', () => {
    const c = driver().confirmed(
      status([replica('a', 'g1', 'refused generation g2: this edge has no upstream x')]),
      'g2',
    );
    expect(c).toMatchObject({
      ok: false,
      final: true,
      why: 'edge a refused generation g2: this edge has no upstream x',
    });
  });

  it('not when an edge took it but cannot serve it', () => {
    const c = driver().confirmed(status([replica('a', 'g2', 'api: tasks.api-green has no address')]), 'g2');
    expect(c).toMatchObject({
      ok: false,
      sick: true,
      why: 'edge a took generation g2 but api: tasks.api-green has no address',
    });
  });

  it('not with fewer live edges than required, naming the silent ones', () => {
    const c = driver(2).confirmed(status([replica('a', 'g2')], [{ name: 'b', lastSeen: 88_000 }]), 'g2');
    expect(c).toMatchObject({
      ok: false,
      why: '1 edge reports, at least 2 needed (not reporting: b, last report 12 s ago)',
    });
    // With one required, a silent edge does not hold the change back (it syncs before it serves again).
    expect(
      driver(1).confirmed(status([replica('a', 'g2')], [{ name: 'b', lastSeen: 88_000 }]), 'g2').ok,
    ).toBe(true);
  });

  it('says where a change went', () => {
    expect(
      describeApply({
        changed: true,
        generation: 'g',
        ms: 312.4,
        live: true,
        edges: { live: ['a', 'b'], missing: [] },
      }),
    ).toBe('taken by 2 edges (a, b) in 312 ms');
    expect(
      describeApply({
        changed: true,
        generation: 'g',
        ms: 5,
        live: true,
        edges: { live: ['a'], missing: ['b'] },
      }),
    ).toBe('taken by 1 edge (a) in 5 ms; not reporting: b');
  });
});

describe("the edge's static file", () => {
  const render = (keepalive: number) =>
    renderEdgeConfig(
      [
        {
          name: 'flightdeck_staging_api',
          addresses: ['tasks.api-blue:8080', 'tasks.api-green:8080'],
          keepalive,
          maxFails: 3,
          failTimeoutMs: 10_000,
        },
      ],
      {
        prefix: 'flightdeck',
        redisPrefix: 'flightdeck',
        redis: {
          host: 'redis',
          port: 6379,
          user: 'flightdeck-edge',
          passwordFile: '/run/secrets/edge_redis_password',
        },
        resolvers: ['127.0.0.11'],
        syncIntervalMs: 250,
        resolveIntervalMs: 1_000,
        staleAfterMs: 5_000,
        holdMs: 5_000,
        nameFile: '/etc/hostname',
        statusListen: '127.0.0.1:18089',
      },
    );

  it('has one upstream per service with its keep-alive pool, and the addresses it may be sent', () => {
    const { content, version } = render(32);
    expect(content).toMatch(
      /upstream flightdeck_staging_api \{\n.*\n.*balancer_by_lua_block.*\n {4}keepalive 32;\n\}/,
    );
    expect(content).toContain('["tasks.api-blue:8080"] = true, ["tasks.api-green:8080"] = true');
    expect(content).toContain(`local CONFIG_VERSION = "${version}"`);
    expect(content).toContain('resolver 127.0.0.11 valid=1s ipv6=off;');
    // The password stays in its file: the rendered config (a Docker config, readable) names only the path.
    expect(content).toContain('first_line("/run/secrets/edge_redis_password")');
  });

  it('is versioned by what it says, so an edge on an older file can be named', () => {
    expect(render(32).version).toBe(render(32).version);
    expect(render(16).version).not.toBe(render(32).version);
    expect(render(0).content).not.toMatch(/^ +keepalive \d+;$/m);
  });
});

describe('backend health by name', () => {
  const healthyOn = (ok: string[]) => async (url: string) =>
    ok.some((ip) => url.includes(ip)) ? new Response('ok') : new Response('no', { status: 503 });

  it('checks every task a name resolves to', async () => {
    const realFetch = globalThis.fetch;
    globalThis.fetch = healthyOn(['10.0.0.1', '10.0.0.2']) as typeof fetch;
    try {
      const resolve = async () => ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
      const all = await checkBackend('tasks.api-green:8080', '/health', { timeoutMs: 500, resolve });
      expect(all.ok).toBe(false);
      expect(all.detail).toMatch(
        /^tasks\.api-green: 2 of 3 tasks healthy \(http:\/\/10\.0\.0\.3:8080\/health answered 503\)$/,
      );
      const any = await checkBackend('tasks.api-green:8080', '/health', {
        timeoutMs: 500,
        resolve,
        require: 'any',
      });
      expect(any.ok).toBe(true);
      const none = await checkBackend('tasks.api-green:8080', '/health', {
        timeoutMs: 500,
        resolve: async () => [],
        require: 'any',
      });
      expect(none).toMatchObject({ ok: false, detail: 'tasks.api-green resolves to no address' });
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});
