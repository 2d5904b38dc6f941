// services.<svc>.sticky: its validation (src/config/sticky-schema.ts and the driver cross-check in
// schema.ts) and what the Lua driver renders for it. test/nginx-sticky.test.ts runs it in nginx.
import { describe, expect, it } from 'vitest';
import type { Upstream } from '../../src/integrations/nginx.js';
import {
  cidrToLua,
  renderLuaUpstreams,
  stickyCookieAttributes,
} from '../../src/integrations/nginx-lua-render.js';
import { problemsOf, type RawConfig, unitConfig } from './helpers.js';

const lua = (raw: RawConfig) => Object.assign(raw.nginx, { driver: 'lua', statusListen: '127.0.0.1:18089' });

const api = (raw: RawConfig) => raw.environments.staging?.services.api as Record<string, unknown>;

describe('services.<svc>.sticky', () => {
  it('defaults: on when present, cookie flightdeck_bucket for a day, pin header X-Flightdeck-Colour from nowhere', () => {
    const cfg = unitConfig((raw) => {
      lua(raw);
      api(raw).sticky = {};
    });
    expect(cfg.environments.staging?.services.api?.sticky).toEqual({
      enabled: true,
      cookie: 'flightdeck_bucket',
      maxAge: 86_400_000,
      secure: false,
      pinHeader: 'X-Flightdeck-Colour',
      pinFrom: [],
    });
    expect(cfg.environments.staging?.services.web?.sticky).toBeUndefined();
  });

  it('needs the lua driver, unless it is disabled', () => {
    expect(problemsOf((raw) => Object.assign(api(raw), { sticky: { enabled: true } }))).toEqual([
      "environments.staging.services.api.sticky: needs nginx.driver: lua (the cookie is set by nginx's Lua balancer)",
    ]);
    expect(problemsOf((raw) => Object.assign(api(raw), { sticky: { enabled: false } }))).toEqual([]);
    expect(
      problemsOf((raw) => {
        lua(raw);
        api(raw).sticky = {
          cookie: 'fd',
          maxAge: '2h',
          secure: true,
          pinFrom: ['10.0.0.0/8', '192.0.2.7/32'],
        };
      }),
    ).toEqual([]);
  });

  it('refuses bad cookie names, header names, networks and ages, at their paths', () => {
    const problems = problemsOf((raw) => {
      lua(raw);
      api(raw).sticky = {
        cookie: 'fd colour;',
        pinHeader: 'X Colour',
        pinFrom: ['10.0.0.0', '10.0.0.300/8', '10.0.0.0/33', 'fe80::/10'],
        maxAge: '0s',
        sameSite: 'none',
      };
    });
    const at = 'environments.staging.services.api.sticky';
    expect(problems).toEqual([
      `${at}.cookie: must be 1–64 letters, digits or underscores, got "fd colour;"`,
      `${at}.maxAge: must be at least 1s`,
      `${at}.pinHeader: must be an HTTP header name like X-Flightdeck-Colour, got "X Colour"`,
      `${at}.pinFrom.0: must be an IPv4 network like 10.0.0.0/8 or 192.0.2.7/32, got "10.0.0.0"`,
      `${at}.pinFrom.1: must be an IPv4 network like 10.0.0.0/8 (octets ≤ 255, prefix ≤ 32)`,
      `${at}.pinFrom.2: must be an IPv4 network like 10.0.0.0/8 (octets ≤ 255, prefix ≤ 32)`,
      `${at}.pinFrom.3: must be an IPv4 network like 10.0.0.0/8 or 192.0.2.7/32, got "fe80::/10"`,
      `${at}: unknown key "sameSite" (check the spelling against docs/configuration.md)`,
    ]);
  });
});

const STICKY = {
  cookie: 'fd_bucket',
  maxAgeMs: 3_600_000,
  secure: false,
  pinHeader: 'X-Flightdeck-Colour',
  pinFrom: [],
};
const upstream = (name: string, sticky?: Upstream['sticky']): Upstream => ({
  name,
  servers: [
    { colour: 'blue', address: '127.0.0.1:8001', weight: 90 },
    { colour: 'green', address: '127.0.0.1:8002', weight: 10 },
  ],
  ...(sticky ? { sticky } : {}),
});
const render = (ups: Upstream[]) =>
  renderLuaUpstreams(ups, {
    prefix: 'flightdeck',
    statusListen: '127.0.0.1:18089',
    weightsFile: '/tmp/w',
    adminToken: 'a-token-of-enough-length',
  }).content;

describe('the Lua driver with sticky upstreams', () => {
  it('renders nothing of it when no upstream is sticky: the plain balancer only', () => {
    const content = render([upstream('flightdeck_staging_api'), upstream('flightdeck_staging_web')]);
    expect(content).not.toMatch(/sticky|STICKY|header_filter/);
    expect(content).toContain('balancer_by_lua_block { flightdeck_lua.balance("flightdeck_staging_api") }');
  });

  it('gives sticky upstreams the sticky balancer, the cookie filter once, and their colours and networks', () => {
    const content = render([
      upstream('flightdeck_staging_api', {
        ...STICKY,
        pinFrom: ['10.1.0.0/16', '127.0.0.2/31'],
        secure: true,
      }),
      upstream('flightdeck_staging_web'),
    ]);
    expect(content).toContain(
      'balancer_by_lua_block { flightdeck_lua.balance_sticky("flightdeck_staging_api") }',
    );
    expect(content).toContain('balancer_by_lua_block { flightdeck_lua.balance("flightdeck_staging_web") }');
    expect(content.match(/header_filter_by_lua_block/g)).toHaveLength(1);
    expect(content).toContain('local CTX_KEY = "flightdeck_sticky"');
    const table = /local STICKY = \{\n(.*)\n {4}\}/.exec(content)?.[1]?.trim();
    expect(table).toBe(
      '["flightdeck_staging_api"] = { cookie_var = "cookie_fd_bucket", cookie_prefix = "fd_bucket=", ' +
        'cookie_attrs = "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure", pin_var = "http_x_flightdeck_colour", ' +
        'colours = { ["blue"] = "127.0.0.1:8001", ["green"] = "127.0.0.1:8002" }, ' +
        `nets = { { ${cidrToLua('10.1.0.0/16').join(', ')} }, { ${cidrToLua('127.0.0.2/31').join(', ')} } } }`,
    );
  });

  it('turns networks into the signed 32-bit network and mask that LuaJIT compares', () => {
    expect(cidrToLua('10.1.0.0/16')).toEqual([0x0a010000, 0xffff0000 | 0]);
    expect(cidrToLua('10.1.2.3/16')).toEqual([0x0a010000, 0xffff0000 | 0]); // host bits dropped
    expect(cidrToLua('192.168.1.7/32')).toEqual([0xc0a80107 | 0, -1]);
    expect(cidrToLua('0.0.0.0/0')).toEqual([0, 0]);
    expect(cidrToLua('127.0.0.2/31')).toEqual([0x7f000002, 0xfffffffe | 0]);
  });

  it('renders the cookie attributes from maxAge and secure', () => {
    expect(stickyCookieAttributes({ ...STICKY, maxAgeMs: 86_400_000 })).toBe(
      '; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax',
    );
  });
});
