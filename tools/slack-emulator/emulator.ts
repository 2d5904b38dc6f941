import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { blocksError } from './block-kit.js';
import { renderBlocks } from './render.js';
import { TokenBucket } from './token-bucket.js';

export interface EmulatedUser {
  id: string;
  name: string;
  realName?: string;
  tz?: string;
}
export interface EmulatedChannel {
  id: string;
  name: string;
}
/** A user group (subteam): `usergroups.users.list` answers with its members' IDs. */
export interface EmulatedUserGroup {
  id: string;
  handle: string;
  users: string[];
  /** A disabled group is listed only with include_disabled. */
  disabled?: boolean;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  user: string;
  text: string;
  blocks?: unknown[];
  /** Legacy attachments, as Alertmanager's own Slack receiver sends them. */
  attachments?: unknown[];
  /** Message metadata (`event_type`, `event_payload`), returned by history with include_all_metadata. */
  metadata?: { event_type: string; event_payload?: Record<string, unknown> };
  edits: number;
  /** How it arrived: chat.postMessage, response_url or the ack of a command. */
  via: string;
}

export interface EphemeralMessage {
  channel: string;
  user: string;
  text: string;
  blocks?: unknown[];
  via: 'ack' | 'response_url' | 'chat.postEphemeral';
  at: number;
}

export interface ApiCall {
  method: string;
  status: number;
  error?: string;
  at: number;
  channel?: string;
}

export interface EmulatorOptions {
  botToken?: string;
  /** App-level token accepted by apps.connections.open (Socket Mode). */
  appToken?: string;
  users?: EmulatedUser[];
  channels?: EmulatedChannel[];
  userGroups?: EmulatedUserGroup[];
  /** Slack's limits; on by default. */
  rateLimits?: boolean;
  /** chat.postMessage per channel: about 1/s with short bursts. */
  postMessagePerSecond?: number;
  postMessageBurst?: number;
  now?: () => number;
  /** Address to listen on (default 127.0.0.1); the multi-node suite uses its test bridge's host side. */
  host?: string;
}

export interface Fault {
  status: number;
  /** How many calls fail (Infinity with `forMs` for a time window). */
  count: number;
  /** Seconds in the Retry-After header; for a 429 window, defaults to what is left of it. */
  retryAfterSec?: number;
  delayMs?: number;
  /** Calls fail only for this long after the fault is injected (a 429 storm, an outage). */
  forMs?: number;
  /**
   * A timeout: no answer at all, the connection is dropped after `delayMs` (default 30 s).
   * `request`: Slack never got the call; `response`: Slack did it and the answer was lost.
   */
  hang?: 'request' | 'response';
}

type Json = Record<string, any>;

const RESPONSE_URL_USES = 5;
const RESPONSE_URL_TTL_MS = 30 * 60_000;
const TRIGGER_TTL_MS = 3_000;
/**
 * Calls arriving this soon after a 429 was answered were already in flight (concurrent sends). On a
 * busy machine this process may handle a request long after it arrived: the allowance grows by the
 * event-loop lag seen lately (a call handled 200 ms late was not sent after the 429 it follows).
 */
const IN_FLIGHT_MS = 50;
const LAG_TICK_MS = 10;

/** Per-method tiers (requests per minute), from Slack's rate-limit documentation. */
const TIERS: Record<string, number> = {
  'auth.test': 600,
  'chat.update': 50,
  'chat.postEphemeral': 100,
  'views.publish': 100,
  'views.open': 100,
  'users.info': 100,
  'usergroups.users.list': 20,
  'conversations.info': 50,
  'conversations.history': 50,
  'conversations.replies': 50,
};

export const DEFAULT_USERS: EmulatedUser[] = [
  { id: 'U0LEAD', name: 'lena', realName: 'Lena Lead', tz: 'Europe/London' },
  { id: 'U0DEV', name: 'dev', realName: 'Dana Developer', tz: 'Europe/London' },
  { id: 'U0ONCALL', name: 'oncall', realName: 'Omar On-call', tz: 'Europe/London' },
  { id: 'U0GUEST', name: 'guest', realName: 'Gus Guest', tz: 'America/New_York' },
];
export const DEFAULT_CHANNELS: EmulatedChannel[] = [
  { id: 'C0RELEASES', name: 'releases' },
  { id: 'C0ALERTS', name: 'alerts' },
  { id: 'C0ONCALL', name: 'oncall' },
  { id: 'C0PROD', name: 'prod-releases' },
];

