import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { upstreamName } from '../../../src/integrations/nginx.js';
import { SlackDriver } from '../../../tools/slack-emulator/driver.js';
import { SlackEmulator } from '../../../tools/slack-emulator/emulator.js';
import { createEdgeUser, EDGE_PASSWORD } from '../../helpers/edge.js';
import { FlightdeckProcess, SIGNING_SECRET } from '../../helpers/flightdeck-process.js';
import {
  cleanupBed,
  ensureMultinode,
  type Multinode,
  testLabels,
  uniqueId,
} from '../../helpers/multinode.js';
import { freePort, waitFor } from '../../helpers/ports.js';
import { TestRedis } from '../../helpers/redis-server.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
export const HOST = '10.77.0.1'; // the bridge's host side: Redis, the Slack emulator
const REDIS_PASSWORD = 'multinode-redis-password';
const EDGE_PORT = 8080;
const SECOND = 1_000_000_000;

export interface EdgeBedOptions {
  /** Staging services (each gets blue and green, 2 tasks each, one per node). */
  services?: string[];
  edges?: number;
  /** Extra config merged over the generated one (e.g. another environment). */
  configure?: (cfg: Record<string, any>, bed: EdgeBed) => void | Promise<void>;
  /** Extra mounts for the worker container (e.g. the host's Docker socket for another Swarm). */
  workerMounts?: Array<{ source: string; target: string }>;
}

/**
 * flightdeck on the 3-node bed the way the seed runs it: nginx edges (2 replicas, nodes labelled
 * flightdeck.edge, no Docker socket) pulling weights from Redis, colour services reached by name on
 * an overlay network, images from the bed's registry, the flightdeck worker in a container on the
 * manager (node 1, its socket), the web role and the Slack emulator on the host.
 */
export class EdgeBed {
  readonly id = uniqueId('fdmn');
  readonly group = 'fdmn';
  readonly redis = new TestRedis({ host: HOST, password: REDIS_PASSWORD });
  readonly dir = mkdtempSync(join(tmpdir(), 'fd-edgebed-'));
  bed!: Multinode;
  emulator!: SlackEmulator;
  driver!: SlackDriver;
  web!: FlightdeckProcess;
  client!: Redis;
  config!: Record<string, any>;
  workerPort = 0;
  readonly network: string;
  readonly edgeService: string;
  readonly workerService: string;

  constructor(private readonly opts: EdgeBedOptions = {}) {
    this.network = `${this.id}-backend`;
    this.edgeService = `${this.id}-edge`;
    this.workerService = `${this.id}-worker`;
  }

  get prefix(): string {
    return this.id;
  }

  /** Waits for the worker's answer to a command (via response_url or the channel). */
  async answerTo(user: string, afterCount: number, match?: RegExp): Promise<string> {
    return waitFor(
      () =>
        this.emulator
          .ephemeralsFor(user)
          .slice(afterCount)
          .filter((e) => e.via !== 'ack')
          .find((e) => !match || match.test(e.text))?.text,
      { timeoutMs: 60_000, what: `an answer for ${user}${match ? ` matching ${match}` : ''}` },
    );
  }

  get manager(): Docker {
    return this.bed.docker(1);
  }

  colourService(svc: string, colour: string, env = 'staging'): string {
    return `${this.id}-${env}-${svc}-${colour}`;
  }

