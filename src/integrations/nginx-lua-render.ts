import { createHash, createHmac } from 'node:crypto';
import type { StickyUpstream, Upstream } from './nginx.js';

/**
 * The weights as the Lua driver sends them and keeps them on disk: a `generation` line, then one
 * line per upstream, `<name> <ip:port> <weight> <ip:port> <weight>`. Plain text, so nginx needs no
 * JSON library; nginx's admin endpoint answers reads in exactly this form.
 */
export function renderWeights(upstreams: Upstream[], generation: string): string {
  const lines = [`generation ${generation}`];
  // Byte order, as Lua's table.sort reads them back.
  for (const u of [...upstreams].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    lines.push([u.name, ...u.servers.flatMap((s) => [s.address, String(s.weight)])].join(' '));
  }
  return `${lines.join('\n')}\n`;
}

// Lua shared by the balancers and the admin server. The choice is deterministic rather than
// random: a counter in the shared dict (so all workers count together) and a low-discrepancy rule,
// so 90/10 is exactly 9 in 10 requests, spread evenly. The admin endpoint asks for a bearer token
// (compared as HMAC digests, in constant time) and takes only the addresses KNOWN for each upstream.
const LUA_LIBRARY = `
    local lib = {}
    local dict = ngx.shared[DICT]
    local cache = {}
    local bit = require("bit")
    local function parse_line(line)
      local name, rest = line:match("^(%S+)%s+(.+)$")
      if not name then return nil, "malformed line: " .. line end
      local peers, total = {}, 0
      for addr, w in rest:gmatch("(%S+)%s+(%S+)") do
        local host, port = addr:match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
        local weight = tonumber(w)
        if not host or not weight or weight < 0 or weight > 100 or weight % 1 ~= 0 then
          return nil, "bad server in line: " .. line
        end
        peers[#peers + 1] = { addr = addr, host = host, port = tonumber(port), weight = weight }
        total = total + weight
      end
      if #peers == 0 then return nil, "no servers in line: " .. line end
      return name, { peers = peers, total = total }
    end
    -- Checks a whole weights text; returns generation and { name = line } or nil and why.
    function lib.parse(body)
      local generation, lines = nil, {}
      for line in body:gmatch("[^\\n]+") do
        local g = line:match("^generation%s+(%S+)$")
        if g then
          generation = g
        else
          local name, parsed = parse_line(line)
          if not name then return nil, parsed end
          local addresses = KNOWN[name]
          if not addresses then return nil, "unknown upstream " .. name end
          for _, p in ipairs(parsed.peers) do
            if not addresses[p.addr] then
              return nil, "address " .. p.addr .. " is not configured for upstream " .. name
            end
          end
          lines[name] = line
        end
      end
      if not generation then return nil, "no generation line" end
      return generation, lines
    end
    -- Stores a weights text; only_missing fills gaps (nginx starting from the file).
    function lib.store(body, only_missing)
      local generation, lines = lib.parse(body)
      if not generation then return nil, lines end
      for name, line in pairs(lines) do
        if not (only_missing and dict:get("u:" .. name)) then
          local ok, err = dict:set("u:" .. name, line)
          if not ok then return nil, "shared dict: " .. err end
        end
      end
      if not (only_missing and dict:get("generation")) then dict:set("generation", generation) end
      return generation
    end
    function lib.read()
      local out = { "generation " .. (dict:get("generation") or "none") }
      local names = {}
      for name in pairs(KNOWN) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        local line = dict:get("u:" .. name)
        if line then out[#out + 1] = line end
      end
      return table.concat(out, "\\n") .. "\\n"
    end
    function lib.pick(name)
      local raw = dict:get("u:" .. name)
      if not raw then return nil end
      local c = cache[name]
      if not c or c.raw ~= raw then
        local _, parsed = parse_line(raw)
        c = { raw = raw, peers = parsed.peers, total = parsed.total }
        cache[name] = c
      end
      if c.total <= 0 then return nil end
      local n = dict:incr("n:" .. name, 1, 0)
      local last
      for _, p in ipairs(c.peers) do
        if p.weight > 0 then
          -- A peer is due when its running share crosses a whole request.
          if math.floor(n * p.weight / c.total) > math.floor((n - 1) * p.weight / c.total) then return p end
          last = p
        end
      end
      return last
    end
    function lib.balance(name)
      local p = lib.pick(name)
      if not p then
        ngx.log(ngx.ERR, "flightdeck: no weights for upstream ", name)
        return ngx.exit(503)
      end
      local ok, err = require("ngx.balancer").set_current_peer(p.host, p.port)
      if not ok then
        ngx.log(ngx.ERR, "flightdeck: ", err)
        return ngx.exit(502)
      end
    end
    local function hex(s)
      return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
    end
    local function same(a, b)
      if #a ~= #b then return false end
      local diff = 0
      for i = 1, #a do diff = bit.bor(diff, bit.bxor(a:byte(i), b:byte(i))) end
      return diff == 0
    end
    -- Returns nil, or the status and reason of a refusal.
    local function unauthorised()
      local header = ngx.var.http_authorization
      if not header then return 401, "no admin token (send Authorization: Bearer <token>)" end
      local token = header:match("^Bearer%s+(%S+)%s*$")
      if not token then return 401, "the Authorization header is not Bearer <token>" end
      if not same(hex(ngx.hmac_sha1(TOKEN_KEY, token)), TOKEN_DIGEST) then return 403, "wrong admin token" end
      return nil
    end
    local function refuse(status, reason)
      ngx.log(ngx.WARN, "flightdeck: refused ", ngx.req.get_method(), " /flightdeck/weights from ",
        ngx.var.remote_addr, " (", status, "): ", reason)
      if status == 401 then ngx.header["WWW-Authenticate"] = 'Bearer realm="flightdeck"' end
      ngx.status = status
      return ngx.say(reason)
    end
    function lib.admin()
      local status, reason = unauthorised()
      if status then return refuse(status, reason) end
      local method = ngx.req.get_method()
      if method == "GET" then return ngx.print(lib.read()) end
      if method ~= "PUT" then return ngx.exit(405) end
      ngx.req.read_body()
      local body = ngx.req.get_body_data()
      if not body then return refuse(400, "empty body") end
      local generation, err = lib.store(body, false)
      if not generation then return refuse(400, err) end
      -- What the dict holds now, as GET answers it: the sender checks it without a second request.
      ngx.print(lib.read())
    end`;

