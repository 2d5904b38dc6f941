import type { ScenarioResult } from './result.js';

/** The markdown table of one run. */
export function renderReport(run: { at: string; seconds: number; results: ScenarioResult[] }): string {
  const lines = [
    `# flightdeck benchmarks (${run.at}, ${run.seconds} s)`,
    '',
    'Each figure against a baseline measured in the same run. Method and explanations: [docs/benchmarks.md](../../docs/benchmarks.md).',
    '',
    '| Scenario | flightdeck | baseline (same run) | ratio | target | met |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of run.results) {
    for (const row of r.rows) {
      const met = row.met === undefined ? '' : row.met ? 'yes' : 'no';
      lines.push(
        `| ${row.scenario} | ${row.flightdeck} | ${row.baseline} | ${row.ratio} | ${row.target} | ${met} |`,
      );
    }
    if (r.error)
      lines.push(`| ${r.id}: did not finish | ${r.error.replace(/\|/g, '/').split('\n')[0]} | | | | no |`);
  }
  return `${lines.join('\n')}\n`;
}
