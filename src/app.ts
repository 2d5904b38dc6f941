import type { Server } from 'node:http';
import { App, type Logger as BoltLogger, HTTPReceiver, LogLevel } from '@slack/bolt';
import type { Worker } from 'bullmq';
import { registerActions } from './actions/index.js';
import { AlertStore } from './alerts/alert-store.js';
import { AuditLog } from './audit/audit-log.js';
import { Checklists } from './checklists/checklist-service.js';
import { ChecklistStore } from './checklists/checklist-store.js';
import { loadTemplate } from './checklists/load-template.js';
import { registerCommands } from './commands/index.js';
import type { LoadedConfig } from './config/load-config.js';
import { registerAppHome } from './events/app-home.js';
import { renderHome } from './home/render-home.js';
import { alertWebhookHandler } from './http/alert-webhook.js';
import { createHttpServer, send } from './http/server.js';
import { AlertmanagerClient } from './integrations/alertmanager.js';
import { NginxDriver, probeNginx, runArgv } from './integrations/nginx.js';
import { SwarmExecRunner } from './integrations/nginx-exec.js';
import { NginxLuaDriver } from './integrations/nginx-lua.js';
import { instantQuery } from './integrations/prometheus.js';
import { createRedis, waitReady, withTimeout } from './integrations/redis.js';
import { ChannelBudget } from './integrations/slack/channel-budget.js';
import { SlackResponder } from './integrations/slack/respond.js';
import { createWebClient } from './integrations/slack/web-client.js';
import { createDocker, pingDocker, Swarm } from './integrations/swarm.js';
import { ALERT_QUEUE, createAlertQueue, startAlertWorker } from './jobs/alert-worker.js';
import { CHECKLIST_QUEUE, createChecklistQueue, startChecklistWorker } from './jobs/checklist-worker.js';
import { startCommandWorker } from './jobs/command-worker.js';
import { type CommandExecutor, createExecutor } from './jobs/execute-command.js';
import { createCommandQueue, QUEUE } from './jobs/queues.js';
import type { ReleaseContext } from './jobs/release-context.js';
import {
  createReleaseQueue,
  RELEASE_QUEUE,
  startReleaseWorker,
  startRollbackWorker,
} from './jobs/release-workers.js';
import { createRollbackQueue, ROLLBACK_QUEUE } from './jobs/rollback-jobs.js';
import { createOutboxQueue, OUTBOX_QUEUE, Outbox, startOutboxWorker } from './jobs/slack-outbox.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { ReleaseStore } from './releases/release-store.js';
import { ServiceStateStore } from './releases/service-state-store.js';
import { Traffic } from './releases/traffic.js';

export interface Flightdeck {
  /** The HTTP port actually bound (useful with port 0). */
  port: number;
  /**
   * Graceful stop: refuse new Slack requests and fail /readyz, let workers finish their active jobs
   * for up to `timeoutMs` (then hand them back), close Redis.
   */
  stop(opts?: { timeoutMs?: number }): Promise<StopResult>;
}

export interface StopResult {
  /** False when active jobs outlived the timeout and were handed back to the other workers. */
  drained: boolean;
}

export interface StartOptions {
  executor?: CommandExecutor;
}

