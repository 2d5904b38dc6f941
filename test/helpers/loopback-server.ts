import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './ports.js';

/** A real server program of the test's own: a temp dir, a loopback port, `/-/ready`, cleaned up after. */
export abstract class LoopbackServer {
  private proc?: ChildProcess;
  readonly dir: string;
  port = 0;

  constructor(name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `fd-${name}-`));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected async run(program: string, args: string[]): Promise<void> {
    this.proc = spawn(program, args, { stdio: 'ignore' });
    await waitFor(async () => (await fetch(`${this.url}/-/ready`)).ok, { timeoutMs: 30_000, what: program });
  }

  async destroy(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
