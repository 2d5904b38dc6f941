import { request } from 'node:http';
import { requestIdOf } from '../../../src/commands/handle-slash-command.js';
import type { SentRequest } from '../../../src/slack-emulator/driver.js';
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
