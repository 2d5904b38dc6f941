import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** wrk's own counters: requests done and each kind of failure (status = non-2xx/3xx answers). */
export interface WrkSummary {
  requests: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  seconds: number;
  failed: number;
}

// wrk calls done() once at the end; print its counters as one JSON line.
const DONE_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"us":%d}\\n',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout, summary.duration))
end
`;

/** wrk at full speed until stop(); `close` makes every request ask for a fresh connection. */
export class Wrk {
  private proc?: ChildProcess;
  private out = '';
  private exited?: Promise<void>;
  private dir?: string;

  constructor(
    private readonly url: string,
    private readonly opts: { connections: number; close: boolean; threads?: number },
  ) {}

  start(): this {
    this.dir = mkdtempSync(join(tmpdir(), 'fdbench-wrk-'));
    const script = join(this.dir, 'done.lua');
    writeFileSync(script, DONE_LUA);
    const args = [
      `-t${this.opts.threads ?? 1}`,
      `-c${this.opts.connections}`,
      '-d600s', // stopped with SIGINT long before this
      '--timeout',
      '5s',
      '-s',
      script,
      ...(this.opts.close ? ['-H', 'Connection: close'] : []),
      this.url,
    ];
    const proc = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    return this;
  }

  /** SIGINT: wrk stops and prints its summary. */
  async stop(): Promise<WrkSummary> {
    this.proc?.kill('SIGINT');
    await this.exited;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    const line = /WRK (\{.*\})/.exec(this.out)?.[1];
    if (!line) throw new Error(`wrk printed no summary:\n${this.out.slice(-2000)}`);
    const j = JSON.parse(line) as Omit<WrkSummary, 'seconds' | 'failed'> & { us: number };
    return {
      requests: j.requests,
      connect: j.connect,
      read: j.read,
      write: j.write,
      status: j.status,
      timeout: j.timeout,
      seconds: j.us / 1e6,
      failed: j.connect + j.read + j.write + j.status + j.timeout,
    };
  }
}
