import { createHash } from 'node:crypto';

/**
 * nginx.driver: edge — nginx replicas anywhere in the cluster pull their weights from Redis.
 *
 * flightdeck writes the desired weights (the Lua driver's text format: a `generation` line, then
 * `<upstream> <host:port> <weight> <host:port> <weight>`) to one Redis key per edge group. Every edge
 * (an nginx with the file rendered here) reads that key on a timer, takes the weights into a shared
 * dict, resolves backend names (`tasks.<service>`) through DNS, and reports what it serves under a
 * key of its own that expires unless refreshed: a replica that stops reporting is no longer live. No
 * Docker socket, file share or inbound connection is needed on an edge node, only Redis.
 */

/** One upstream as the edge's static file knows it: its colours' addresses and connection settings. */
export interface EdgeUpstream {
  name: string;
  /** host:port of blue and green: the only addresses a weights line may name for this upstream. */
  addresses: string[];
  /** Idle keep-alive connections to the backends, per nginx worker (nginx's `keepalive`). */
  keepalive: number;
  /** Failed attempts within failTimeout after which an address is skipped for failTimeout. */
  maxFails: number;
  failTimeoutMs: number;
}

export interface EdgeRenderOptions {
  /** nginx.upstreamPrefix: names the shared dict, the Lua global and the edge group's Redis keys. */
  prefix: string;
  /** Redis key prefix of flightdeck (redis.prefix). */
  redisPrefix: string;
  redis: { host: string; port: number; user?: string; passwordFile?: string };
  /** DNS servers (ip or ip:port) for backend names and Redis's host (Docker's embedded DNS is 127.0.0.11). */
  resolvers: string[];
  syncIntervalMs: number;
  resolveIntervalMs: number;
  /** A report lives this long: a replica that has not reported for staleAfter is not live. */
  staleAfterMs: number;
  /** Requests that arrive before the first sync wait at most this long, then get 503. */
  holdMs: number;
  /** The replica's name is the first line of this file (/etc/hostname: the container's hostname). */
  nameFile: string;
  /** Where the edge answers /flightdeck/status and /flightdeck/ready (for health checks). */
  statusListen: string;
}

export function edgeKeys(redisPrefix: string, group: string) {
  const base = `${redisPrefix}:edge:${group}`;
  // An edge may read `desired` and write its own report and its name in `members` (the Redis ACL
  // of docs/install.md allows exactly that); `seen` is flightdeck's own.
  return {
    desired: `${base}:desired`,
    replicaPrefix: `${base}:replica:`,
    members: `${base}:members`,
    seen: `${base}:seen`,
  };
}