/**
 * A local Slack: the Web API subset flightdeck calls, response_url endpoints with Slack's limits,
 * and every message kept for inspection. Bolt's WebClient is pointed at `apiUrl`.
 */
export class SlackEmulator extends EventEmitter {
  readonly botToken: string;
  readonly teamId = 'T0FLIGHTDECK';
  readonly botId = 'B0FLIGHTDECK';
  readonly botUserId = 'U0FLIGHTDECKBOT';
  readonly messages: StoredMessage[] = [];
  readonly ephemerals: EphemeralMessage[] = [];
  readonly calls: ApiCall[] = [];
  readonly homeViews = new Map<string, Json>();
  readonly openedViews: Json[] = [];
  readonly users: Map<string, EmulatedUser>;
  readonly channels: Map<string, EmulatedChannel>;
  /** Change members at any time (tests): the next usergroups.users.list sees them. */
  readonly userGroups: Map<string, EmulatedUserGroup>;
  rateLimits: boolean;
  private readonly now: () => number;
  private readonly postBuckets = new Map<string, TokenBucket>();
  /** When a 429 told a caller to wait, per channel (or method): calls before then are violations. */
  private readonly retryAfterUntil = new Map<string, number>();
  /** When that 429 was answered: calls already on their way then are not violations. */
  private readonly retryAfterIssued = new Map<string, number>();
  /** Calls that came back before the Retry-After Slack gave had passed. */
  retryAfterViolations = 0;
  private readonly tierBuckets = new Map<string, TokenBucket>();
  private readonly responseUrls = new Map<
    string,
    {
      uses: number;
      createdAt: number;
      channel: string;
      user: string;
      source?: { channel: string; ts: string };
    }
  >();
  private readonly triggers = new Map<string, number>();
  private readonly faults = new Map<string, Fault & { until?: number }>();
  private tsCounter = 0;
  private server?: Server;
  private wss?: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  private readonly pendingAcks = new Map<string, (payload: Json | undefined) => void>();
  private envelopeCounter = 0;
  readonly appToken: string;
  port = 0;

  constructor(private readonly opts: EmulatorOptions = {}) {
    super();
    this.botToken = opts.botToken ?? 'xoxb-flightdeck-emulator';
    this.appToken = opts.appToken ?? 'xapp-1-flightdeck-emulator';
    this.users = new Map((opts.users ?? DEFAULT_USERS).map((u) => [u.id, u]));
    this.channels = new Map((opts.channels ?? DEFAULT_CHANNELS).map((c) => [c.id, c]));
    this.userGroups = new Map((opts.userGroups ?? []).map((g) => [g.id, g]));
    this.rateLimits = opts.rateLimits ?? true;
    this.now = opts.now ?? Date.now;
  }

