import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { requestIdOf } from '../../../src/listeners/commands/slash-command.js';
import type { SentRequest } from '../../../tools/slack-emulator/driver.js';
import { signRequest } from '../../../tools/slack-emulator/sign.js';
import type { TestStack } from '../../helpers/stack.js';

export interface RawReply {
  status: number;
  body: string;
}

/** POSTs exactly these bytes and headers (fetch would add or normalise some), for forged requests. */
export function postRaw(
  url: string,
  body: string | Buffer,
  headers: Record<string, string | string[]>,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts a POST that promises `declared` bytes, sends a few and hangs up: a client that dies mid-upload. */
export function postAborted(url: string, headers: Record<string, string>, declared: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(declared) },
    });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write('{"version":"4","alerts":[');
    setTimeout(() => req.destroy(), 50);
  });
}

/** The id flightdeck gives a slash command (and its job, and its audit entries). */
export function commandRequestId(stack: TestStack, sent: Pick<SentRequest, 'triggerId' | 'user'>): string {
  return requestIdOf({ team_id: stack.emulator.teamId, trigger_id: sent.triggerId, user_id: sent.user });
}

/** Every job id of a queue, in any state. */
/** The request ids of the jobs in a queue: a command job's id, a rollback job's `requestId`. */
export async function requestIdsOf(queue: TestStack['queue']): Promise<Set<string>> {
  const jobs = await queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized']);
  return new Set(jobs.flatMap((j) => (j?.data?.requestId ? [String(j.data.requestId)] : [])));
}

export async function jobIds(queue: TestStack['queue']): Promise<Set<string>> {
  const jobs = await queue.getJobs([
    'waiting',
    'active',
    'completed',
    'failed',
    'delayed',
    'prioritized',
    'waiting-children',
  ]);
  return new Set(jobs.filter((j) => j).map((j) => String(j.id)));
}

/** Jobs of a queue in any state, optionally only those with this name. */
export async function jobTotal(queue: TestStack['queue'], name?: string): Promise<number> {
  const jobs = await queue.getJobs([
    'waiting',
    'active',
    'completed',
    'failed',
    'delayed',
    'prioritized',
    'waiting-children',
  ]);
  return jobs.filter((j) => j && (!name || j.name === name)).length;
}

/** The whole audit stream, grouped by request id. */
export async function auditByRequest(
  stack: TestStack,
): Promise<Map<string, Array<{ outcome: string; userId: string; text: string; detail: string }>>> {
  const rows = await stack.client.xrange(`${stack.prefix}:data:audit`, '-', '+');
  const out = new Map<string, Array<{ outcome: string; userId: string; text: string; detail: string }>>();
  for (const [, fields] of rows) {
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i] as string] = fields[i + 1] as string;
    const list = out.get(o.requestId ?? '') ?? [];
    list.push({
      outcome: o.outcome ?? '',
      userId: o.userId ?? '',
      text: o.text ?? '',
      detail: o.detail ?? '',
    });
    out.set(o.requestId ?? '', list);
  }
  return out;
}

/** A slash-command body as Slack sends it, with a trigger_id of our choosing (so its request id is known). */
export function commandBody(
  stack: TestStack,
  { command, text, user, triggerId }: { command: string; text: string; user: string; triggerId: string },
): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: stack.emulator.teamId,
    team_domain: 'flightdeck',
    channel_id: 'C0RELEASES',
    channel_name: 'releases',
    user_id: user,
    user_name: user,
    command,
    text,
    api_app_id: 'A0FLIGHTDECK',
    is_enterprise_install: 'false',
    response_url: stack.emulator.issueResponseUrl('C0RELEASES', user),
    trigger_id: triggerId,
  }).toString();
}

export interface ClickSpec {
  user: string;
  /** The message the click comes from (its blocks matter for checkboxes). */
  message: { channel: string; ts: string; blocks?: unknown[] };
  actions: Array<Record<string, unknown>>;
  /** Extra or replaced payload fields: forged names, other users' ids, anything. */
  extra?: Record<string, unknown>;
}

/**
 * A block_actions click built by hand and signed with the app's secret: what a user could send by
 * replaying Slack's format with doctored values. Returns the HTTP reply and the request id
 * flightdeck derives (for its audit entries).
 */
export async function clickAs(
  stack: TestStack,
  signingSecret: string,
  spec: ClickSpec,
): Promise<{ status: number; body: string; requestId: string }> {
  const triggerId = stack.emulator.issueTriggerId();
  const actionTs = `${Date.now() / 1000}${Math.floor(Math.random() * 1e6)}`;
  const payload = {
    type: 'block_actions',
    team: { id: stack.emulator.teamId, domain: 'flightdeck' },
    user: { id: spec.user, username: spec.user, name: spec.user, team_id: stack.emulator.teamId },
    api_app_id: 'A0FLIGHTDECK',
    token: 'deprecated-verification-token',
    container: { type: 'message', message_ts: spec.message.ts, channel_id: spec.message.channel },
    trigger_id: triggerId,
    channel: { id: spec.message.channel, name: 'unknown' },
    message: { type: 'message', ts: spec.message.ts, text: '', blocks: spec.message.blocks ?? [] },
    response_url: stack.emulator.issueResponseUrl(spec.message.channel, spec.user, spec.message),
    is_enterprise_install: false,
    actions: spec.actions.map((a) => ({ type: 'button', block_id: 'actions', action_ts: actionTs, ...a })),
    ...spec.extra,
  };
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = Math.floor(Date.now() / 1000);
  const res = await postRaw(`${stack.apps[0]?.url}/slack/events`, body, {
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(ts),
    'x-slack-signature': signRequest(signingSecret, ts, body),
  });
  const requestId = `act-${createHash('sha256')
    .update(`${stack.emulator.teamId}|${triggerId}|${actionTs}`)
    .digest('hex')
    .slice(0, 24)}`;
  return { ...res, requestId };
}