// The edge's Lua: a sync timer in worker 0 (Redis → shared dict, DNS → shared dict, report → Redis),
// a hold for requests that arrive before the first sync, and the balancer. The weight choice is the
// Lua driver's deterministic counter, so 90/10 is exactly 9 requests in 10; within a colour the
// addresses (all tasks of a dnsrr service) take turns, skipping an address that failed maxFails
// times within failTimeout (unless all have). A retry stays on the colour first chosen, so the split
// is what was asked even when a task fails.
const EDGE_LUA = `
    local lib = {}
    local dict = ngx.shared[DICT]
    local cache = {}
    local function is_ip(host) return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil end
    local function parse_line(line)
      local name, rest = line:match("^(%S+)%s+(.+)$")
      if not name then return nil, "malformed line: " .. line end
      local peers, total = {}, 0
      for addr, w in rest:gmatch("(%S+)%s+(%S+)") do
        local host, port = addr:match("^([%w%.%-]+):(%d+)$")
        local weight = tonumber(w)
        if not host or not weight or weight < 0 or weight > 100 or weight % 1 ~= 0 then
          return nil, "bad server in line: " .. line
        end
        peers[#peers + 1] = { addr = addr, host = host, port = tonumber(port), weight = weight, ip = is_ip(host) }
        total = total + weight
      end
      if #peers == 0 then return nil, "no servers in line: " .. line end
      return name, { peers = peers, total = total }
    end
    -- Checks a whole weights text: generation, { name = line }, and the upstreams this file lacks.
    local function parse(body)
      local generation, lines, unknown = nil, {}, {}
      for line in body:gmatch("[^\\n]+") do
        local g = line:match("^generation%s+(%S+)$")
        if g then
          generation = g
        else
          local name, parsed = parse_line(line)
          if not name then return nil, parsed end
          local u = UPSTREAMS[name]
          if not u then
            unknown[#unknown + 1] = name
          else
            for _, p in ipairs(parsed.peers) do
              if not u.known[p.addr] then
                return nil, "address " .. p.addr .. " is not configured for upstream " .. name
              end
            end
            lines[name] = line
          end
        end
      end
      if not generation then return nil, "no generation line" end
      return generation, lines, unknown
    end
    local function peers_of(name)
      local raw = dict:get("u:" .. name)
      if not raw then return nil end
      local c = cache[name]
      if not c or c.raw ~= raw then
        local _, parsed = parse_line(raw)
        c = { raw = raw, peers = parsed.peers, total = parsed.total }
        cache[name] = c
      end
      return c
    end
    local function addresses(peer)
      if peer.ip then return { peer.host } end
      local list = {}
      for ip in (dict:get("r:" .. peer.host) or ""):gmatch("%S+") do list[#list + 1] = ip end
      return list
    end

    -- Resolves every backend name the weights use; keeps the last answer when DNS fails.
    local function resolve(problems)
      local resolver = require("nginx.dns.resolver")
      local r, err = resolver:new({ nameservers = RESOLVERS, retrans = 2, timeout = 1000 })
      if not r then problems[#problems + 1] = "dns: " .. tostring(err); return end
      local done = {}
      for name in pairs(UPSTREAMS) do
        local c = peers_of(name)
        for _, p in ipairs(c and c.peers or {}) do
          if not p.ip and not done[p.host] then
            done[p.host] = true
            local answers, qerr = r:query(p.host, { qtype = r.TYPE_A })
            if not answers then
              problems[#problems + 1] = p.host .. ": " .. tostring(qerr)
            elseif answers.errcode then
              -- NXDOMAIN: the service has no task now (dnsrr answers only for running tasks).
              dict:set("r:" .. p.host, "")
            else
              local ips = {}
              for _, a in ipairs(answers) do if a.address then ips[#ips + 1] = a.address end end
              table.sort(ips)
              dict:set("r:" .. p.host, table.concat(ips, " "))
            end
          end
        end
      end
      dict:set("resolved_at", ngx.now())
    end

    -- What is wrong with what this replica serves now ("ok" if nothing).
    local function health(problems)
      if not dict:get("generation") then problems[#problems + 1] = "no weights taken yet" end
      for name in pairs(UPSTREAMS) do
        local c = peers_of(name)
        for _, p in ipairs(c and c.peers or {}) do
          if p.weight > 0 and #addresses(p) == 0 then
            problems[#problems + 1] = name .. ": " .. p.host .. " has no address"
          end
        end
      end
      if #problems == 0 then return "ok" end
      return table.concat(problems, "; ")
    end

    local function sync_once()
      local problems = {}
      local redis = require("nginx.redis")
      local red = redis:new()
      red:set_timeouts(1000, 1000, 1000)
      local ok, err = red:connect(REDIS.host, REDIS.port)
      if not ok then
        dict:set("health", "redis " .. REDIS.host .. ":" .. REDIS.port .. ": " .. tostring(err))
        return
      end
      if PASSWORD then
        if REDIS.user then ok, err = red:auth(REDIS.user, PASSWORD) else ok, err = red:auth(PASSWORD) end
        if not ok then
          dict:set("health", "redis auth: " .. tostring(err))
          red:close()
          return
        end
      end
      local body, gerr = red:get(KEYS.desired)
      if not body then
        problems[#problems + 1] = "redis: " .. tostring(gerr)
      elseif body == ngx.null then
        problems[#problems + 1] = "flightdeck has published no weights yet"
      elseif body ~= dict:get("raw") then
        local generation, lines, unknown = parse(body)
        if not generation then
          problems[#problems + 1] = "refused the published weights: " .. lines
        elseif #unknown > 0 then
          -- All or nothing: an edge serves a whole generation or keeps the one it has.
          problems[#problems + 1] = "refused generation " .. generation .. ": this edge's config has no upstream "
            .. table.concat(unknown, ", ") .. " (redeploy the edges with the current flightdeck edge-config)"
        else
          for name, line in pairs(lines) do dict:set("u:" .. name, line) end
          -- Names resolved before the generation counts as taken: a new colour's tasks are known first.
          resolve(problems)
          dict:set("raw", body)
          dict:set("generation", generation)
          dict:set("applied_at", ngx.now())
        end
      end
      if ngx.now() - (dict:get("resolved_at") or 0) >= RESOLVE_INTERVAL then resolve(problems) end
      local h = health(problems)
      dict:set("health", h)
      local report = "generation=" .. (dict:get("generation") or "none")
        .. " config=" .. CONFIG_VERSION
        .. " applied=" .. string.format("%d", (dict:get("applied_at") or 0) * 1000)
        .. " health=" .. h
      red:init_pipeline()
      red:set(KEYS.replica, report, "PX", STALE_MS)
      red:sadd(KEYS.members, NAME)
      local results, perr = red:commit_pipeline()
      if not results then ngx.log(ngx.ERR, "flightdeck edge: could not report to redis: ", perr) end
      red:set_keepalive(60000, 2)
    end

    local running = false
    function lib.sync(premature)
      if premature or running then return end
      running = true
      local ok, err = pcall(sync_once)
      running = false
      if not ok then
        dict:set("health", "sync failed: " .. tostring(err))
        ngx.log(ngx.ERR, "flightdeck edge: sync failed: ", err)
      end
    end

    function lib.start()
      if ngx.worker.id() ~= 0 then return end
      ngx.timer.at(0, lib.sync)
      ngx.timer.every(SYNC_INTERVAL, lib.sync)
    end

    -- A replica that has never synced holds requests until it has, so its first answer already
    -- follows the current weights (never a stale or default colour).
    function lib.hold()
      if dict:get("generation") then return end
      local waited = 0
      while waited < HOLD do
        ngx.sleep(0.02)
        waited = waited + 0.02
        if dict:get("generation") then return end
      end
      ngx.header["Retry-After"] = "1"
      return ngx.exit(503)
    end

    local function note_failure(name, addr)
      local u = UPSTREAMS[name]
      local n = dict:incr("fc:" .. addr, 1, 0, u.fail_timeout)
      if n and n >= u.max_fails then dict:set("down:" .. addr, true, u.fail_timeout) end
    end

    local function pick_colour(name)
      local c = peers_of(name)
      if not c or c.total <= 0 then return nil end
      local n = dict:incr("n:" .. name, 1, 0)
      local last
      for _, p in ipairs(c.peers) do
        if p.weight > 0 then
          if math.floor(n * p.weight / c.total) > math.floor((n - 1) * p.weight / c.total) then return p end
          last = p
        end
      end
      return last
    end

    local function pick_address(peer, tried)
      local list = addresses(peer)
      if #list == 0 then return nil end
      local start = dict:incr("rr:" .. peer.addr, 1, 0)
      local fallback
      for i = 0, #list - 1 do
        local ip = list[(start + i) % #list + 1]
        if not tried[ip] then
          if not dict:get("down:" .. ip .. ":" .. peer.port) then return ip end
          fallback = fallback or ip
        end
      end
      return fallback
    end

    function lib.balance(name)
      local balancer = require("ngx.balancer")
      local state = ngx.ctx.flightdeck
      if state then
        note_failure(name, state.ip .. ":" .. state.peer.port)
      else
        local peer = pick_colour(name)
        if not peer then
          ngx.log(ngx.ERR, "flightdeck edge: no weights for upstream ", name)
          return ngx.exit(503)
        end
        state = { peer = peer, tried = {} }
        ngx.ctx.flightdeck = state
        local n = #addresses(peer)
        if n > 1 then balancer.set_more_tries(math.min(n - 1, 2)) end
      end
      local ip = pick_address(state.peer, state.tried)
      if not ip then
        ngx.log(ngx.ERR, "flightdeck edge: ", state.peer.host, " has no address to send ", name, " to")
        return ngx.exit(502)
      end
      state.tried[ip] = true
      state.ip = ip
      local ok, err = balancer.set_current_peer(ip, state.peer.port)
      if not ok then
        ngx.log(ngx.ERR, "flightdeck edge: ", err)
        return ngx.exit(502)
      end
    end

    function lib.status()
      ngx.header["Content-Type"] = "text/plain"
      ngx.say("name ", NAME)
      ngx.say("generation ", dict:get("generation") or "none")
      ngx.say("config ", CONFIG_VERSION)
      ngx.say("health ", dict:get("health") or "starting")
    end

    function lib.ready()
      if dict:get("generation") then return ngx.say("ready ", dict:get("generation")) end
      ngx.status = 503
      ngx.say("not synced yet: ", dict:get("health") or "starting")
    end`;

