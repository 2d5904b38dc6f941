import type { SlackEmulator } from './emulator.js';
import { signRequest } from './sign.js';

export interface SendOptions {
  /** Deliver over Socket Mode instead of HTTP (the app must be connected). */
  socket?: boolean;
  user?: string;
  channel?: string;
  retryNum?: number;
  /** Seconds to add to "now" when signing (negative = an old request). */
  timestampSkewSec?: number;
  /** Sign with another secret (a forgery). */
  signWith?: string;
  /** Send without signature headers at all. */
  unsigned?: boolean;
  /** The body is JSON (Events API) rather than a form. */
  json?: boolean;
}

export interface AckRecord {
  kind: 'command' | 'block_actions';
  label: string;
  status: number;
  ms: number;
  timedOut: boolean;
  body?: Record<string, any>;
}

export interface SentRequest extends AckRecord {
  rawBody: string;
  responseUrl: string;
  triggerId: string;
  user: string;
  channel: string;
}

const ACK_DEADLINE_MS = 3_000;

/**
 * Plays Slack's part towards the app: form-encoded slash commands and `payload=` interactions,
 * v0-signed, with Slack's 3-second ack deadline; ack bodies are shown to the user as Slack would.
 */
export class SlackDriver {
  readonly acks: AckRecord[] = [];
  constructor(
    private readonly emulator: SlackEmulator,
    private readonly appUrl: string,
    private readonly signingSecret: string,
    private readonly defaults: { user: string; channel: string } = { user: 'U0DEV', channel: 'C0RELEASES' },
  ) {}

  async command(command: string, text: string, opts: SendOptions = {}): Promise<SentRequest> {
    const user = opts.user ?? this.defaults.user;
    const channel = opts.channel ?? this.defaults.channel;
    const responseUrl = this.emulator.issueResponseUrl(channel, user);
    const triggerId = this.emulator.issueTriggerId();
    const u = this.emulator.users.get(user);
    const c = this.emulator.channels.get(channel);
    const form = new URLSearchParams({
      token: 'deprecated-verification-token',
      team_id: this.emulator.teamId,
      team_domain: 'flightdeck',
      channel_id: channel,
      channel_name: c?.name ?? 'unknown',
      user_id: user,
      user_name: u?.name ?? user,
      command: command.startsWith('/') ? command : `/${command}`,
      text,
      api_app_id: 'A0FLIGHTDECK',
      is_enterprise_install: 'false',
      response_url: responseUrl,
      trigger_id: triggerId,
    });
    this.emulator.noteInbound('command', { user, channel, text: `${form.get('command')} ${text}` });
    const rawBody = form.toString();
    const ack = opts.socket
      ? await this.overSocket(
          'slash_commands',
          Object.fromEntries(form),
          'command',
          `${form.get('command')} ${text}`,
        )
      : await this.post(rawBody, opts, 'command', `${form.get('command')} ${text}`);
    this.emulator.recordAck(channel, user, ack.body);
    return { ...ack, rawBody, responseUrl, triggerId, user, channel };
  }

  /** Delivers the same request again, as Slack's retries do (same body, X-Slack-Retry-Num). */
  async resend(sent: SentRequest, retryNum: number): Promise<AckRecord> {
    return this.post(sent.rawBody, { retryNum }, sent.kind, sent.label);
  }

  /** A button click on a message (block_actions). */
  async click(
    message: { channel: string; ts: string; blocks?: unknown[]; text?: string },
    action: {
      action_id: string;
      value?: string;
      block_id?: string;
      text?: string;
      type?: string;
      selected_options?: unknown[];
    },
    opts: SendOptions = {},
  ): Promise<SentRequest> {
    const user = opts.user ?? this.defaults.user;
    const u = this.emulator.users.get(user);
    const responseUrl = this.emulator.issueResponseUrl(message.channel, user, {
      channel: message.channel,
      ts: message.ts,
    });
    const triggerId = this.emulator.issueTriggerId();
    const payload = {
      type: 'block_actions',
      team: { id: this.emulator.teamId, domain: 'flightdeck' },
      user: { id: user, username: u?.name ?? user, name: u?.name ?? user, team_id: this.emulator.teamId },
      api_app_id: 'A0FLIGHTDECK',
      token: 'deprecated-verification-token',
      container: {
        type: 'message',
        message_ts: message.ts,
        channel_id: message.channel,
        is_ephemeral: false,
      },
      trigger_id: triggerId,
      channel: { id: message.channel, name: this.emulator.channels.get(message.channel)?.name ?? 'unknown' },
      message: { type: 'message', ts: message.ts, text: message.text ?? '', blocks: message.blocks ?? [] },
      response_url: responseUrl,
      is_enterprise_install: false,
      actions: [
        {
          type: action.type ?? 'button',
          action_id: action.action_id,
          block_id: action.block_id ?? 'actions',
          value: action.value,
          text: { type: 'plain_text', text: action.text ?? action.action_id },
          action_ts: `${Date.now() / 1000}`,
          ...(action.selected_options ? { selected_options: action.selected_options } : {}),
        },
      ],
    };
    this.emulator.noteInbound('click', {
      user,
      channel: message.channel,
      text: `clicked ${action.text ?? action.action_id}`,
    });
    const rawBody = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const ack = opts.socket
      ? await this.overSocket('interactive', payload, 'block_actions', action.action_id)
      : await this.post(rawBody, opts, 'block_actions', action.action_id);
    return { ...ack, rawBody, responseUrl, triggerId, user, channel: message.channel };
  }

