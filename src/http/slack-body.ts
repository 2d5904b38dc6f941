import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse } from 'node:querystring';
import { send } from './send.js';

/** Bolt's own limit for a Slack request body. */
const MAX_BODY = 4 * 1024 * 1024;

/**
 * Reads a /slack/events body before Bolt does and turns away what Bolt cannot survive: a body that
 * parses to something other than an object (e.g. `payload=null`) makes Bolt's receiver throw outside
 * any handler, which kills the process. Bolt reuses the buffered body (`req.rawBody`), so its
 * signature check still sees the exact bytes. Returns false when it has answered the request itself.
 */
export async function admitSlackBody(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const raw = await readLimited(req, MAX_BODY);
  if (!raw) {
    send(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
    return false;
  }
  (req as IncomingMessage & { rawBody?: Buffer }).rawBody = raw;
  if (parsesToNonObject(raw.toString(), req.headers['content-type'])) {
    send(res, 400, { error: 'not a Slack request body' });
    return false;
  }
  return true;
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

/** Parses as Bolt does (form with an optional JSON `payload`, else JSON); unparseable is Bolt's to answer. */
function parsesToNonObject(text: string, contentType: string | undefined): boolean {
  let body: unknown;
  try {
    if (contentType === 'application/x-www-form-urlencoded') {
      // A form is always an object unless a `payload` field holds JSON; slash commands have none,
      // so skip parsing them twice (Bolt parses the body again).
      if (!PAYLOAD_KEY.test(text)) return false;
      const form = parse(text);
      body = typeof form.payload === 'string' ? JSON.parse(form.payload) : form;
    } else {
      body = JSON.parse(text);
    }
  } catch {
    return false;
  }
  return body === null || typeof body !== 'object' || Array.isArray(body);
}