/**
 * The edge's nginx file (include it in the `http` block): the Lua above, one upstream per service
 * with its keep-alive pool, and a status server. Returns the content and its version, which each
 * replica reports, so flightdeck can name an edge that runs an older file.
 */
export function renderEdgeConfig(
  upstreams: EdgeUpstream[],
  opts: EdgeRenderOptions,
): { content: string; version: string } {
  const dict = `${opts.prefix}_edge`;
  const lib = `${opts.prefix}_edge_lua`;
  const keys = edgeKeys(opts.redisPrefix, opts.prefix);
  const table = upstreams
    .map(
      (u) =>
        `[${lua(u.name)}] = { known = { ${u.addresses.map((a) => `[${lua(a)}] = true`).join(', ')} }, max_fails = ${u.maxFails}, fail_timeout = ${seconds(u.failTimeoutMs)} }`,
    )
    .join(',\n      ');
  const body = [
    `lua_shared_dict ${dict} 4m;`,
    // Backend names and Redis's host are looked up through these (nginx has no resolver by default).
    `resolver ${opts.resolvers.join(' ')} valid=1s ipv6=off;`,
    'init_by_lua_block {',
    `    local DICT = ${lua(dict)}`,
    `    local UPSTREAMS = {\n      ${table}\n    }`,
    `    local REDIS = { host = ${lua(opts.redis.host)}, port = ${opts.redis.port}${opts.redis.user ? `, user = ${lua(opts.redis.user)}` : ''} }`,
    `    local RESOLVERS = { ${opts.resolvers.map(luaNameserver).join(', ')} }`,
    `    local SYNC_INTERVAL = ${seconds(opts.syncIntervalMs)}`,
    `    local RESOLVE_INTERVAL = ${seconds(opts.resolveIntervalMs)}`,
    `    local STALE_MS = ${opts.staleAfterMs}`,
    `    local HOLD = ${seconds(opts.holdMs)}`,
    // Read once by the master (as root, before workers drop privileges): the password and the name.
    '    local function first_line(path)',
    '      local f = io.open(path, "r")',
    '      if not f then return nil end',
    '      local line = f:read("*l")',
    '      f:close()',
    '      return line and line:match("^%s*(.-)%s*$") or nil',
    '    end',
    `    local PASSWORD = ${opts.redis.passwordFile ? `first_line(${lua(opts.redis.passwordFile)})` : 'nil'}`,
    `    local NAME = first_line(${lua(opts.nameFile)}) or "unnamed"`,
    `    local KEYS = { desired = ${lua(keys.desired)}, replica = ${lua(keys.replicaPrefix)} .. NAME, members = ${lua(keys.members)} }`,
    '    local CONFIG_VERSION = "@VERSION@"',
    EDGE_LUA,
    `    ${lib} = lib`,
    '}',
    `init_worker_by_lua_block { ${lib}.start() }`,
    // Inherited by every location without an access_by_lua of its own.
    `access_by_lua_block { ${lib}.hold() }`,
    '',
    ...upstreams.flatMap((u) => [
      `upstream ${u.name} {`,
      '    server 0.0.0.1; # placeholder: the balancer picks the colour and the task',
      `    balancer_by_lua_block { ${lib}.balance(${lua(u.name)}) }`,
      ...(u.keepalive > 0 ? [`    keepalive ${u.keepalive};`] : []),
      '}',
      '',
    ]),
    'server {',
    `    listen ${opts.statusListen};`,
    '    access_log off;',
    '    access_by_lua_block { return } # answers before the first sync too',
    `    location = /flightdeck/status { content_by_lua_block { ${lib}.status() } }`,
    `    location = /flightdeck/ready { content_by_lua_block { ${lib}.ready() } }`,
    '}',
    '',
  ].join('\n');
  const version = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const content = [
    '# Managed by flightdeck (nginx.driver: edge): render it with `flightdeck edge-config`.',
    '# The weights come from Redis; this file changes only when services or edge settings do.',
    `# config ${version}`,
    '',
    body.replace('@VERSION@', version),
  ].join('\n');
  return { content, version };
}

/** "10.0.0.2" or "10.0.0.2:5353" as lua-resty-dns takes a nameserver. */
function luaNameserver(server: string): string {
  const m = /^(.+):(\d+)$/.exec(server);
  return m ? `{ ${lua(m[1] as string)}, ${m[2]} }` : lua(server);
}

function seconds(ms: number): string {
  return String(ms / 1000);
}

function lua(s: string): string {
  return JSON.stringify(s); // names, paths and hosts are validated; JSON escaping is valid Lua here
}

/**
 * The Redis ACL rule of an edge group's user, without its password (append `>password` or
 * `#<sha256 hex>`): read the published weights, write its own report and its name, nothing else.
 * With it, an edge (the internet-facing part) cannot queue a command or publish weights.
 */
export function edgeAclRule(redisPrefix: string, group: string, user: string): string {
  const k = edgeKeys(redisPrefix, group);
  return [
    `user ${user} on resetkeys`,
    `%R~${k.desired} %W~${k.replicaPrefix}* %W~${k.members}`,
    'resetchannels -@all +get +set +sadd +ping',
  ].join(' ');
}