// Sticky canary sessions, rendered only when a service asks for them (the plain balancer above
// stays as it is). Each client holds a bucket 0–99 in a cookie; the peers cover 0–99 in their
// order (blue, then green) by weight, and the client goes to the peer covering its bucket. Growing
// green shrinks blue's range from the top, so a client on green stays there; at 100% stable (a
// rollback) every bucket is stable's. New buckets come from a shared counter spread by the golden
// ratio, so any range of buckets holds its share of new clients. A forged bucket only picks a point
// in the current weights (the same as clearing the cookie until one lands on the canary), so the
// cookie is not signed. Runs in the same chunk as LUA_LIBRARY: dict, cache, parse_line and bit.
const STICKY_LIBRARY = `
    local PHI = 0.6180339887498949
    local function ipv4(addr)
      local a, b, c, d = addr:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
      if not a then return nil end
      return bit.tobit(((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d))
    end
    -- The address the pin header names, if the client is in one of the allowed networks.
    local function pinned(s)
      if #s.nets == 0 then return nil end
      local colour = ngx.var[s.pin_var]
      local addr = colour and s.colours[colour:lower()]
      if not addr then return nil end
      local ip = ipv4(ngx.var.remote_addr or "")
      if not ip then return nil end
      for _, n in ipairs(s.nets) do
        if bit.band(ip, n[2]) == n[1] then return addr end
      end
      return nil
    end
    function lib.balance_sticky(name)
      local s = STICKY[name]
      local raw = dict:get("u:" .. name)
      if not s or not raw then return lib.balance(name) end
      local c = cache[name]
      if not c or c.raw ~= raw then
        local _, parsed = parse_line(raw)
        c = { raw = raw, peers = parsed.peers, total = parsed.total }
        cache[name] = c
      end
      if c.total <= 0 then return lib.balance(name) end
      local p
      local addr = pinned(s)
      if addr then
        for _, q in ipairs(c.peers) do
          if q.addr == addr then p = q end
        end
      end
      if not p then
        local bucket = tonumber(ngx.var[s.cookie_var] or "")
        if not bucket or bucket % 1 ~= 0 or bucket < 0 or bucket > 99 then
          local n = dict:incr("sticky", 1, 0)
          bucket = math.floor((n * PHI) % 1 * 100)
          ngx.ctx[CTX_KEY] = s.cookie_prefix .. bucket .. s.cookie_attrs
        end
        local acc = 0
        for _, q in ipairs(c.peers) do
          if q.weight > 0 then
            acc = acc + q.weight
            p = q
            if bucket * c.total < acc * 100 then break end
          end
        end
      end
      local ok, err = require("ngx.balancer").set_current_peer(p.host, p.port)
      if not ok then
        ngx.log(ngx.ERR, "flightdeck: ", err)
        return ngx.exit(502)
      end
    end
    -- header_filter: hands a newly assigned bucket to the client, beside the backend's own cookies.
    function lib.sticky_cookie()
      local cookie = ngx.ctx[CTX_KEY]
      if not cookie then return end
      local existing = ngx.header["Set-Cookie"]
      if type(existing) == "table" then
        existing[#existing + 1] = cookie
        ngx.header["Set-Cookie"] = existing
      elseif existing then
        ngx.header["Set-Cookie"] = { existing, cookie }
      else
        ngx.header["Set-Cookie"] = cookie
      end
    end`;