  /** An Events API delivery (JSON event_callback), e.g. app_home_opened. */
  async event(
    event: Record<string, unknown>,
    opts: SendOptions = {},
  ): Promise<AckRecord & { eventId: string }> {
    const eventId = `Ev${Date.now().toString(36).toUpperCase()}${Math.floor(Math.random() * 1e6)}`;
    const body = JSON.stringify({
      token: 'deprecated-verification-token',
      team_id: this.emulator.teamId,
      api_app_id: 'A0FLIGHTDECK',
      event: { event_ts: `${Date.now() / 1000}`, ...event },
      type: 'event_callback',
      event_id: eventId,
      event_time: Math.floor(Date.now() / 1000),
    });
    const ack = await this.post(body, { ...opts, json: true }, 'command', String(event.type));
    return { ...ack, eventId };
  }

  /** Any body, signed (or not) as asked: for forged, replayed and malformed requests. */
  async raw(rawBody: string, opts: SendOptions = {}): Promise<AckRecord> {
    return this.post(rawBody, opts, 'command', 'raw');
  }

  private async overSocket(
    type: 'slash_commands' | 'interactive',
    payload: Record<string, unknown>,
    kind: AckRecord['kind'],
    label: string,
  ): Promise<AckRecord> {
    const started = performance.now();
    const ack = await this.emulator.deliverOverSocket(type, payload, ACK_DEADLINE_MS);
    const ms = performance.now() - started;
    const record: AckRecord =
      ack === 'no-ack'
        ? { kind, label, status: 0, ms, timedOut: true, body: { error: 'operation_timeout' } }
        : { kind, label, status: 200, ms, timedOut: false, body: ack as Record<string, any> | undefined };
    this.acks.push(record);
    return record;
  }

  private async post(
    rawBody: string,
    opts: SendOptions,
    kind: AckRecord['kind'],
    label: string,
  ): Promise<AckRecord> {
    const ts = Math.floor(Date.now() / 1000) + (opts.timestampSkewSec ?? 0);
    const headers: Record<string, string> = {
      'content-type': opts.json ? 'application/json' : 'application/x-www-form-urlencoded',
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    };
    if (!opts.unsigned) {
      headers['x-slack-request-timestamp'] = String(ts);
      headers['x-slack-signature'] = signRequest(opts.signWith ?? this.signingSecret, ts, rawBody);
    }
    if (opts.retryNum) {
      headers['x-slack-retry-num'] = String(opts.retryNum);
      headers['x-slack-retry-reason'] = 'http_timeout';
    }
    const started = performance.now();
    let record: AckRecord;
    try {
      const res = await fetch(`${this.appUrl}/slack/events`, {
        method: 'POST',
        headers,
        body: rawBody,
        signal: AbortSignal.timeout(ACK_DEADLINE_MS),
      });
      const text = await res.text();
      const ms = performance.now() - started;
      let body: Record<string, any> | undefined;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = { text };
        }
      }
      record = { kind, label, status: res.status, ms, timedOut: false, body };
    } catch (err) {
      const ms = performance.now() - started;
      const timedOut = (err as Error).name === 'TimeoutError';
      // What a user sees when an app misses the deadline.
      record = {
        kind,
        label,
        status: 0,
        ms,
        timedOut,
        body: timedOut ? { error: 'operation_timeout' } : { error: String(err) },
      };
    }
    this.acks.push(record);
    return record;
  }
}
