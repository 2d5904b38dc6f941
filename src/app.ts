import type { Server } from 'node:http';
import type { Worker } from 'bullmq';
import type Docker from 'dockerode';
import { AlertStore } from './alerts/alert-store.js';
import { type AlertJobs, createAlertHandlers } from './alerts/handle-alerts.js';
import { AuditLog } from './audit/audit-log.js';
import { Rollouts } from './checklists/rollouts.js';
import { slackUserGroups } from './checklists/user-groups.js';
import {
  dockerDownMessage,
  dockerEndpointOf,
  endpointKey,
  type NginxGroup,
  nginxGroups,
  prometheusOf,
  readinessParts,
} from './config/infrastructure.js';
import type { LoadedConfig } from './config/load-config.js';
import type { FlightdeckConfig } from './config/schema.js';
import { pipelineBoard } from './home/pipeline-board.js';
import { renderHome } from './home/render-home.js';
import { alertWebhookHandler } from './http/alert-webhook.js';
import { type Check, sharedChecks } from './http/readiness.js';
import { createHttpServer } from './http/server.js';
import { AlertmanagerClient } from './integrations/alertmanager.js';
import { createNginxDriver, type Nginx } from './integrations/nginx-driver.js';
import { instantQuery, vectorQuery } from './integrations/prometheus.js';
import { createRedis, waitReady, withTimeout } from './integrations/redis.js';
import { ChannelBudget } from './integrations/slack/channel-budget.js';
import { Outbox } from './integrations/slack/outbox.js';
import { SlackResponder } from './integrations/slack/respond.js';
import { createWebClient } from './integrations/slack/web-client.js';
import { createDocker, pingDocker, Swarm } from './integrations/swarm.js';
import { bullAlertJobs, startAlertWorker } from './jobs/alert-worker.js';
import { startChecklistWorker } from './jobs/checklist-worker.js';
import { RedisCommandProgress } from './jobs/command-progress.js';
import { startCommandWorker } from './jobs/command-worker.js';
import { createExecutor } from './jobs/execute-command.js';
import { startOutboxWorker } from './jobs/outbox-worker.js';
import { createQueues, QUEUE } from './jobs/queues.js';
import { bullReleaseJobs } from './jobs/release-jobs.js';
import { startReleaseWorker, startRollbackWorker } from './jobs/release-workers.js';
import { type SlackListeners, startSlackListeners } from './listeners/index.js';
import { type Logger, logFailure } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { publishRelease } from './releases/batch-message.js';
import { BatchStore } from './releases/batch-store.js';
import { DoraLog } from './releases/dora-log.js';
import { doraHomeLines, setDoraGauges } from './releases/dora-stats.js';
import { freezeLines } from './releases/freezes.js';
import type { ReleaseContext } from './releases/release-context.js';
import { ReleaseStore } from './releases/release-store.js';
import { ServiceStateStore } from './releases/service-state-store.js';
import { Traffic } from './releases/traffic.js';
import { VersionTrail } from './releases/version-trail.js';

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