  get url(): string {
    return `http://${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }
  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  async start(port = 0): Promise<this> {
    let last = performance.now();
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      const late = now - last - LAG_TICK_MS;
      last = now;
      if (late > 5) this.lags.push({ at: now, ms: late });
      if (this.lags.length > 200) this.lags.splice(0, this.lags.length - 200);
    }, LAG_TICK_MS);
    this.lagTimer.unref();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) json(res, 500, { ok: false, error: 'internal_error', detail: String(err) });
      });
    });
    // Socket Mode: apps.connections.open hands out ws://…/socket URLs served here.
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      if (!(req.url ?? '').startsWith('/socket')) {
        socket.destroy();
        return;
      }
      this.wss?.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
    });
    await new Promise<void>((resolve) =>
      this.server?.listen(port, this.opts.host ?? '127.0.0.1', () => resolve()),
    );
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    return this;
  }

  /** Whether an app is connected over Socket Mode. */
  get socketConnected(): boolean {
    return [...this.sockets].some((s) => s.readyState === 1);
  }

  /**
   * Sends an envelope to the connected app as Slack's Socket Mode does and resolves with the ack's
   * payload, or undefined if no ack came within `deadlineMs` (Slack's 3 seconds).
   */
  deliverOverSocket(
    type: 'slash_commands' | 'interactive',
    payload: Json,
    deadlineMs = 3_000,
  ): Promise<Json | undefined | 'no-ack'> {
    const ws = [...this.sockets].find((s) => s.readyState === 1);
    if (!ws) return Promise.reject(new Error('no Socket Mode connection'));
    this.envelopeCounter += 1;
    const envelopeId = `env-${Date.now()}-${this.envelopeCounter}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(envelopeId);
        resolve('no-ack');
      }, deadlineMs);
      this.pendingAcks.set(envelopeId, (ack) => {
        clearTimeout(timer);
        resolve(ack);
      });
      ws.send(
        JSON.stringify({
          envelope_id: envelopeId,
          type,
          payload,
          accepts_response_payload: true,
          retry_attempt: 0,
          retry_reason: '',
        }),
      );
    });
  }

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    const pinger = setInterval(() => ws.readyState === 1 && ws.ping(), 5_000);
    ws.on('message', (data) => {
      try {
        const msg = JSON.parse(String(data)) as Json;
        this.pendingAcks.get(msg.envelope_id)?.(msg.payload);
        this.pendingAcks.delete(msg.envelope_id);
      } catch {
        /* not JSON: ignore as Slack would */
      }
    });
    ws.on('close', () => {
      clearInterval(pinger);
      this.sockets.delete(ws);
    });
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: this.sockets.size,
        connection_info: { app_id: 'A0FLIGHTDECK' },
        debug_info: { host: 'emulator' },
      }),
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.lagTimer);
    if (!this.server) return;
    for (const ws of this.sockets) ws.terminate();
    this.wss?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** Make the next `count` calls of a method (or `response_url`) fail with `status`. */
  injectFault(method: string, fault: Fault): void {
    this.faults.set(method, {
      ...fault,
      until: fault.forMs !== undefined ? this.now() + fault.forMs : undefined,
    });
  }

  /** The fault a call meets now, if any (and counts it). */
  private takeFault(method: string): (Fault & { until?: number }) | undefined {
    const fault = this.faults.get(method);
    if (!fault || fault.count <= 0 || (fault.until !== undefined && this.now() >= fault.until))
      return undefined;
    fault.count -= 1;
    return fault;
  }

  // ---- what tests and the demo read ----
  channelMessages(channel: string): StoredMessage[] {
    return this.messages.filter((m) => m.channel === channel && !m.threadTs);
  }
  threadReplies(channel: string, ts: string): StoredMessage[] {
    return this.messages.filter((m) => m.channel === channel && m.threadTs === ts);
  }
  ephemeralsFor(user: string, channel?: string): EphemeralMessage[] {
    return this.ephemerals.filter((e) => e.user === user && (!channel || e.channel === channel));
  }
  callCount(method: string, status?: number): number {
    return this.calls.filter((c) => c.method === method && (status === undefined || c.status === status))
      .length;
  }

  // ---- driver hooks ----
  /** A response_url as Slack hands out with each command or interaction. */
  issueResponseUrl(channel: string, user: string, source?: { channel: string; ts: string }): string {
    const id = randomBytes(12).toString('hex');
    this.responseUrls.set(id, { uses: 0, createdAt: this.now(), channel, user, source });
    return `${this.url}/response/${id}`;
  }
  issueTriggerId(): string {
    const id = `${Date.now()}.${randomBytes(6).toString('hex')}`;
    this.triggers.set(id, this.now());
    return id;
  }
  /** What Slack does with an ack body: shows it to the user (or the channel if in_channel). */
  recordAck(channel: string, user: string, body: Json | undefined): void {
    if (!body || (!body.text && !body.blocks)) return;
    if (body.response_type === 'in_channel') this.storeMessage(channel, body, 'ack');
    else this.storeEphemeral({ channel, user, text: body.text ?? '', blocks: body.blocks, via: 'ack' });
  }
  noteInbound(kind: 'command' | 'click', detail: Json): void {
    this.emit('transcript', { kind, ...detail });
  }

  // ---- HTTP ----
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = await readBody(req);
    if (url.pathname.startsWith('/api/')) return this.api(url.pathname.slice(5), req, body, res);
    if (url.pathname.startsWith('/response/')) return this.responseUrl(url.pathname.slice(10), body, res);
    if (url.pathname === '/_emulator/messages') {
      const channel = url.searchParams.get('channel');
      return json(res, 200, {
        messages: channel ? this.messages.filter((m) => m.channel === channel) : this.messages,
        ephemerals: this.ephemerals,
      });
    }
    if (url.pathname === '/_emulator/calls') return json(res, 200, { calls: this.calls });
    json(res, 404, { ok: false, error: 'unknown_url' });
  }

  private async api(method: string, req: IncomingMessage, raw: string, res: ServerResponse): Promise<void> {
    const args = parseArgs(req.headers['content-type'] ?? '', raw);
    const record = (status: number, error?: string) =>
      this.calls.push({
        method,
        status,
        error,
        at: this.now(),
        channel: typeof args.channel === 'string' ? args.channel : undefined,
      });

    const scope = method === 'chat.postMessage' ? `post:${String(args.channel ?? '')}` : method;
    const fault = this.takeFault(method);
    if (fault) {
      if (this.rateLimits && this.violatesRetryAfter(scope)) this.retryAfterViolations += 1;
      if (fault.hang) {
        // What a client sees as a timeout; with 'response' Slack did the call all the same.
        if (fault.hang === 'response') this.dispatch(method, args);
        record(0, fault.hang === 'response' ? 'timeout: done, answer lost' : 'timeout: not done');
        await new Promise((r) => setTimeout(r, fault.delayMs ?? 30_000));
        res.destroy();
        return;
      }
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      record(fault.status, 'injected');
      const retryAfter =
        fault.retryAfterSec ??
        (fault.status === 429 && fault.until !== undefined
          ? Math.max(1, Math.ceil((fault.until - this.now()) / 1000))
          : undefined);
      // An injected 429 binds callers to its Retry-After like a real one.
      if (fault.status === 429 && retryAfter) this.noteRetryAfter(scope, retryAfter);
      const headers: Record<string, string> = retryAfter ? { 'retry-after': String(retryAfter) } : {};
      return json(
        res,
        fault.status,
        { ok: false, error: fault.status === 429 ? 'ratelimited' : 'internal_error' },
        headers,
      );
    }

    const token = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '') || args.token;
    if (!token) {
      record(200, 'not_authed');
      return json(res, 200, { ok: false, error: 'not_authed' });
    }
    if (method === 'apps.connections.open') {
      // The one method that takes the app-level token.
      if (token !== this.appToken) {
        record(200, 'invalid_auth');
        return json(res, 200, {
          ok: false,
          error: token.startsWith('xoxb-') ? 'not_allowed_token_type' : 'invalid_auth',
        });
      }
      record(200);
      return json(res, 200, {
        ok: true,
        url: `ws://${this.opts.host ?? '127.0.0.1'}:${this.port}/socket?ticket=${randomBytes(8).toString('hex')}`,
      });
    }
    if (token !== this.botToken) {
      record(200, 'invalid_auth');
      return json(res, 200, { ok: false, error: 'invalid_auth' });
    }

    if (this.rateLimits) {
      if (this.violatesRetryAfter(scope)) this.retryAfterViolations += 1;
      const limited = this.rateLimit(method, args);
      if (limited) {
        this.noteRetryAfter(scope, limited);
        record(429, 'ratelimited');
        return json(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(limited) });
      }
    }

    const result = this.dispatch(method, args);
    record(200, result.ok ? undefined : String(result.error));
    json(res, 200, result);
  }

  private noteRetryAfter(scope: string, seconds: number): void {
    this.retryAfterUntil.set(scope, this.now() + seconds * 1_000);
    this.retryAfterIssued.set(scope, this.now());
  }

  /** A call inside a Retry-After window, sent after the caller could have heard of it. */
  private violatesRetryAfter(scope: string): boolean {
    const t = this.now();
    return (
      t < (this.retryAfterUntil.get(scope) ?? 0) &&
      t > (this.retryAfterIssued.get(scope) ?? 0) + IN_FLIGHT_MS + this.recentLag()
    );
  }

  /** The longest event-loop delay of the last two seconds (a timer that should tick every 10 ms). */
  private recentLag(): number {
    const since = performance.now() - 2_000;
    return Math.max(0, ...this.lags.filter((l) => l.at >= since).map((l) => l.ms));
  }
  private lags: Array<{ at: number; ms: number }> = [];
  private lagTimer?: NodeJS.Timeout;

  private rateLimit(method: string, args: Json): number | undefined {
    if (method === 'chat.postMessage') {
      const channel = String(args.channel ?? '');
      let bucket = this.postBuckets.get(channel);
      if (!bucket) {
        bucket = new TokenBucket(
          this.opts.postMessageBurst ?? 3,
          this.opts.postMessagePerSecond ?? 1,
          this.now,
        );
        this.postBuckets.set(channel, bucket);
      }
      const r = bucket.take();
      return r.ok ? undefined : r.retryAfterSec;
    }
    const perMinute = TIERS[method];
    if (!perMinute) return undefined;
    let bucket = this.tierBuckets.get(method);
    if (!bucket) {
      bucket = new TokenBucket(perMinute, perMinute / 60, this.now);
      this.tierBuckets.set(method, bucket);
    }
    const r = bucket.take();
    return r.ok ? undefined : r.retryAfterSec;
  }

  private dispatch(method: string, a: Json): Json {
    switch (method) {
      case 'api.test':
        return { ok: true, args: a };
      case 'auth.test':
        return {
          ok: true,
          url: 'https://flightdeck-emulator.slack.com/',
          team: 'flightdeck',
          user: 'flightdeck',
          team_id: this.teamId,
          user_id: this.botUserId,
          bot_id: this.botId,
        };
      case 'chat.postMessage': {
        const err = this.checkChannel(a.channel) ?? checkContent(a);
        if (err) return { ok: false, error: err };
        if (a.thread_ts && !this.find(a.channel, a.thread_ts))
          return { ok: false, error: 'thread_not_found' };
        const msg = this.storeMessage(a.channel, a, 'chat.postMessage');
        return {
          ok: true,
          channel: msg.channel,
          ts: msg.ts,
          message: { type: 'message', text: msg.text, ts: msg.ts, bot_id: this.botId },
        };
      }
      case 'chat.update': {
        const err =
          this.checkChannel(a.channel) ?? (a.ts ? undefined : 'message_not_found') ?? checkContent(a);
        if (err) return { ok: false, error: err };
        const msg = this.find(a.channel, a.ts);
        if (!msg) return { ok: false, error: 'message_not_found' };
        if (msg.user !== this.botUserId) return { ok: false, error: 'cant_update_message' };
        if (a.text !== undefined) msg.text = String(a.text);
        if (a.blocks !== undefined) msg.blocks = a.blocks;
        msg.edits += 1;
        this.emit('transcript', {
          kind: 'update',
          channel: msg.channel,
          ts: msg.ts,
          text: renderBlocks(msg.blocks, msg.text),
        });
        return { ok: true, channel: msg.channel, ts: msg.ts, text: msg.text };
      }
      case 'chat.postEphemeral': {
        const err =
          this.checkChannel(a.channel) ??
          (this.users.has(a.user) ? undefined : 'user_not_found') ??
          checkContent(a);
        if (err) return { ok: false, error: err };
        this.storeEphemeral({
          channel: a.channel,
          user: a.user,
          text: a.text ?? '',
          blocks: a.blocks,
          via: 'chat.postEphemeral',
        });
        return { ok: true, message_ts: this.nextTs() };
      }
      case 'views.publish': {
        if (!this.users.has(a.user_id)) return { ok: false, error: 'user_not_found' };
        if (a.view?.type !== 'home') return { ok: false, error: 'invalid_arguments' };
        this.homeViews.set(a.user_id, a.view);
        return { ok: true, view: { id: `V${this.nextTs().replace('.', '')}`, ...a.view } };
      }
      case 'views.open': {
        const issued = this.triggers.get(a.trigger_id);
        if (issued === undefined) return { ok: false, error: 'invalid_trigger_id' };
        if (this.now() - issued > TRIGGER_TTL_MS) return { ok: false, error: 'expired_trigger_id' };
        this.triggers.delete(a.trigger_id);
        if (a.view?.type !== 'modal') return { ok: false, error: 'invalid_arguments' };
        this.openedViews.push(a.view);
        return { ok: true, view: { id: `V${this.nextTs().replace('.', '')}`, ...a.view } };
      }
      case 'users.info': {
        const u = this.users.get(a.user);
        if (!u) return { ok: false, error: 'user_not_found' };
        return {
          ok: true,
          user: {
            id: u.id,
            name: u.name,
            real_name: u.realName ?? u.name,
            tz: u.tz ?? 'UTC',
            is_bot: false,
            profile: { display_name: u.name, real_name: u.realName ?? u.name },
          },
        };
      }
      case 'usergroups.users.list': {
        // docs.slack.dev/reference/methods/usergroups.users.list: { ok, users: [IDs] }.
        if (!a.usergroup) return { ok: false, error: 'missing_argument' };
        const g = this.userGroups.get(a.usergroup);
        if (!g || (g.disabled && a.include_disabled !== true && a.include_disabled !== 'true'))
          return { ok: false, error: 'no_such_subteam' };
        return { ok: true, users: [...g.users] };
      }
      case 'conversations.history': {
        const err = this.checkChannel(a.channel);
        if (err) return { ok: false, error: err };
        // Newest first: top-level messages (thread parents included, replies not).
        const all = this.messages.filter((m) => m.channel === a.channel && !m.threadTs).reverse();
        return this.page(all, a);
      }
      case 'conversations.replies': {
        const err = this.checkChannel(a.channel);
        if (err) return { ok: false, error: err };
        const parent = a.ts ? this.find(a.channel, a.ts) : undefined;
        if (!parent) return { ok: false, error: 'thread_not_found' };
        // Oldest first: the parent, then its replies.
        return this.page([parent, ...this.threadReplies(a.channel, a.ts)], a);
      }
      case 'conversations.info': {
        const c = this.channels.get(a.channel);
        if (!c) return { ok: false, error: 'channel_not_found' };
        return { ok: true, channel: { id: c.id, name: c.name, is_channel: true, is_member: true } };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private responseUrl(id: string, raw: string, res: ServerResponse): void {
    const fault = this.takeFault('response_url');
    if (fault) {
      this.calls.push({ method: 'response_url', status: fault.status, error: 'injected', at: this.now() });
      return json(res, fault.status, { ok: false, error: 'injected' });
    }
    const entry = this.responseUrls.get(id);
    const fail = (error: string) => {
      this.calls.push({ method: 'response_url', status: 404, error, at: this.now() });
      json(res, 404, { ok: false, error });
    };
    if (!entry) return fail('invalid_url');
    if (this.now() - entry.createdAt > RESPONSE_URL_TTL_MS) return fail('expired_url');
    if (entry.uses >= RESPONSE_URL_USES) return fail('used_url');
    let body: Json;
    try {
      body = JSON.parse(raw);
    } catch {
      this.calls.push({ method: 'response_url', status: 400, error: 'invalid_json', at: this.now() });
      return json(res, 400, { ok: false, error: 'invalid_json' });
    }
    entry.uses += 1;
    this.calls.push({ method: 'response_url', status: 200, at: this.now(), channel: entry.channel });
    if (body.delete_original && entry.source) {
      const i = this.messages.findIndex(
        (m) => m.channel === entry.source?.channel && m.ts === entry.source?.ts,
      );
      if (i >= 0) this.messages.splice(i, 1);
    } else if (body.replace_original && entry.source) {
      const msg = this.find(entry.source.channel, entry.source.ts);
      if (msg) {
        msg.text = body.text ?? msg.text;
        msg.blocks = body.blocks;
        msg.edits += 1;
        this.emit('transcript', {
          kind: 'update',
          channel: msg.channel,
          ts: msg.ts,
          text: renderBlocks(msg.blocks, msg.text),
        });
      }
    } else if (body.response_type === 'in_channel') {
      this.storeMessage(entry.channel, body, 'response_url');
    } else {
      this.storeEphemeral({
        channel: entry.channel,
        user: entry.user,
        text: body.text ?? '',
        blocks: body.blocks,
        via: 'response_url',
      });
    }
    json(res, 200, { ok: true });
  }

  private storeMessage(channel: string, a: Json, via: string): StoredMessage {
    const msg: StoredMessage = {
      channel,
      ts: this.nextTs(),
      threadTs: a.thread_ts ? String(a.thread_ts) : undefined,
      user: this.botUserId,
      text: String(a.text ?? ''),
      blocks: a.blocks,
      attachments: Array.isArray(a.attachments) ? a.attachments : undefined,
      metadata:
        a.metadata && typeof a.metadata === 'object' && typeof a.metadata.event_type === 'string'
          ? a.metadata
          : undefined,
      edits: 0,
      via,
    };
    this.messages.push(msg);
    this.emit('transcript', {
      kind: 'message',
      channel,
      ts: msg.ts,
      threadTs: msg.threadTs,
      text: renderBlocks(msg.blocks, msg.text),
    });
    return msg;
  }

  private storeEphemeral(e: Omit<EphemeralMessage, 'at'>): void {
    const full = { ...e, at: this.now() };
    this.ephemerals.push(full);
    this.emit('transcript', {
      kind: 'ephemeral',
      channel: e.channel,
      user: e.user,
      text: renderBlocks(e.blocks, e.text),
    });
  }

  /** One page of messages as history/replies return them: time bounds, limit, cursor, metadata. */
  private page(all: StoredMessage[], a: Json): Json {
    const ts = (v: unknown) => (v === undefined || v === '' ? undefined : Number(v));
    const oldest = ts(a.oldest);
    const latest = ts(a.latest);
    const inclusive = a.inclusive === true || a.inclusive === 'true';
    const inRange = all.filter((m) => {
      const t = Number(m.ts);
      if (oldest !== undefined && (inclusive ? t < oldest : t <= oldest)) return false;
      if (latest !== undefined && (inclusive ? t > latest : t >= latest)) return false;
      return true;
    });
    const limit = Math.min(Math.max(Number(a.limit) || 100, 1), 999);
    const start = a.cursor ? Number(Buffer.from(String(a.cursor), 'base64').toString()) || 0 : 0;
    const slice = inRange.slice(start, start + limit);
    const more = start + limit < inRange.length;
    const withMetadata = a.include_all_metadata === true || a.include_all_metadata === 'true';
    return {
      ok: true,
      messages: slice.map((m) => ({
        type: 'message',
        ts: m.ts,
        user: m.user,
        bot_id: this.botId,
        text: m.text,
        ...(m.blocks ? { blocks: m.blocks } : {}),
        ...(m.threadTs ? { thread_ts: m.threadTs } : {}),
        ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
      })),
      has_more: more,
      response_metadata: { next_cursor: more ? Buffer.from(String(start + limit)).toString('base64') : '' },
    };
  }

  private find(channel: string, ts: string): StoredMessage | undefined {
    return this.messages.find((m) => m.channel === channel && m.ts === ts);
  }

  private checkChannel(channel: unknown): string | undefined {
    return typeof channel === 'string' && this.channels.has(channel) ? undefined : 'channel_not_found';
  }

  private nextTs(): string {
    this.tsCounter += 1;
    return `${Math.floor(this.now() / 1000)}.${String(this.tsCounter).padStart(6, '0')}`;
  }
}

function checkContent(a: Json): string | undefined {
  // Slack wants at least one of text, blocks or attachments.
  if (!a.text && !a.blocks && !a.attachments) return 'no_text';
  if (a.blocks !== undefined && !Array.isArray(a.blocks)) return 'invalid_blocks';
  if (Array.isArray(a.blocks) && blocksError(a.blocks)) return 'invalid_blocks';
  if (typeof a.text === 'string' && a.text.length > 40_000) return 'msg_too_long';
  return undefined;
}

/** WebClient sends form fields with objects as JSON strings; some callers send JSON. */
function parseArgs(contentType: string, raw: string): Json {
  if (contentType.includes('application/json')) {
    try {
      return JSON.parse(raw || '{}');
    } catch {
      return {};
    }
  }
  const out: Json = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if (
      ['blocks', 'view', 'attachments', 'metadata'].includes(k) &&
      (v.startsWith('[') || v.startsWith('{'))
    ) {
      try {
        out[k] = JSON.parse(v);
        continue;
      } catch {
        /* keep the string */
      }
    }
    out[k] = v;
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