/** a.b.c.d/len → the network and mask as signed 32-bit integers, as LuaJIT's bit library has them. */
export function cidrToLua(cidr: string): [number, number] {
  const [ip = '', len = '32'] = cidr.split('/');
  const value = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const bits = Number(len);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [(value & mask) | 0, mask | 0];
}

/** The Set-Cookie attributes after `name=bucket`. */
export function stickyCookieAttributes(s: StickyUpstream): string {
  return `; Path=/; Max-Age=${Math.max(1, Math.round(s.maxAgeMs / 1000))}; HttpOnly; SameSite=Lax${s.secure ? '; Secure' : ''}`;
}

/** The STICKY table: per sticky upstream, its cookie, pin header variable, colours and networks. */
function stickyTable(upstreams: Upstream[]): string {
  return upstreams
    .flatMap((u) => {
      const s = u.sticky;
      if (!s) return [];
      const colours = u.servers
        .map((sv) => `[${luaString(sv.colour)}] = ${luaString(sv.address)}`)
        .join(', ');
      const nets = s.pinFrom.map((c) => `{ ${cidrToLua(c).join(', ')} }`).join(', ');
      return [
        `[${luaString(u.name)}] = { cookie_var = ${luaString(`cookie_${s.cookie}`)}, cookie_prefix = ${luaString(`${s.cookie}=`)}, cookie_attrs = ${luaString(stickyCookieAttributes(s))}, pin_var = ${luaString(`http_${s.pinHeader.toLowerCase().replace(/-/g, '_')}`)}, colours = { ${colours} }, nets = { ${nets} } }`,
      ];
    })
    .join(',\n      ');
}

