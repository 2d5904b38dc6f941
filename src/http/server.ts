import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { type Logger, logFailure } from '../observability/logger.js';
import { type Check, checkReadiness } from './readiness.js';
import { send } from './send.js';
import { admitSlackBody } from './slack-body.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpServerOptions {
  registry: Registry;
  readinessChecks: Record<string, Check>;
  /** Bolt's request listener for POST /slack/events (web role, HTTP mode), and the signing secret. */
  slack?: { handler: Handler; signingSecret: string };
  /** Extra routes, e.g. the Alertmanager webhook: "POST /alerts/alertmanager". */
  routes?: Record<string, Handler>;
  beforeScrape?: () => Promise<void>;
  logger: Logger;
}

/** One port for Slack, health, readiness and metrics, whatever the role. */
export function createHttpServer(opts: HttpServerOptions): Server & { draining: boolean } {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const key = `${req.method} ${path}`;
    try {
      if (key === 'GET /healthz') return send(res, 200, { status: 'alive' });
      if (key === 'GET /readyz') {
        if (server.draining) return send(res, 503, { ready: false, failing: ['shutting-down'], checks: {} });
        const r = await checkReadiness(opts.readinessChecks);
        return send(res, r.ready ? 200 : 503, r);
      }
      if (key === 'GET /metrics') {
        // Queue gauges may be stale when Redis is slow; the rest of /metrics is still worth serving.
        await opts.beforeScrape?.().catch(logFailure(opts.logger, 'Queue counts for /metrics failed'));
        res.writeHead(200, { 'content-type': opts.registry.contentType });
        res.end(await opts.registry.metrics());
        return;
      }
      const route = opts.routes?.[key];
      if (route) return await route(req, res);
      if (path === '/slack/events' && opts.slack) {
        if (server.draining) return send(res, 503, { error: 'shutting down' });
        if (!(await admitSlackBody(req, res, opts.slack.signingSecret))) return;
        return await opts.slack.handler(req, res);
      }
      send(res, 404, { error: 'not found' });
    } catch (err) {
      opts.logger.error({ err: (err as Error).message, path }, 'HTTP handler failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
    }
  }) as Server & { draining: boolean };
  server.draining = false;
  return server;
}
