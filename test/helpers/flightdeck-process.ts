import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort, waitFor } from './ports.js';

const ROOT = resolve(import.meta.dirname, '../..');

export const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';
/** NGINX_ADMIN_TOKEN of every flightdeck a suite starts (used with nginx.driver: lua). */
export const NGINX_ADMIN_TOKEN = 'test-nginx-admin-token-0123456789';

export interface ProcessOptions {
  config: Record<string, unknown>;
  redisUrl: string;
  slackApiUrl: string;
  botToken: string;
  role?: 'all' | 'web' | 'worker';
  env?: Record<string, string>;
}

/** flightdeck as a user runs it: a separate Node process reading a YAML file, over HTTP. */
export class FlightdeckProcess {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'fd-app-'));
  port = 0;
  output = '';
  /** Set when this helper signals the process, so an exit it did not ask for can be reported. */
  private stopping = false;

  constructor(private readonly opts: ProcessOptions) {}

  /** Environment for the next start(), e.g. failpoints for one run only. */
  setEnv(env: Record<string, string>): this {
    this.opts.env = env;
    return this;
  }

  /** Resolves when the process exits by itself (e.g. at a failpoint). */
  exited(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((r) => p.once('exit', () => r()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The exit code once the process has exited (null while it runs or if a signal ended it). */
  get exitCode(): number | null {
    return this.proc?.exitCode ?? null;
  }

  async start(): Promise<this> {
    this.port = this.port || (await freePort());
    const configPath = join(this.dir, 'flightdeck.yml');
    writeFileSync(
      configPath,
      stringify({ ...this.opts.config, server: { port: this.port, host: '127.0.0.1' } }),
    );
    this.output = '';
    this.proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts')], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        TZ: 'UTC',
        FLIGHTDECK_CONFIG: configPath,
        FLIGHTDECK_ROLE: this.opts.role ?? 'all',
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_BOT_TOKEN: this.opts.botToken,
        SLACK_API_URL: this.opts.slackApiUrl,
        REDIS_URL: this.opts.redisUrl,
        NGINX_ADMIN_TOKEN,
        LOG_LEVEL: 'info',
        ...this.opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    const proc = this.proc;
    this.stopping = false;
    proc.once('exit', (code, signal) => {
      // Failpoints end a process with SIGKILL on purpose; a crash exits with a code.
      if (this.stopping || code === 0 || signal === 'SIGKILL') return;
      // A process that dies mid-suite otherwise shows only as ECONNREFUSED in some later request.
      process.stderr.write(
        `flightdeck on ${this.port} (pid ${proc.pid}) exited by itself: code ${code} signal ${signal}; its last output:\n` +
          `${this.output.slice(-4_000)}\n`,
      );
    });
    await waitFor(
      // An exit ends the wait at once (waitFor would retry a throw until its timeout).
      async () => proc.exitCode !== null || (await fetch(`${this.url}/healthz`)).ok,
      // A guard, not an expectation: start-up takes a second or two, far more on a loaded machine.
      { timeoutMs: 60_000, what: `flightdeck on ${this.port}` },
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- output ---\n${this.output}`);
    });
    if (proc.exitCode !== null) throw new Error(`flightdeck exited (${proc.exitCode}):\n${this.output}`);
    return this;
  }

  /** Graceful stop (SIGTERM), as Swarm does. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** Crash (SIGKILL): no cleanup at all. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    this.stopping = true;
    p.kill(sig);
    await exited;
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs flightdeck with a config and waits for it to exit: for start-up failures. */
export async function runToExit(
  configText: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fd-cfg-'));
  const configPath = join(dir, 'flightdeck.yml');
  writeFileSync(configPath, configText);
  try {
    return await new Promise((resolvePromise) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts')], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          FLIGHTDECK_CONFIG: configPath,
          SLACK_SIGNING_SECRET: SIGNING_SECRET,
          SLACK_BOT_TOKEN: 'xoxb-test',
          REDIS_URL: 'redis://127.0.0.1:1',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      p.stdout.on('data', (d: Buffer) => {
        output += d.toString();
      });
      p.stderr.on('data', (d: Buffer) => {
        output += d.toString();
      });
      // Only a guard against a start that hangs: a config error exits long before, even on a busy machine.
      const timer = setTimeout(() => p.kill('SIGKILL'), 55_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        resolvePromise({ code, output });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
