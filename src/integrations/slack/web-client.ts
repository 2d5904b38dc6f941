import { WebClient } from '@slack/web-api';

/** One WebClient per process, pointed at Slack or at the emulator (SLACK_API_URL / slack.apiUrl). */
export function createWebClient(token: string, apiUrl: string): WebClient {
  return new WebClient(token, {
    slackApiUrl: apiUrl,
    // Rate limits are honoured by WebClient itself (it pauses on 429 + Retry-After and retries).
    retryConfig: { retries: 5, factor: 2, minTimeout: 500, maxTimeout: 30_000, randomize: true },
    timeout: 10_000,
  });
}
