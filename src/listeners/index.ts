import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, type Logger as BoltLogger, HTTPReceiver, LogLevel } from '@slack/bolt';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AuditLog } from '../audit/audit-log.js';
import type { FlightdeckConfig, Secrets } from '../config/schema.js';
import { send } from '../http/send.js';
import type { Outbox } from '../integrations/slack/outbox.js';
import type { createWebClient } from '../integrations/slack/web-client.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { routeSlackRequests } from './route-requests.js';

export interface SlackListeners {
  /** Bolt's request listener for POST /slack/events; undefined in Socket Mode. */
  httpHandler?: (req: IncomingMessage, res: ServerResponse) => void;
  stop(): Promise<void>;
}

export interface ListenerDeps {
  config: FlightdeckConfig;
  secrets: Secrets;
  client: ReturnType<typeof createWebClient>;
  queue: Queue;
  rollbacks: Queue;
  redis: Redis;
  audit: AuditLog;
  outbox: Outbox;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Where Slack comes in: one Bolt App, over HTTP (signed requests to /slack/events) or Socket Mode
 * (with SLACK_APP_TOKEN), with the slash commands, block actions and App Home registered on it.
 */
export async function startSlackListeners(deps: ListenerDeps): Promise<SlackListeners> {
  const { config, secrets, logger } = deps;
  const identity = await resolveBotIdentity(deps.client, logger);
  const socketMode = Boolean(secrets.slackAppToken);
  const receiver = socketMode
    ? undefined
    : new HTTPReceiver({
        signingSecret: secrets.slackSigningSecret as string,
        endpoints: ['/slack/events'],
        // Every request reaches Bolt only through admitSlackBody (src/http/server.ts), which checks
        // the v0 signature and its age before anything parses the body; checking it a second time
        // was ~4% of the CPU of an ack.
        signatureVerification: false,
        logger: toBoltLogger(logger),
      });
  const app = new App({
    token: secrets.slackBotToken,
    ...(receiver ? { receiver } : { appToken: secrets.slackAppToken, socketMode: true }),
    ...identity,
    clientOptions: { slackApiUrl: config.slack.apiUrl },
    logger: toBoltLogger(logger),
    // No conversation state is kept in Bolt; its default store costs every request a thrown Error.
    convoStore: false,
  });
  const listenerDeps = {
    config,
    queue: deps.queue,
    rollbacks: deps.rollbacks,
    redis: deps.redis,
    audit: deps.audit,
    metrics: deps.metrics,
    logger,
  };
  routeSlackRequests(app, {
    command: listenerDeps,
    action: listenerDeps,
    appHome: { outbox: deps.outbox, redis: deps.redis, prefix: config.redis.prefix, logger },
  });

  if (!receiver) {
    await app.start();
    logger.info('Slack Socket Mode connected');
    return {
      stop: async () => {
        await app.stop();
      },
    };
  }
  return {
    httpHandler: (req, res) => {
      try {
        receiver.requestListener(req, res);
      } catch {
        // Bolt throws for a path it does not serve.
        send(res, 404, { error: 'not found' });
      }
    },
    stop: async () => {},
  };
}

/** auth.test once, so Bolt does not call it lazily and cache a failure for good. */
async function resolveBotIdentity(
  client: ReturnType<typeof createWebClient>,
  logger: Logger,
): Promise<{ botId: string; botUserId: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await client.auth.test();
      if (!res.bot_id || !res.user_id)
        throw new Error('auth.test returned no bot_id/user_id: is SLACK_BOT_TOKEN a bot token (xoxb-)?');
      return { botId: res.bot_id, botUserId: res.user_id };
    } catch (err) {
      const msg = (err as Error).message;
      if (/invalid_auth|not_authed|account_inactive|token_revoked|no bot_id/.test(msg) || attempt >= 30) {
        throw new Error(`Slack rejected SLACK_BOT_TOKEN (auth.test: ${msg})`);
      }
      logger.warn({ attempt, err: msg }, 'Slack auth.test failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 5_000)));
    }
  }
}

function toBoltLogger(logger: Logger): BoltLogger {
  const child = logger.child({ component: 'bolt' });
  // Bolt logs several debug lines per request: format them only when someone reads them.
  return {
    debug: (...m: unknown[]) => child.isLevelEnabled('debug') && child.debug(m.map(String).join(' ')),
    info: (...m: unknown[]) => child.info(m.map(String).join(' ')),
    warn: (...m: unknown[]) => child.warn(m.map(String).join(' ')),
    error: (...m: unknown[]) => child.error(m.map(String).join(' ')),
    setLevel: () => {},
    getLevel: () => LogLevel.INFO,
    setName: () => {},
  };
}
