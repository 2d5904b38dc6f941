import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse } from 'node:querystring';
import { z } from 'zod';
import { send } from './send.js';

/**
 * The largest body Slack sends us: an interaction carries its message (at most 50 blocks) or its
 * view (at most 250 KB), form-encoded, which can about triple it. Bolt itself would take 4 MB.
 */
export const MAX_SLACK_BODY = 1024 * 1024;
/** Slack's replay window for a signed request. */
const MAX_AGE_SEC = 5 * 60;
/** The most read of an unsigned body (Slack's SSL check: `ssl_check=1&token=…`). */
const SSL_CHECK_MAX = 4 * 1024;

/** An answer with no body, as Bolt gives a request it refuses (nothing to learn from it). */
function refuse(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/**
 * Reads a /slack/events body before Bolt does. Nothing of an unsigned request is parsed: headers
 * without a fresh timestamp and signature are refused before the body is read, the body is capped at
 * what Slack sends, and its v0 signature is checked before anything parses it. Then it turns away what
 * Bolt cannot survive: a body that parses to something other than an object (e.g. `payload=null`)
 * makes Bolt's receiver throw outside any handler, which kills the process; an interaction without
 * its user makes Bolt answer 500. Bolt reuses the buffered body (`req.rawBody`). Returns false when
 * it has answered itself.
 */
export async function admitSlackBody(
  req: IncomingMessage,
  res: ServerResponse,
  signingSecret: string,
  now: () => number = Date.now,
): Promise<boolean> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_SLACK_BODY) {
    req.resume();
    send(res, 413, { error: `body larger than ${MAX_SLACK_BODY} bytes` });
    return false;
  }
  const timestamp = Number(req.headers['x-slack-request-timestamp']);
  const signature = req.headers['x-slack-signature'];
  if (typeof signature !== 'string' || !req.headers['x-slack-request-timestamp']) {
    // Slack's SSL check is the one unsigned request: answered empty, anything in it dropped (as Bolt
    // does). It is tiny, so no more than SSL_CHECK_MAX is read of any unsigned body.
    const small = await readLimited(req, SSL_CHECK_MAX);
    const sslCheck = small !== undefined && parse(small.toString()).ssl_check === '1';
    refuse(res, sslCheck ? 200 : 401);
    return false;
  }
  if (!Number.isInteger(timestamp) || Math.abs(now() / 1000 - timestamp) > MAX_AGE_SEC) {
    req.resume();
    refuse(res, 401);
    return false;
  }
  const raw = await readLimited(req, MAX_SLACK_BODY);
  if (!raw) {
    send(res, 413, { error: `body larger than ${MAX_SLACK_BODY} bytes` });
    return false;
  }
  if (!signedBy(signingSecret, timestamp, raw, signature)) {
    refuse(res, 401);
    return false;
  }
  (req as IncomingMessage & { rawBody?: Buffer }).rawBody = raw;
  if (notASlackBody(raw.toString(), req.headers['content-type'])) {
    send(res, 400, { error: 'not a Slack request body' });
    return false;
  }
  return true;
}

/** Slack's v0 signature, compared in constant time. */
function signedBy(secret: string, timestamp: number, body: Buffer, signature: string): boolean {
  const expected = Buffer.from(
    `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`,
  );
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The body, or undefined once it passes `limit` (the rest is drained so the answer still goes out). */
function readLimited(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A form field named `payload`, its letters plain or percent-encoded (as querystring decodes keys). */
const PAYLOAD_KEY = /(?:^|&)(?:p|%70)(?:a|%61)(?:y|%79)(?:l|%6[cC])(?:o|%6[fF])(?:a|%61)(?:d|%64)(?:=|&|$)/;

/**
 * Every interaction Slack sends (block_actions, view_submission, shortcuts…) names the user who
 * acted. Bolt reads `user.id` before any listener runs, so one without it was a 500 from inside Bolt.
 */
const Interaction = z.looseObject({ user: z.looseObject({ id: z.string() }) });

/**
 * Parses as Bolt does (form with an optional JSON `payload`, else JSON): true for a body that parses
 * to something other than an object, or an interaction without its user. Unparseable is Bolt's to answer.
 */
function notASlackBody(text: string, contentType: string | undefined): boolean {
  let body: unknown;
  let interaction = false;
  try {
    if (contentType === 'application/x-www-form-urlencoded') {
      // A form is always an object unless a `payload` field holds JSON; slash commands have none,
      // so skip parsing them twice (Bolt parses the body again).
      if (!PAYLOAD_KEY.test(text)) return false;
      const form = parse(text);
      interaction = typeof form.payload === 'string';
      body = interaction ? JSON.parse(form.payload as string) : form;
    } else {
      body = JSON.parse(text);
    }
  } catch {
    return false;
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return true;
  return interaction && !Interaction.safeParse(body).success;
}
