import { WebClient } from '@slack/web-api';

/** A WebClient pointed at Slack or at the emulator (SLACK_API_URL / slack.apiUrl). */
export function createWebClient(token: string, apiUrl: string, { forOutbox = false } = {}): WebClient {
  return new WebClient(token, {
    slackApiUrl: apiUrl,
    // The outbox handles 429s itself (per-channel budget shared by all replicas, Retry-After honoured
    // by delaying the job) and lets BullMQ retry other failures; direct callers let WebClient retry.
    rejectRateLimitedCalls: forOutbox,
    retryConfig: forOutbox
      ? { retries: 0 }
      : { retries: 5, factor: 2, minTimeout: 500, maxTimeout: 30_000, randomize: true },
    timeout: 10_000,
  });
}
