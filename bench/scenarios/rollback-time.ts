/** Scenario 4: /rollback (from the ack) until nginx serves 100% on the stable colour, vs writing and reloading by hand. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { renderUpstreams } from '../../src/integrations/nginx.js';
import { initialUpstreams, type TestConfig } from '../../test/helpers/config.js';
import { waitFor } from '../../test/helpers/ports.js';
import { releaseIds, soakingAt, waitRelease } from '../../test/helpers/release.js';
import { TestStack } from '../../test/helpers/stack.js';
import { createColourServices, removeServicesAndWait } from '../../test/helpers/swarm.js';
import { ms, type ScenarioResult, times } from '../lib/result.js';
import { untilServing } from '../lib/serving.js';
import { median, round, sleep } from '../lib/stats.js';

/** The upstream file an operator writes by hand: `api` at `green`% green, the rest as flightdeck starts. */
export function handWrittenUpstreams(cfg: TestConfig, env: string, svc: string, green: number): string {
  const s = cfg.environments[env]?.services[svc];
  if (!s) throw new Error(`no ${env}/${svc}`);
  const name = `flightdeck_${env}_${svc}`.replace(/-/g, '_');
  const block = renderUpstreams(
    [
      {
        name,
        servers: [
          { colour: 'blue', address: s.blue.address, weight: 100 - green },
          { colour: 'green', address: s.green.address, weight: green },
        ],
      },
    ],
    'raw',
  )
    .replace(/^#.*\n/gm, '')
    .trim();
  return initialUpstreams(cfg).replace(new RegExp(`upstream ${name} \\{[^}]*\\}`), block);
}

export async function rollbackTime(): Promise<ScenarioResult> {
  const stack = await new TestStack({ prefix: 'fdbenchrb', basePort: 30100 }).start();
  const api = stack.config.environments.staging?.services.api;
  if (!api) throw new Error('no api');
  const names = await createColourServices([api]);
  const url = `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;
  const run = (argv: string[]) => execFileSync(argv[0] as string, argv.slice(1));
  const ours: number[] = [];
  const raw: number[] = [];
  try {
    // Five runs: single rollbacks vary several-fold here (a worker's wake-up, a lock in use), so the
    // median of three moved a lot between runs.
    for (let i = 0; i < 5; i++) {
      const seen = stack.emulator.ephemeralsFor('U0DEV').length;
      await stack.driver.command('/deploy', 'api 1.1.0');
      const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
      await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
      const sent = await stack.driver.command('/rollback', 'api');
      const started = performance.now() - sent.ms; // from the moment the command left "Slack"
      await untilServing(url, 'blue');
      ours.push(performance.now() - started);
      await waitRelease(stack, id as string, (r) => r.status === 'rolled_back', 'rolled back');
      await waitFor(
        async () =>
          (await fetch(`http://${api.green.address}/version`).then((r) => r.text())).trim() === '1.0.0',
        { timeoutMs: 60_000 },
      );

      // The same switch by hand: render 90/10, reload, then time the move to 100% blue.
      writeFileSync(stack.nginx.upstreamFile, handWrittenUpstreams(stack.config, 'staging', 'api', 10));
      run(stack.nginx.reloadCommand);
      await sleep(500);
      const t0 = performance.now();
      writeFileSync(stack.nginx.upstreamFile, handWrittenUpstreams(stack.config, 'staging', 'api', 0));
      run(stack.nginx.testCommand);
      run(stack.nginx.reloadCommand);
      await untilServing(url, 'blue');
      raw.push(performance.now() - t0);
      await stack.apps[0]?.stop(); // flightdeck re-renders its own file when it starts again
      await stack.apps[0]?.start();
    }
  } finally {
    await stack.stop();
    await removeServicesAndWait(names);
  }
  const r = {
    flightdeckMs: round(median(ours), 1),
    rawSwitchMs: round(median(raw), 1),
    ratio: round(median(ours) / median(raw)),
    runs: ours.map((x) => round(x, 1)),
    rawRuns: raw.map((x) => round(x, 1)),
  };
  return {
    id: 'rollback',
    raw: r,
    rows: [
      {
        scenario: `4. Rollback: command sent → nginx serving 100% stable (median of ${ours.length})`,
        flightdeck: ms(r.flightdeckMs),
        baseline: `write + nginx -t + reload by hand: ${ms(r.rawSwitchMs)}`,
        ratio: times(r.ratio),
        target: '≤ ×2',
        met: r.ratio <= 2,
      },
    ],
  };
}