export interface LuaRenderOptions {
  /** nginx.upstreamPrefix: names the shared dict and the Lua global, so two flightdecks can share an nginx. */
  prefix: string;
  statusListen: string;
  weightsFile: string;
  /** The bearer token the admin endpoint asks for; only its HMAC digest is rendered. */
  adminToken: string;
}

/** Key of the HMAC that the rendered file holds in place of the admin token. */
const TOKEN_KEY = 'flightdeck nginx admin token';

/**
 * The Lua driver's upstream file: no weights in it, so a weight change never touches it. Returns
 * the content and its version (answered at /flightdeck/config once nginx runs it).
 */
export function renderLuaUpstreams(
  upstreams: Upstream[],
  { prefix, statusListen, weightsFile, adminToken }: LuaRenderOptions,
): { content: string; version: string } {
  const dict = `${prefix}_weights`;
  const lib = `${prefix}_lua`;
  // Each upstream and the addresses of its colours: the only ones a weights write may name.
  const known = upstreams
    .map(
      (u) =>
        `[${luaString(u.name)}] = { ${u.servers.map((s) => `[${luaString(s.address)}] = true`).join(', ')} }`,
    )
    .join(', ');
  const digest = createHmac('sha1', TOKEN_KEY).update(adminToken).digest('hex');
  const sticky = upstreams.some((u) => u.sticky);
  const body = [
    `lua_shared_dict ${dict} 1m;`,
    'init_by_lua_block {',
    `    local DICT = ${luaString(dict)}`,
    `    local KNOWN = { ${known} }`,
    `    local TOKEN_KEY = ${luaString(TOKEN_KEY)}`,
    `    local TOKEN_DIGEST = ${luaString(digest)}`,
    LUA_LIBRARY,
    ...(sticky
      ? [
          `    local STICKY = {\n      ${stickyTable(upstreams)}\n    }`,
          `    local CTX_KEY = ${luaString(`${prefix}_sticky`)}`,
          STICKY_LIBRARY,
        ]
      : []),
    `    ${lib} = lib`,
    // A fresh nginx (the dict is empty) starts from the last weights flightdeck wrote; a reload keeps the dict.
    `    local f = io.open(${luaString(weightsFile)}, "r")`,
    '    if f then',
    '      local text = f:read("*a")',
    '      f:close()',
    '      local ok, err = lib.store(text, true)',
    '      if not ok then ngx.log(ngx.ERR, "flightdeck: ignoring the weights file: ", err) end',
    '    end',
    '}',
    '',
    // Applies to every location of the http block (one without its own header_filter_by_lua*).
    ...(sticky ? [`header_filter_by_lua_block { ${lib}.sticky_cookie() }`, ''] : []),
    ...upstreams.flatMap((u) => [
      `upstream ${u.name} {`,
      '    server 0.0.0.1; # placeholder: the balancer below picks blue or green',
      `    balancer_by_lua_block { ${lib}.${u.sticky ? 'balance_sticky' : 'balance'}(${luaString(u.name)}) }`,
      ...(u.settings?.keepalive ? [`    keepalive ${u.settings.keepalive};`] : []),
      '}',
      '',
    ]),
  ].join('\n');
  const version = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const content = [
    '# Managed by flightdeck (nginx.driver: lua): weights live in a shared dict, not in this file.',
    `# config ${version}`,
    '',
    body,
    'server {',
    `    listen ${statusListen};`,
    '    access_log off;',
    '    client_body_buffer_size 1m;',
    '    client_max_body_size 1m;',
    `    location = /flightdeck/config { return 200 "${version}"; }`,
    `    location = /flightdeck/generation { content_by_lua_block { ngx.print(ngx.shared[${luaString(dict)}]:get("generation") or "none") } }`,
    `    location = /flightdeck/weights { content_by_lua_block { ${lib}.admin() } }`,
    '}',
    '',
  ].join('\n');
  return { content, version };
}

function luaString(s: string): string {
  return JSON.stringify(s); // names and paths are validated; JSON escaping is valid Lua here
}
