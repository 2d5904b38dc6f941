import type { AllMiddlewareArgs, SlackEventMiddlewareArgs } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { Outbox } from '../../integrations/slack/outbox.js';
import type { Logger } from '../../observability/logger.js';

/**
 * app_home_opened: queue a fresh App Home for that user, and keep it current for them as things
 * change (Slack retries events; one per event_id).
 */
export function appHomeHandler(deps: {
  outbox: Outbox;
  redis: Redis;
  prefix: string;
  logger: Logger;
}): (args: SlackEventMiddlewareArgs & AllMiddlewareArgs) => Promise<boolean> {
  return async ({ event, body }) => {
    if (event.type !== 'app_home_opened' || event.tab !== 'home') return true;
    const eventId = (body as { event_id?: string }).event_id ?? `${event.user}-${event.event_ts}`;
    const fresh = await deps.redis
      .set(`${deps.prefix}:data:seen:event-${eventId}`, '1', 'EX', 3_600, 'NX')
      // Redis not answering: publish anyway (a second App Home is harmless, a missing one is not).
      .catch(() => 'OK');
    if (fresh !== 'OK') return true;
    await deps.outbox
      .homeViewed(event.user)
      .catch((err: Error) => deps.logger.warn({ err: err.message }, 'Could not queue App Home'));
    return true;
  };
}
