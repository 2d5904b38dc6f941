import { writeFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type AuditEntry, AuditLog } from '../../src/audit/audit-log.js';
import { SlackDriver } from '../../tools/slack-emulator/driver.js';
import { type EmulatorOptions, SlackEmulator } from '../../tools/slack-emulator/emulator.js';
import {
  initialUpstreams,
  proxyLocations,
  type TestConfig,
  type TestConfigOptions,
  testConfig,
} from './config.js';
import { FlightdeckProcess, SIGNING_SECRET } from './flightdeck-process.js';
import { TestNginx } from './nginx-server.js';
import { waitFor } from './ports.js';
import { TestRedis } from './redis-server.js';

/** Everything one suite needs: its own Redis and nginx, the Slack emulator, flightdeck over HTTP. */
export class TestStack {
  readonly redis = new TestRedis();
  readonly nginx = new TestNginx();
  emulator!: SlackEmulator;
  driver!: SlackDriver;
  readonly apps: FlightdeckProcess[] = [];
  client!: Redis;
  queue!: Queue;
  releaseQueue!: Queue;
  audit!: AuditLog;
  config!: TestConfig;
  private appEnv: Record<string, string> = {};

  constructor(private readonly configOptions: TestConfigOptions = {}) {}

  get prefix(): string {
    return this.configOptions.prefix ?? 'fdtest';
  }

  async start(
    opts: {
      emulator?: EmulatorOptions;
      roles?: Array<'all' | 'web' | 'worker'>;
      configure?: (cfg: TestConfig) => void;
      env?: Record<string, string>;
      /** Only these environments' services go through the stack's nginx (the others have their own). */
      nginxEnvironments?: string[];
    } = {},
  ): Promise<this> {
    this.appEnv = opts.env ?? {};
    await this.redis.start();
    // nginx needs the config's upstreams and the config needs nginx's paths: render from a draft.
    const draft = testConfig(
      { upstreamFile: '', testCommand: [], reloadCommand: [], probeUrl: '', statusListen: '' },
      this.configOptions,
    );
    opts.configure?.(draft);
    const only = opts.nginxEnvironments;
    const proxied: TestConfig = only
      ? {
          ...draft,
          environments: Object.fromEntries(
            Object.entries(draft.environments).filter(([e]) => only.includes(e)),
          ),
        }
      : draft;
    await this.nginx.start(proxyLocations(proxied), initialUpstreams(proxied));
    this.emulator = await new SlackEmulator(opts.emulator).start();
    this.config = testConfig(this.nginx, this.configOptions);
    opts.configure?.(this.config);
    for (const role of opts.roles ?? ['all']) await this.addApp(role);
    this.driver = new SlackDriver(this.emulator, this.apps[0]?.url ?? '', SIGNING_SECRET);
    this.client = this.redis.client();
    this.queue = new Queue('commands', { connection: this.redis.client(), prefix: this.prefix });
    this.releaseQueue = new Queue('releases', { connection: this.redis.client(), prefix: this.prefix });
    this.audit = new AuditLog(this.client, this.prefix);
    return this;
  }

  async addApp(role: 'all' | 'web' | 'worker', env: Record<string, string> = {}): Promise<FlightdeckProcess> {
    const app = new FlightdeckProcess({
      config: this.config,
      redisUrl: this.redis.url,
      slackApiUrl: this.emulator.apiUrl,
      botToken: this.emulator.botToken,
      role,
      env: { ...this.appEnv, ...env },
    });
    this.apps.push(app);
    await app.start();
    return app;
  }

  /** Jobs in the command queue in any state. */
  async jobCount(): Promise<number> {
    const counts = await this.queue.getJobCounts();
    return Object.values(counts).reduce((a, b) => a + b, 0);
  }

  /** Jobs (any state) whose command text is exactly `text`. */
  async jobsFor(text: string, command?: string): Promise<number> {
    const jobs = await this.queue.getJobs([
      'waiting',
      'active',
      'completed',
      'failed',
      'delayed',
      'prioritized',
    ]);
    return jobs.filter(
      (j) => j?.data?.text === text.trim() && (!command || `/${j.data.parsed?.command}` === command),
    ).length;
  }

  /** Jobs (any state) in the rollback lane for one service. */
  async rollbackJobsFor(environment: string, service: string): Promise<number> {
    const q = new Queue('rollbacks', { connection: this.redis.client(), prefix: this.prefix });
    try {
      const jobs = await q.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized']);
      return jobs.filter((j) => j?.data?.environment === environment && j.data.service === service).length;
    } finally {
      await q.close();
    }
  }

  async auditFor(requestText: string): Promise<AuditEntry[]> {
    return (await this.audit.recent(500)).filter((e) => e.text === requestText);
  }

  /** Waits for the worker's answer to a command (via response_url or the channel). */
  async answerTo(user: string, afterCount: number, match?: RegExp): Promise<string> {
    return waitFor(
      () => {
        const mine = this.emulator
          .ephemeralsFor(user)
          .slice(afterCount)
          .filter((e) => e.via !== 'ack');
        const hit = mine.find((e) => !match || match.test(e.text));
        return hit?.text;
      },
      // A guard, not an expectation: on a loaded 2-core machine a worker's answer can take many seconds.
      { timeoutMs: 60_000, what: `an answer for ${user}${match ? ` matching ${match}` : ''}` },
    );
  }

  async stop(): Promise<void> {
    // Keep each app's log for a failed run (vitest shows only assertions).
    for (const [i, a] of this.apps.entries())
      writeFileSync(`/tmp/flightdeck-test-${this.prefix}-${i}.log`, a.output);
    await this.queue?.close().catch(() => {});
    await this.releaseQueue?.close().catch(() => {});
    this.client?.disconnect();
    for (const app of this.apps) await app.destroy();
    await this.emulator?.stop();
    this.nginx.destroy();
    await this.redis.destroy();
  }
}
