import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './ports.js';

/** A real redis-server of the test's own, on a free loopback port, AOF on; removed on stop. */
export class TestRedis {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'fd-redis-'));
  port = 0;

  /** `host`: where to listen (default loopback); `password`: requirepass. */
  constructor(private readonly opts: { host?: string; password?: string } = {}) {}

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  async start(port?: number): Promise<this> {
    this.port = port ?? this.port ?? (await freePort());
    if (!this.port) this.port = await freePort();
    this.proc = spawn(
      'redis-server',
      [
        '--bind',
        this.host,
        ...(this.opts.password ? ['--requirepass', this.opts.password] : []),
        '--port',
        String(this.port),
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      async () => {
        const r = new Redis(this.url, {
          password: this.opts.password,
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        r.on('error', () => {});
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } finally {
          r.disconnect();
        }
      },
      { what: 'redis-server' },
    );
    return this;
  }

  /** Stop the server (the data directory stays, so start() brings the same data back). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  client(): Redis {
    const r = new Redis(this.url, { maxRetriesPerRequest: 1, password: this.opts.password });
    r.on('error', () => {});
    return r;
  }
}
