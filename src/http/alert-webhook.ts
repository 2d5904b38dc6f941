import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Queue } from 'bullmq';
import { AlertmanagerWebhook } from '../alerts/schema.js';
import { withTimeout } from '../integrations/redis.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { send } from './send.js';

const MAX_BODY = 8 * 1024 * 1024;

/** Constant-time comparison of bearer tokens (hashed first so lengths never leak). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = createHash('sha256')
    .update(m[1] as string)
    .digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * POST /alerts/alertmanager: 401 without the right bearer token, 400 for a malformed payload, and
 * 200 only once the notification is durably queued (Alertmanager retries anything 5xx).
 */
export function alertWebhookHandler(deps: {
  token?: string;
  queue: Queue;
  metrics: Metrics;
  logger: Logger;
}) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (status: number, body: unknown) => {
      deps.metrics.webhookRequests.inc({ status: String(status) });
      send(res, status, body);
    };
    if (!deps.token) {
      req.resume();
      return reply(404, { error: 'the Alertmanager webhook is off: set ALERTMANAGER_WEBHOOK_TOKEN' });
    }
    if (!tokenMatches(req.headers.authorization, deps.token)) {
      req.resume();
      return reply(401, { error: 'missing or wrong bearer token' });
    }
    let raw: string;
    try {
      raw = await readLimited(req, MAX_BODY);
    } catch {
      return reply(413, { error: `body larger than ${MAX_BODY} bytes` });
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      return reply(400, { error: `malformed JSON: ${(err as Error).message}` });
    }
    const parsed = AlertmanagerWebhook.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
      return reply(400, { error: 'not an Alertmanager v4 webhook payload', issues });
    }
    try {
      await withTimeout(deps.queue.add('webhook', parsed.data), 5_000, 'Redis');
    } catch (err) {
      deps.logger.error({ err: (err as Error).message }, 'Could not queue alerts');
      return reply(503, { error: 'could not queue the alerts; Alertmanager will retry' });
    }
    reply(200, { queued: parsed.data.alerts.length });
  };
}

function readLimited(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new Error('too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
