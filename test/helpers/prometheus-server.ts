import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoopbackServer } from './loopback-server.js';
import { freePort } from './ports.js';

export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
  path?: string;
}

/** A real Prometheus of the test's own, scraping the given targets every second. */
export class TestPrometheus extends LoopbackServer {
  constructor() {
    super('prom');
  }

  /** `ruleFiles`: rule files to load (absolute paths), evaluated every second. */
  async start(targets: ScrapeTarget[], opts: { ruleFiles?: string[] } = {}): Promise<this> {
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
      JSON.stringify({
        global: { scrape_interval: '1s', ...(opts.ruleFiles ? { evaluation_interval: '1s' } : {}) },
        ...(opts.ruleFiles ? { rule_files: opts.ruleFiles } : {}),
        scrape_configs: jobs,
      }),
    );
    await this.run('prometheus', [
      `--config.file=${join(this.dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(this.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
    ]);
    return this;
  }

  async query(q: string): Promise<number[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
    return body.data.result.map((r) => Number(r.value[1])).filter((v) => !Number.isNaN(v));
  }
}
