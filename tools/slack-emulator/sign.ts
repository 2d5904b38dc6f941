import { createHmac } from 'node:crypto';

/** Slack's v0 request signature: HMAC-SHA256 over `v0:<timestamp>:<raw body>`. */
export function signRequest(signingSecret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}