/** Starts the roles asked for (web, worker or both) on one HTTP port. */
export async function startFlightdeck(loaded: LoadedConfig, logger: Logger): Promise<Flightdeck> {
  const { config, secrets, role } = loaded;
  if (role !== 'web') for (const warning of loaded.warnings ?? []) logger.warn(warning);
  const prefix = config.redis.prefix;
  const metrics = createMetrics();
  const redis = createRedis(secrets.redisUrl, 'command', `${role}-commands`, secrets.redisPassword);
  const infra = dockerClients(config);
  const audit = new AuditLog(redis, prefix);
  const client = createWebClient(secrets.slackBotToken, config.slack.apiUrl);
  const onSlackCall = (method: string, result: string) => metrics.slackCalls.inc({ method, result });
  const queues = createQueues(redis, prefix);
  const outbox = new Outbox(queues.outbox, redis, prefix);
  const alerts = new AlertStore(redis, prefix);
  const alertmanager = config.alertmanager ? new AlertmanagerClient(config.alertmanager.url) : undefined;
  const closers: Array<() => Promise<unknown>> = [];
  const store = new ReleaseStore(redis, prefix);
  const states = new ServiceStateStore(redis, prefix, (ms) => metrics.lockWait.observe(ms / 1000));
  // One driver per nginx; nginx.exec runs through the Docker endpoint of that nginx's environments.
  const nginxes = new Map<string, Nginx>();
  const driverFor = (group: NginxGroup) => {
    const driver = createNginxDriver(group.nginx, {
      secrets,
      docker: () => infra.dockerFor(group.environments[0] as string),
      redis,
      redisPrefix: prefix,
    });
    nginxes.set(group.id, driver);
    return driver;
  };
  const traffic = new Traffic(config, states, driverFor, redis, (env, svc, w) => {
    metrics.trafficWeight.set({ environment: env, service: svc, colour: 'blue' }, w.blue);
    metrics.trafficWeight.set({ environment: env, service: svc, colour: 'green' }, w.green);
  });
  const ctx: ReleaseContext = {
    config,
    redis,
    store,
    states,
    traffic,
    swarmFor: infra.swarmFor,
    dockerDown: infra.dockerDown,
    promQuery: (env, q) => {
      const url = prometheusOf(config, env);
      if (!url)
        throw new Error(
          env
            ? `no Prometheus for ${env}: set environments.${env}.prometheus.url or prometheus.url`
            : 'prometheus.url is not configured',
        );
      return instantQuery(url, q);
    },
    promVector: (env, q, time) => {
      const url = prometheusOf(config, env);
      if (!url)
        throw new Error(`no Prometheus for ${env}: set environments.${env}.prometheus.url or prometheus.url`);
      return vectorQuery(url, q, { time });
    },
    jobs: bullReleaseJobs(queues.releases, queues.rollbacks, logger),
    // A member of a `/deploy all` also refreshes its batch's message.
    publish: publishRelease({ outbox, releases: store, batches: new BatchStore(redis, prefix) }),
    releaseThread: outbox.releaseThread,
    trail: new VersionTrail(redis, prefix),
    dora: new DoraLog(redis, prefix),
    homesChanged: outbox.homesChanged,
    // The production gate of the rollouts covering the deploy: pre-deployment checklist and phases.
    gate: (environment, service) => rollouts.deployGate(environment, service),
    postChecklistOpen: (releaseId) => rollouts.postChecklistOpen(releaseId),
    onCompleted: async (r) => {
      // A release into a gated environment gets its own post-deployment checklist, in the release's
      // thread, once per release (this hook runs again if flightdeck died after it).
      const rc = await rollouts.openReleaseChecklist(r);
      if (rc) await outbox.checklistPost(`${r.id}/post`, rc.channel, r.id, rc.threadTs);
    },
    metrics,
    logger,
    now: Date.now,
  };

  const rollouts = new Rollouts(
    redis,
    prefix,
    config,
    {
      swarmFor: infra.swarmFor,
      promQuery: ctx.promQuery,
      liveColour: async (env, svc) => {
        const s = await states.get(env, svc);
        return s.weights.green > s.weights.blue ? 'green' : 'blue';
      },
    },
    undefined,
    (w) => logger.warn(w),
  );
  // The configured template is checked at start-up (a config error stops flightdeck here); loaded
  // once, so its warnings are logged once.
  rollouts.template(config.checklists.templates);

  // A web replica only acks and enqueues, so it needs Redis alone (and no Docker socket);
  // workers also drive each environment's Docker endpoint, nginx and Prometheus.
  const readinessChecks = {
    redis: async () => {
      await redis.ping();
    },
    ...(role === 'web' ? {} : infrastructureChecks(config, infra, nginxes)),
  };
  let doraScrapedAt = 0;
  const beforeScrape = async () => {
    await Promise.all(
      Object.entries(queues).map(async ([key, q]) => {
        const counts = await withTimeout(q.getJobCounts(), 1_000, 'queue counts');
        const name = QUEUE[key as keyof typeof QUEUE];
        for (const [state, n] of Object.entries(counts)) metrics.queueJobs.set({ queue: name, state }, n);
      }),
    );
    // DORA gauges from Redis alone (every role), recomputed at most every 30 s.
    if (ctx.dora && Date.now() - doraScrapedAt > 30_000) {
      // A failure here leaves the last figures and does not stop the rest of the scrape.
      await withTimeout(setDoraGauges(config, ctx.dora, metrics, Date.now()), 2_000, 'DORA figures').then(
        () => {
          doraScrapedAt = Date.now();
        },
        logFailure(logger, 'DORA figures for /metrics failed'),
      );
    }
    if (role === 'web') return;
    metrics.edgeInSync.reset();
    metrics.edgeGenerationAge.reset();
    await Promise.all(
      nginxGroups(config).map(async (g) => {
        const edges = nginxes.get(g.id)?.edges;
        if (!edges) return;
        const status = await withTimeout(edges.status(), 1_000, 'edge status');
        const group = g.nginx.upstreamPrefix;
        for (const r of status.live) {
          const ok = r.generation === status.desired && r.health === 'ok';
          metrics.edgeInSync.set({ group, replica: r.name }, ok ? 1 : 0);
          metrics.edgeGenerationAge.set(
            { group, replica: r.name },
            Math.max(0, (Date.now() - r.appliedAt) / 1000),
          );
        }
        metrics.edgeMissing.set({ group }, status.missing.length);
      }),
    );
  };

  let slack: SlackListeners | undefined;
  if (role === 'web' || role === 'all') {
    slack = await startSlackListeners({
      config,
      secrets,
      client,
      queue: queues.commands,
      rollbacks: queues.rollbacks,
      redis,
      audit,
      outbox,
      metrics,
      logger,
    });
    const listeners = slack;
    closers.push(() => listeners.stop());
  }

  const workers: Worker[] = [];
  let workerRedis: ReturnType<typeof createRedis> | undefined;
  if (role === 'worker' || role === 'all') {
    workerRedis = createRedis(secrets.redisUrl, 'blocking', 'worker', secrets.redisPassword);
    // The single rollout of the previous version becomes the rollout `default` (once, atomically),
    // before any worker reads a checklist.
    await waitReady(redis, 5_000);
    if (await rollouts.migrate()) logger.info('Migrated the rollout of the previous version to `default`');
    const responder = new SlackResponder(client, onSlackCall);
    const alertJobs: AlertJobs = bullAlertJobs(queues.alerts, config);
    const executor = createExecutor(
      ctx,
      { alerts, outbox, jobs: alertJobs, alertmanager },
      {
        rollouts,
        outbox,
        autocheck: async (checklistId) => {
          await queues.checklists.add('autocheck', { checklistId });
        },
        now: Date.now,
        userGroups: slackUserGroups(client),
      },
    );
    workers.push(
      startCommandWorker({
        connection: workerRedis,
        prefix,
        config,
        executor,
        responder,
        audit,
        progress: new RedisCommandProgress(redis, prefix),
        metrics,
        logger,
      }),
      startReleaseWorker(ctx, { connection: workerRedis, prefix, responder, audit }),
      startRollbackWorker(ctx, { connection: workerRedis, prefix, responder, audit }),
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
          render: (ref) => rollouts.render(ref),
          store: rollouts.messageStore,
          refresh: outbox.checklistRefresh,
        },
        homes: { viewers: outbox.homeViewers, publish: outbox.home },
        batchChanged: outbox.batch,
        home: async () =>
          renderHome({
            board: ctx.trail ? await pipelineBoard(config, ctx.trail, states) : undefined,
            freezes: freezeLines(config, Date.now()),
            dora: ctx.dora ? await doraHomeLines(config, ctx.dora, Date.now()) : undefined,
            rolloutStatus: await rollouts.homeStatus(),
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
        rollouts,
        outbox,
        queue: queues.checklists,
        logger,
      }),
      startAlertWorker({
        connection: workerRedis,
        prefix,
        config,
        queue: queues.alerts,
        handlers: createAlertHandlers({
          config,
          alerts,
          outbox,
          jobs: alertJobs,
          release: ctx,
          alertmanager,
          metrics,
          logger,
        }),
        reconcile: Boolean(alertmanager),
        logger,
      }),
    );
    // nginx must know every upstream before anyone's config refers to them.
    await waitReady(redis, 5_000);
    // Every nginx is tried; one that fails is named and leaves the others applied.
    await traffic
      .apply()
      .catch((err: Error) =>
        logger.warn({ err: err.message }, 'Could not render the nginx upstreams at start-up'),
      );
  }

  const server = createHttpServer({
    registry: metrics.registry,
    readinessChecks,
    slack: slack?.httpHandler
      ? { handler: slack.httpHandler, signingSecret: secrets.slackSigningSecret as string }
      : undefined,
    routes:
      role === 'worker'
        ? {}
        : {
            'POST /alerts/alertmanager': alertWebhookHandler({
              token: secrets.alertmanagerWebhookToken,
              queue: queues.alerts,
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
      for (const close of closers)
        await close().catch(logFailure(logger, 'Closing the Slack listener failed'));
      // Workers stop fetching and finish the jobs they hold; past the deadline the jobs are handed
      // back: their locks lapse and another replica's stall check re-runs them (jobs.lockDuration).
      let deadline: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        Promise.all(workers.map((w) => w.close().catch(logFailure(logger, 'Closing a worker failed')))).then(
          () => true,
        ),
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
      for (const q of Object.values(queues))
        await q.close().catch(logFailure(logger, 'Closing a queue failed'));
      await closeServer(server);
      workerRedis?.disconnect();
      redis.disconnect();
      logger.info({ drained }, 'flightdeck stopped');
      return { drained };
    },
  };
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

/**
 * The Docker side of the environments: one client per distinct endpoint (not per environment),
 * created when first needed, so a web replica never opens one nor reads TLS files.
 */
function dockerClients(config: FlightdeckConfig) {
  const clients = new Map<string, Docker>();
  const swarms = new Map<string, Swarm>();
  const dockerFor = (env: string): Docker => {
    const endpoint = dockerEndpointOf(config, env);
    const key = endpointKey(endpoint);
    let docker = clients.get(key);
    if (!docker) {
      docker = createDocker(endpoint);
      clients.set(key, docker);
    }
    return docker;
  };
  const swarmFor = (env: string): Swarm => {
    let swarm = swarms.get(env);
    if (!swarm) {
      swarm = new Swarm(dockerFor(env), `${env}'s Docker endpoint ${dockerEndpointOf(config, env).host}`);
      swarms.set(env, swarm);
    }
    return swarm;
  };
  // Short: a command waits for this before it answers.
  const dockerDown = async (env: string): Promise<string | undefined> => {
    try {
      await pingDocker(dockerFor(env), 2_000);
      return undefined;
    } catch (err) {
      return dockerDownMessage(config, env, reasonOf(err));
    }
  };
  return { dockerFor, swarmFor, dockerDown };
}

/**
 * ECONNREFUSED, ENOENT, ENOTFOUND… for a connection that could not be made, "no answer in time"
 * for a timeout, else the message (a TLS refusal says more in words than in its code).
 */
function reasonOf(err: unknown): string {
  const e = err as { name?: string; code?: string; syscall?: string; message?: string };
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'no answer in time';
  if (e.code && (e.syscall === 'connect' || e.syscall === 'getaddrinfo')) return e.code;
  return e.message ?? String(err);
}

/**
 * A worker's /readyz entries for each environment's Docker endpoint, nginx and Prometheus (see
 * readinessParts for the names). A part several environments share is checked once per run.
 */
function infrastructureChecks(
  config: FlightdeckConfig,
  infra: ReturnType<typeof dockerClients>,
  nginxes: ReadonlyMap<string, Nginx>,
): Record<string, Check> {
  const once = sharedChecks();
  const checks: Record<string, Check> = {};
  for (const part of readinessParts(config, 'docker', (env) => dockerEndpointOf(config, env), endpointKey)) {
    const env = part.environments[0] as string;
    checks[part.name] = once(`docker ${part.key}`, () =>
      pingDocker(infra.dockerFor(env), 1_500).catch((err: unknown) => {
        throw new Error(`${part.value.host} does not answer (${reasonOf(err)})`);
      }),
    );
  }
  const groupOf = new Map(nginxGroups(config).flatMap((g) => g.environments.map((env) => [env, g])));
  for (const part of readinessParts(
    config,
    'nginx',
    (env) => groupOf.get(env),
    (g) => g.id,
  )) {
    const nginx = nginxes.get(part.value.id);
    if (nginx) checks[part.name] = once(`nginx ${part.key}`, () => nginx.probe());
  }
  for (const part of readinessParts(
    config,
    'prometheus',
    (env) => prometheusOf(config, env),
    (u) => u,
  )) {
    checks[part.name] = once(`prometheus ${part.key}`, async () => {
      await instantQuery(part.value, '1', 1_500);
    });
  }
  return checks;
}