  async start(): Promise<this> {
    this.bed = await ensureMultinode();
    await this.redis.start();
    this.client = this.redis.client();
    await createEdgeUser(this.client, this.id, this.group);
    this.emulator = await new SlackEmulator({ host: HOST }).start();
    await this.manager.createNetwork({
      Name: this.network,
      Driver: 'overlay',
      Attachable: true,
      Labels: testLabels(this.id),
    });
    const services = this.opts.services ?? ['api'];
    for (const svc of services)
      for (const colour of ['blue', 'green']) await this.createColour(svc, colour, '1.0.0');

    this.workerPort = await freePort();
    this.config = {
      timezone: 'UTC',
      defaultEnvironment: 'staging',
      redis: { prefix: this.id },
      docker: { socketPath: '/var/run/docker.sock' },
      nginx: {
        driver: 'edge',
        upstreamPrefix: this.group,
        edge: {
          redis: {
            host: HOST,
            port: this.redis.port,
            user: 'edge',
            passwordFile: '/run/secrets/edge_redis_password',
          },
          resolvers: ['127.0.0.11'],
          staleAfter: '3s',
          confirmTimeout: '20s',
          minReplicas: 1,
        },
      },
      channels: { releases: 'C0RELEASES', alerts: 'C0ALERTS' },
      access: { leads: ['U0LEAD'] },
      jobs: { lockDuration: '10s' },
      release: {
        steps: [10, 50, 100],
        soak: ['1h', '1h', '1h'],
        convergeTimeout: '120s',
        pollInterval: '500ms',
        healthCheck: { attempts: 3, interval: '500ms', timeout: '2s' },
      },
      environments: {
        staging: {
          deployers: ['*'],
          services: Object.fromEntries(
            services.map((svc) => [
              svc,
              {
                image: `${this.bed.registry}/flightdeck/testapp`,
                port: 8080,
                healthPath: '/health',
                blue: {
                  swarmService: this.colourService(svc, 'blue'),
                  address: `tasks.${this.colourService(svc, 'blue')}:8080`,
                },
                green: {
                  swarmService: this.colourService(svc, 'green'),
                  address: `tasks.${this.colourService(svc, 'green')}:8080`,
                },
              },
            ]),
          ),
        },
      },
    };
    await this.opts.configure?.(this.config, this);
    writeFileSync(
      join(this.dir, 'flightdeck.yml'),
      stringify({ ...this.config, server: { port: 3000, host: '0.0.0.0' } }),
    );
    await this.startEdges(this.opts.edges ?? 2);
    await this.startWorker();
    this.web = new FlightdeckProcess({
      config: this.config,
      redisUrl: this.redis.url,
      slackApiUrl: this.emulator.apiUrl,
      botToken: this.emulator.botToken,
      role: 'web',
      env: { REDIS_PASSWORD },
    });
    await this.web.start();
    this.driver = new SlackDriver(this.emulator, this.web.url, SIGNING_SECRET);
    // The worker publishes the weights at start; the edges report once they serve them.
    await this.waitEdgesInSync(this.opts.edges ?? 2, 240_000);
    return this;
  }

  async createColour(svc: string, colour: string, tag: string, env = 'staging'): Promise<void> {
    await createColourService(this.bed, {
      name: this.colourService(svc, colour, env),
      colour,
      tag,
      network: this.network,
      labels: testLabels(this.id),
    });
  }

