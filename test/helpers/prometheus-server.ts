import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
  path?: string;
}

/** A real Prometheus of the test's own, scraping the given targets every second. */
export class TestPrometheus {
  private proc?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'fd-prom-'));
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(targets: ScrapeTarget[]): Promise<this> {
    this.port = await freePort();
    // A `job` label names the scrape job (Prometheus sets `job` from job_name).
    const jobs = targets.map((t, i) => {
      const { job, ...labels } = t.labels;
      return {
        job_name: job ?? `t${i}`,
        scrape_interval: '1s',
        metrics_path: t.path ?? '/metrics',
        static_configs: [{ targets: [t.address], labels }],
      };
    });
    writeFileSync(
      join(this.dir, 'prometheus.yml'),
      JSON.stringify({ global: { scrape_interval: '1s' }, scrape_configs: jobs }),
    );
    this.proc = spawn(
      'prometheus',
      [
        `--config.file=${join(this.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
      ],
      { stdio: 'ignore' },
    );
    await waitFor(async () => (await fetch(`${this.url}/-/ready`)).ok, {
      timeoutMs: 30_000,
      what: 'prometheus',
    });
    return this;
  }

  async query(q: string): Promise<number[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
    return body.data.result.map((r) => Number(r.value[1])).filter((v) => !Number.isNaN(v));
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
