/**
 * `npm run bench`: flightdeck's speed and safety, each figure against a baseline measured in the
 * same run (the machine is noisy). Writes bench/results/latest.md and latest.json.
 * `npm run bench -- storm traffic` runs only those scenarios and writes bench/results/partial.*.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderReport } from './lib/report.js';
import type { ScenarioResult } from './lib/result.js';
import { ackLatency } from './scenarios/ack-latency.js';
import { alertStorm } from './scenarios/alert-storm.js';
import { deployAll } from './scenarios/deploy-all.js';
import { edgePropagation } from './scenarios/edge-propagation.js';
import { memoryRss } from './scenarios/memory-rss.js';
import { orchestrationOverhead } from './scenarios/orchestration-overhead.js';
import { redisMemory } from './scenarios/redis-memory.js';
import { rollbackTime } from './scenarios/rollback-time.js';
import { scale } from './scenarios/scale.js';
import { trafficShift } from './scenarios/traffic-shift.js';

const ROOT = resolve(import.meta.dirname, '..');

/** Each scenario with the time it may take on a busy 2-core machine. */
const SCENARIOS: Array<{ id: string; run: () => Promise<ScenarioResult>; limitMs: number }> = [
  { id: 'ack', run: ackLatency, limitMs: 300_000 },
  { id: 'storm', run: alertStorm, limitMs: 300_000 },
  { id: 'traffic', run: trafficShift, limitMs: 200_000 },
  { id: 'rollback', run: rollbackTime, limitMs: 300_000 },
  { id: 'orchestration', run: orchestrationOverhead, limitMs: 240_000 },
  { id: 'scale', run: scale, limitMs: 150_000 },
  { id: 'memory', run: redisMemory, limitMs: 120_000 },
  { id: 'rss', run: memoryRss, limitMs: 420_000 },
  { id: 'edges', run: edgePropagation, limitMs: 150_000 },
  // Creating 102 Swarm services on two cores takes minutes the first time (reused with FDBENCH_KEEP=1).
  { id: 'many', run: deployAll, limitMs: 900_000 },
];

const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = only.filter((id) => !SCENARIOS.some((s) => s.id === id));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.id).join(', ')}\n`,
  );
  process.exit(2);
}

const started = Date.now();
const results: ScenarioResult[] = [];
for (const s of SCENARIOS) {
  if (only.length > 0 && !only.includes(s.id)) continue;
  const t0 = Date.now();
  process.stdout.write(`[bench] ${s.id}…\n`);
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      s.run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`took longer than ${s.limitMs / 1000} s`)), s.limitMs);
      }),
    ]);
    results.push({ ...result, seconds: Math.round((Date.now() - t0) / 1000) });
  } catch (err) {
    // One scenario failing must not hide the others' figures; the table says what failed.
    results.push({
      id: s.id,
      rows: [],
      raw: {},
      error: (err as Error).message,
      seconds: Math.round((Date.now() - t0) / 1000),
    });
  } finally {
    clearTimeout(timer);
  }
  process.stdout.write(`[bench] ${s.id} done in ${Math.round((Date.now() - t0) / 1000)} s\n`);
}

const run = { at: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), results };
const name = only.length > 0 ? 'partial' : 'latest';
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, `bench/results/${name}.json`), `${JSON.stringify(run, null, 2)}\n`);
const table = renderReport(run);
writeFileSync(join(ROOT, `bench/results/${name}.md`), table);
process.stdout.write(`${table}\n`);
process.exit(0);