  /** The edge file as an operator renders it: `flightdeck edge-config` on the same flightdeck.yml. */
  async edgeConfig(): Promise<string> {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/main.ts'), 'edge-config', '--environment', 'staging'],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', FLIGHTDECK_CONFIG: join(this.dir, 'flightdeck.yml') },
      },
    );
    return stdout;
  }

  siteConfig(): string {
    // The environments these edges serve: those without an nginx of their own.
    const envs = this.config.environments as Record<
      string,
      { services: Record<string, unknown>; nginx?: unknown }
    >;
    const locations = Object.entries(envs)
      .filter(([, e]) => !e.nginx)
      .flatMap(([env, e]) =>
        Object.keys(e.services).map(
          (svc) =>
            `  location /${env}/${svc}/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://${upstreamName(this.group, env, svc)}/; }`,
        ),
      );
    return `server {\n  listen ${EDGE_PORT};\n  location = /edge-health { access_by_lua_block { return } return 200 "ok\\n"; }\n${locations.join('\n')}\n}\n`;
  }

  private async startEdges(replicas: number): Promise<void> {
    const labels = testLabels(this.id);
    const conf = await this.manager.createConfig({
      Name: `${this.id}-edge-conf`,
      Labels: labels,
      Data: Buffer.from(await this.edgeConfig()).toString('base64'),
    });
    const site = await this.manager.createConfig({
      Name: `${this.id}-site-conf`,
      Labels: labels,
      Data: Buffer.from(this.siteConfig()).toString('base64'),
    });
    const secret = await this.manager.createSecret({
      Name: `${this.id}-edge-password`,
      Labels: labels,
      Data: Buffer.from(`${EDGE_PASSWORD}\n`).toString('base64'),
    });
    const file = (name: string) => ({ Name: name, UID: '0', GID: '0', Mode: 0o444 });
    await this.manager.createService({
      Name: this.edgeService,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: this.bed.image('nginx-local', '1'),
          // The replica's name in reports and messages: its slot and (a prefix of) its node's ID.
          Hostname: 'edge{{.Task.Slot}}-{{printf "%.6s" .Node.ID}}',
          Configs: [
            {
              File: file('/etc/nginx/flightdeck/edge.conf'),
              ConfigID: conf.id,
              ConfigName: `${this.id}-edge-conf`,
            },
            {
              File: file('/etc/nginx/conf.d/site.conf'),
              ConfigID: site.id,
              ConfigName: `${this.id}-site-conf`,
            },
          ],
          Secrets: [
            {
              File: file('/run/secrets/edge_redis_password'),
              SecretID: secret.id,
              SecretName: `${this.id}-edge-password`,
            },
          ],
          StopSignal: 'SIGQUIT',
          StopGracePeriod: SECOND * 5,
        },
        RestartPolicy: { Condition: 'any', Delay: SECOND / 2 },
        Placement: { Constraints: ['node.labels.flightdeck.edge == true'], MaxReplicas: 1 },
        Networks: [{ Target: this.network }],
      },
      Mode: { Replicated: { Replicas: replicas } },
      EndpointSpec: {
        Mode: 'dnsrr',
        Ports: [{ Protocol: 'tcp', TargetPort: EDGE_PORT, PublishedPort: EDGE_PORT, PublishMode: 'host' }],
      },
    } as never);
  }

  private async startWorker(): Promise<void> {
    const node1 = this.bed.nodes.find((n) => n.index === 1);
    const bind = (source: string, target: string, readOnly = true) => ({
      Type: 'bind',
      Source: source,
      Target: target,
      ReadOnly: readOnly,
    });
    await this.manager.createService({
      Name: this.workerService,
      Labels: testLabels(this.id),
      TaskTemplate: {
        ContainerSpec: {
          Image: this.bed.image('node-base', '20'),
          Dir: '/app',
          Command: ['node', '--import', 'tsx', 'src/main.ts'],
          Env: [
            'FLIGHTDECK_CONFIG=/etc/flightdeck/flightdeck.yml',
            'FLIGHTDECK_ROLE=worker',
            `REDIS_URL=${this.redis.url}`,
            `REDIS_PASSWORD=${REDIS_PASSWORD}`,
            `SLACK_BOT_TOKEN=${this.emulator.botToken}`,
            `SLACK_API_URL=${this.emulator.apiUrl}`,
            'LOG_LEVEL=info',
            'TZ=UTC',
          ],
          // The source tree as it is (the namespaced engines share this machine's filesystem).
          Mounts: [
            bind(ROOT, '/app'),
            bind(this.dir, '/etc/flightdeck'),
            bind('/run/fdmn1.sock', '/var/run/docker.sock', false),
            ...(this.opts.workerMounts ?? []).map((m) => bind(m.source, m.target, false)),
          ],
          StopGracePeriod: SECOND * 10,
        },
        RestartPolicy: { Condition: 'any', Delay: SECOND },
        Placement: { Constraints: [`node.id == ${node1?.id}`] },
        Networks: [{ Target: this.network }],
      },
      Mode: { Replicated: { Replicas: 1 } },
      EndpointSpec: {
        Ports: [{ Protocol: 'tcp', TargetPort: 3000, PublishedPort: this.workerPort, PublishMode: 'host' }],
      },
    } as never);
  }

  /** The worker's own HTTP server (/readyz, /metrics), published on node 1. */
  get workerUrl(): string {
    return `http://${this.bed.nodes.find((n) => n.index === 1)?.address}:${this.workerPort}`;
  }

  edgeUrl(nodeIndex: number, path = '/staging/api/colour'): string {
    return `http://${this.bed.nodes.find((n) => n.index === nodeIndex)?.address}:${EDGE_PORT}${path}`;
  }

  /** Nodes that run an edge task now. */
  async edgeNodes(): Promise<number[]> {
    const tasks = (await this.manager.listTasks({
      filters: { service: [this.edgeService], 'desired-state': ['running'] },
    })) as any[];
    return tasks
      .filter((t) => t.Status?.State === 'running')
      .map((t) => this.bed.nodeById(String(t.NodeID))?.index ?? 0)
      .filter((i) => i > 0)
      .sort();
  }

  /** Until `n` edges report, all serving the published generation, healthy. */
  async waitEdgesInSync(n: number, timeoutMs = 60_000): Promise<void> {
    const { EdgeDriver } = await import('../../../src/integrations/nginx-edge.js');
    const d = new EdgeDriver(this.client, {
      redisPrefix: this.id,
      group: this.group,
      confirmTimeoutMs: 0,
      minReplicas: n,
    });
    await waitFor(
      async () => {
        const s = await d.status();
        return (
          s.desired !== undefined &&
          s.live.length >= n &&
          s.live.every((r) => r.generation === s.desired && r.health === 'ok')
        );
      },
      { timeoutMs, intervalMs: 500, what: `${n} edges serving the published weights` },
    );
  }

  async workerLogs(): Promise<string> {
    try {
      const buf = (await this.manager
        .getService(this.workerService)
        .logs({ stdout: true, stderr: true, follow: false } as never)) as unknown as Buffer;
      return buf.toString();
    } catch (err) {
      return `(no logs: ${(err as Error).message})`;
    }
  }

  async stop(): Promise<void> {
    writeFileSync(`/tmp/flightdeck-test-${this.id}-worker.log`, await this.workerLogs());
    if (this.web) writeFileSync(`/tmp/flightdeck-test-${this.id}-web.log`, this.web.output);
    await this.web?.destroy();
    await cleanupBed(this.bed, this.id);
    this.client?.disconnect();
    await this.emulator?.stop();
    await this.redis.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One colour of a service on the bed: the test app from the registry, 2 tasks on 2 nodes, reached
 * by name (dnsrr) on `network`; Swarm rolls an update start-first and rolls back a failed one.
 */
export async function createColourService(
  bed: Multinode,
  s: { name: string; colour: string; tag: string; network: string; labels: Record<string, string> },
): Promise<void> {
  await bed.docker(1).createService({
    Name: s.name,
    Labels: s.labels,
    TaskTemplate: {
      ContainerSpec: {
        Image: bed.image('testapp', s.tag),
        Env: ['PORT=8080', `COLOUR=${s.colour}`],
        StopGracePeriod: SECOND,
      },
      RestartPolicy: { Condition: 'any', Delay: SECOND / 2 },
      // One task per node: draining a node leaves each colour a task elsewhere.
      Placement: { MaxReplicas: 1 },
      Networks: [{ Target: s.network }],
    },
    Mode: { Replicated: { Replicas: 2 } },
    UpdateConfig: { Parallelism: 1, FailureAction: 'rollback', Monitor: SECOND * 2, Order: 'start-first' },
    RollbackConfig: { Parallelism: 1, FailureAction: 'pause', Monitor: SECOND, Order: 'start-first' },
    EndpointSpec: { Mode: 'dnsrr' },
  } as never);
}

/**
 * Requests through every edge, all the time: what a user behind the load balancers sees. It is also
 * the measurement: an edge's split is deterministic over the requests it gets, so the colours of
 * the probe's next n requests through one edge are that edge's split (nothing else sends to it).
 */
export class Probe {
  failed: string[] = [];
  served = 0;
  private readonly counts = new Map<string, { blue: number; green: number; failed: number }>();
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly urls: () => string[]) {}

  private count(url: string) {
    let c = this.counts.get(url);
    if (!c) {
      c = { blue: 0, green: 0, failed: 0 };
      this.counts.set(url, c);
    }
    return c;
  }

  start(): this {
    this.loops = [0, 1].map(async () => {
      while (!this.stopped) {
        const urls = this.urls();
        if (urls.length === 0) await new Promise((r) => setTimeout(r, 50));
        for (const url of urls) {
          const c = this.count(url);
          const res = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch((e: Error) => e);
          if (res instanceof Error) {
            this.failed.push(`${url}: ${res.message}`);
            c.failed += 1;
            continue;
          }
          const body = (await res.text()).trim();
          if (res.ok && (body === 'blue' || body === 'green')) {
            this.served += 1;
            c[body] += 1;
          } else {
            this.failed.push(`${url}: ${res.status} ${body.slice(0, 80)}`);
            c.failed += 1;
          }
        }
      }
    });
    return this;
  }

  /** Colours of the next n requests the probe sends through `url`. */
  async measure(url: string, n = 100): Promise<{ blue: number; green: number; failed: number }> {
    const start = { ...this.count(url) };
    const total = (c: { blue: number; green: number; failed: number }) => c.blue + c.green + c.failed;
    await waitFor(() => total(this.count(url)) - total(start) >= n, {
      timeoutMs: 120_000,
      intervalMs: 20,
      what: `${n} probe requests through ${url}`,
    });
    const now = this.count(url);
    return { blue: now.blue - start.blue, green: now.green - start.green, failed: now.failed - start.failed };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

/** Colours of n requests through one edge nobody else sends to: { blue, green, failed }. */
export async function splitThrough(
  url: string,
  n = 100,
): Promise<{ blue: number; green: number; failed: number }> {
  const out = { blue: 0, green: 0, failed: 0 };
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    const m = res?.ok ? /(blue|green)$/.exec((await res.text()).trim()) : null;
    if (m) out[m[1] as 'blue' | 'green'] += 1;
    else out.failed += 1;
  }
  return out;
}
