import type { KnownBlock } from '@slack/types';
import type { WebClient } from '@slack/web-api';

export interface SlackReply {
  text: string;
  blocks?: KnownBlock[];
  /** in_channel shows the answer to everyone; ephemeral (default) only to the user. */
  responseType?: 'ephemeral' | 'in_channel';
}

export interface ReplyTarget {
  responseUrl: string;
  channelId: string;
  userId: string;
}

/**
 * Answers a slash command: through its response_url (valid 30 minutes, 5 uses), and when that
 * is spent or unreachable, through chat.postEphemeral / chat.postMessage in the channel.
 */
export class SlackResponder {
  constructor(
    private readonly client: WebClient,
    private readonly onCall: (method: string, result: string) => void = () => {},
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async reply(target: ReplyTarget, reply: SlackReply): Promise<'response_url' | 'channel'> {
    const body = {
      text: reply.text,
      ...(reply.blocks ? { blocks: reply.blocks } : {}),
      response_type: reply.responseType ?? 'ephemeral',
      replace_original: false,
    };
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const res = await this.fetchImpl(target.responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(5_000),
        });
        this.onCall('response_url', String(res.status));
        if (res.ok) return 'response_url';
        // 404 means used up or expired: no point retrying the same URL.
        if (res.status === 404 || res.status === 410) break;
        const retryAfter = Number(res.headers.get('retry-after'));
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1_000 : 300 * attempt);
      } catch {
        this.onCall('response_url', 'network_error');
        await sleep(300 * attempt);
      }
    }
    if (reply.responseType === 'in_channel') {
      await this.client.chat.postMessage({
        channel: target.channelId,
        text: reply.text,
        blocks: reply.blocks,
      });
      this.onCall('chat.postMessage', 'ok');
    } else {
      await this.client.chat.postEphemeral({
        channel: target.channelId,
        user: target.userId,
        text: reply.text,
        blocks: reply.blocks,
      });
      this.onCall('chat.postEphemeral', 'ok');
    }
    return 'channel';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