/** Starts the roles asked for (web, worker or both) on one HTTP port. */
export async function startFlightdeck(
  loaded: LoadedConfig,
  logger: Logger,
  opts: StartOptions = {},
): Promise<Flightdeck> {
  const { config, secrets, role } = loaded;
  const prefix = config.redis.prefix;
  const metrics = createMetrics();
  const redis = createRedis(secrets.redisUrl, 'command', `${role}-commands`);
  const docker = createDocker(config.docker.socketPath);
  const audit = new AuditLog(redis, prefix);
  const client = createWebClient(secrets.slackBotToken, config.slack.apiUrl);
  const onSlackCall = (method: string, result: string) => metrics.slackCalls.inc({ method, result });
  const queue = createCommandQueue(redis, prefix);
  const releaseQueue = createReleaseQueue(redis, prefix);
  const rollbackQueue = createRollbackQueue(redis, prefix);
  const outboxQueue = createOutboxQueue(redis, prefix);
  const alertQueue = createAlertQueue(redis, prefix);
  const outbox = new Outbox(outboxQueue, redis, prefix);
  const alerts = new AlertStore(redis, prefix);
  const alertmanager = config.alertmanager ? new AlertmanagerClient(config.alertmanager.url) : undefined;
  const checklistQueue = createChecklistQueue(redis, prefix);
  const template = loadTemplate(config.checklists.templates);
  const swarm = new Swarm(docker);
  const closers: Array<() => Promise<unknown>> = [];
  const store = new ReleaseStore(redis, prefix);
  const states = new ServiceStateStore(redis, prefix, (ms) => metrics.lockWait.observe(ms / 1000));
  // nginx.exec: nginx -t / -s reload run inside the nginx service's tasks, not in this process.
  const runNginx = config.nginx.exec
    ? new SwarmExecRunner(docker, config.nginx.exec.swarmService).run
    : runArgv;
  const nginx =
    config.nginx.driver === 'lua' && config.nginx.statusListen
      ? new NginxLuaDriver({ ...config.nginx, statusListen: config.nginx.statusListen }, runNginx)
      : new NginxDriver(config.nginx, runNginx);
  const traffic = new Traffic(config, states, nginx, redis, (env, svc, w) => {
    metrics.trafficWeight.set({ environment: env, service: svc, colour: 'blue' }, w.blue);
    metrics.trafficWeight.set({ environment: env, service: svc, colour: 'green' }, w.green);
  });
  const ctx: ReleaseContext = {
    config,
    redis,
    store,
    states,
    traffic,
    swarm,
    promQuery: (q) => {
      if (!config.prometheus) throw new Error('prometheus.url is not configured');
      return instantQuery(config.prometheus.url, q);
    },
    releaseQueue,
    rollbackQueue,
    publish: outbox.release,
    gate: (environment) => checklists.gate(environment),
    onCompleted: async (r) => {
      // A release into a gated environment opens the post-deployment checklist where it was announced,
      // once per release (this hook runs again if flightdeck died after it).
      if (config.checklists.gateEnvironments.includes(r.environment))
        await outbox.checklistPost('post', r.channel, r.id);
    },
    metrics,
    logger,
    now: Date.now,
  };

  const checklists = new Checklists(
    template,
    new ChecklistStore(redis, prefix, config.checklists.templates.replace(/[^a-z0-9-]/gi, '_')),
    config,
    {
      swarm,
      promQuery: ctx.promQuery,
      liveColour: async (env, svc) => {
        const s = await states.get(env, svc);
        return s.weights.green > s.weights.blue ? 'green' : 'blue';
      },
    },
  );

  // A web replica only acks and enqueues, so it needs Redis alone (and no Docker socket);
  // workers also drive Docker and nginx.
  const readinessChecks = {
    redis: async () => {
      await redis.ping();
    },
    ...(role === 'web'
      ? {}
      : { docker: () => pingDocker(docker), nginx: () => probeNginx(config.nginx.probeUrl) }),
  };
  const beforeScrape = async () => {
    const queues = [
      [QUEUE.commands, queue],
      [RELEASE_QUEUE, releaseQueue],
      [ROLLBACK_QUEUE, rollbackQueue],
      [OUTBOX_QUEUE, outboxQueue],
      [ALERT_QUEUE, alertQueue],
      [CHECKLIST_QUEUE, checklistQueue],
    ] as const;
    await Promise.all(
      queues.map(async ([name, q]) => {
        const counts = await withTimeout(q.getJobCounts(), 1_000, 'queue counts');
        for (const [state, n] of Object.entries(counts)) metrics.queueJobs.set({ queue: name, state }, n);
      }),
    );
  };

  let slackHandler:
    | ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void)
    | undefined;
  let socketApp: App | undefined;
  if (role === 'web' || role === 'all') {
    const identity = await resolveBotIdentity(client, logger);
    const boltLogger = toBoltLogger(logger);
    const deps = { config, queue, redis, audit, metrics, logger };
    if (secrets.slackAppToken) {
      socketApp = new App({
        token: secrets.slackBotToken,
        appToken: secrets.slackAppToken,
        socketMode: true,
        ...identity,
        clientOptions: { slackApiUrl: config.slack.apiUrl },
        logger: boltLogger,
        // No conversation state is kept in Bolt; its default store costs every request a thrown Error.
        convoStore: false,
      });
      registerCommands(socketApp, deps);
      registerActions(socketApp, deps);
      registerAppHome(socketApp, { outbox, redis, prefix, logger });
      await socketApp.start();
      closers.push(() => (socketApp as App).stop());
      logger.info('Slack Socket Mode connected');
    } else {
      const receiver = new HTTPReceiver({
        signingSecret: secrets.slackSigningSecret as string,
        endpoints: ['/slack/events'],
        logger: boltLogger,
      });
      const app = new App({
        token: secrets.slackBotToken,
        receiver,
        ...identity,
        clientOptions: { slackApiUrl: config.slack.apiUrl },
        logger: boltLogger,
        // No conversation state is kept in Bolt; its default store costs every request a thrown Error.
        convoStore: false,
      });
      registerCommands(app, deps);
      registerActions(app, deps);
      registerAppHome(app, { outbox, redis, prefix, logger });
      slackHandler = (req, res) => {
        try {
          receiver.requestListener(req, res);
        } catch {
          send(res, 404, { error: 'not found' });
        }
      };
    }
  }

  const workers: Worker[] = [];
  let workerRedis: ReturnType<typeof createRedis> | undefined;
  if (role === 'worker' || role === 'all') {
    workerRedis = createRedis(secrets.redisUrl, 'blocking', 'worker');
    const responder = new SlackResponder(client, onSlackCall);
    const lockDuration = config.jobs.lockDuration;
    workers.push(
      startCommandWorker({
        connection: workerRedis,
        prefix,
        lockDuration: config.jobs.lockDuration,
        executor:
          opts.executor ??
          createExecutor(
            ctx,
            {
              alerts,
              outbox,
              alertQueue,
              alertmanager,
            },
            { checklists, outbox, queue: checklistQueue },
          ),
        responder,
        audit,
        metrics,
        logger,
      }),
      startReleaseWorker(ctx, { connection: workerRedis, prefix, lockDuration, responder, audit }),
      startRollbackWorker(ctx, { connection: workerRedis, prefix, lockDuration, responder, audit }),
      startOutboxWorker({
        connection: workerRedis,
        prefix,
        client: createWebClient(secrets.slackBotToken, config.slack.apiUrl, { forOutbox: true }),
        config,
        releases: store,
        alerts,
        states,
        budget: new ChannelBudget(redis, prefix),
        checklists: {
          render: (id) => checklists.render(id),
          addMessage: (id, channel, ts) => checklists.store.addMessage(id, channel, ts),
          messages: (id) => checklists.store.messages(id),
        },
        home: async () =>
          renderHome({
            rolloutStatus: await checklists.status(),
            inFlight: await store.active(),
            openAlerts: await alerts.open(),
            now: Date.now(),
          }),
        metrics,
        logger,
      }),
      startChecklistWorker({
        connection: workerRedis,
        prefix,
        config,
        checklists,
        outbox,
        queue: checklistQueue,
        logger,
      }),
      startAlertWorker({
        connection: workerRedis,
        prefix,
        config,
        alerts,
        outbox,
        queue: alertQueue,
        release: ctx,
        alertmanager,
        metrics,
        logger,
      }),
    );
    // nginx must know every upstream before anyone's config refers to them.
    await waitReady(redis, 5_000);
    await traffic
      .apply()
      .catch((err: Error) =>
        logger.warn({ err: err.message }, 'Could not render the nginx upstreams at start-up'),
      );
  }

  const server = createHttpServer({
    registry: metrics.registry,
    readinessChecks,
    slack: slackHandler,
    routes:
      role === 'worker'
        ? {}
        : {
            'POST /alerts/alertmanager': alertWebhookHandler({
              token: secrets.alertmanagerWebhookToken,
              queue: alertQueue,
              metrics,
              logger,
            }),
          },
    beforeScrape,
    logger,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  logger.info({ port, role, mode: secrets.slackAppToken ? 'socket' : 'http' }, 'flightdeck started');

  return {
    port,
    async stop({ timeoutMs = 25_000 } = {}) {
      // Stop taking Slack requests first (/readyz 503 takes this replica out of the load balancer),
      // but keep listening so health checks see the drain instead of a refused connection.
      server.draining = true;
      logger.info({ timeoutMs, workers: workers.length }, 'Draining: Slack requests refused, /readyz 503');
      for (const close of closers) await close().catch(() => {});
      // Workers stop fetching and finish the jobs they hold; past the deadline the jobs are handed
      // back: their locks lapse and another replica's stall check re-runs them (jobs.lockDuration).
      let deadline: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        Promise.all(workers.map((w) => w.close().catch(() => {}))).then(() => true),
        new Promise<boolean>((r) => {
          deadline = setTimeout(() => r(false), timeoutMs);
        }),
      ]);
      clearTimeout(deadline);
      if (!drained) {
        // Not awaiting the workers any more is the hand-back: once this process exits their locks are
        // no longer renewed (a forced close would wait too: BullMQ reuses the pending close).
        logger.warn(
          { timeoutMs },
          'Shutdown timeout: handing the active jobs back; another worker resumes them after jobs.lockDuration',
        );
      }
      for (const q of [queue, releaseQueue, rollbackQueue, outboxQueue, alertQueue, checklistQueue])
        await q.close().catch(() => {});
      await closeServer(server);
      workerRedis?.disconnect();
      redis.disconnect();
      logger.info({ drained }, 'flightdeck stopped');
      return { drained };
    },
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

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, 5_000).unref();
  });
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
