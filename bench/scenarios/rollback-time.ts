/**
 * Scenario 4: /rollback (sent) until nginx serves 100% on the stable colour, with each nginx driver,
 * vs what the seed's script does by hand: write the upstream file, `nginx -t`, `nginx -s reload`.
 * The hand-run switch has its own upstream and server in the same nginx, in front of the same
 * Swarm tasks, and is probed the same way. Where flightdeck's time goes is broken down per step
 * from the jobs' own timestamps in Redis and the release record.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { requestIdOf } from '../../src/listeners/commands/slash-command.js';
import { LUA_MODULES } from '../../test/helpers/nginx-server.js';
import { freePort, waitFor } from '../../test/helpers/ports.js';
import { releaseIds, soakingAt, waitRelease } from '../../test/helpers/release.js';
import { TestStack } from '../../test/helpers/stack.js';
import { createColourServices, removeServicesAndWait } from '../../test/helpers/swarm.js';
import { handRunConf } from '../lib/hand-run.js';
import { ms, type Row, type ScenarioResult, times } from '../lib/result.js';
import { untilServing } from '../lib/serving.js';
import { median, round } from '../lib/stats.js';

const RUNS = 5;
type Driver = 'reload' | 'lua';
/** Where one rollback's time went, in ms, from the moment the command left "Slack". */
interface Breakdown {
  ack: number;
  /** Listener until a worker holds the job (the command lane, then the rollback lane if both). */
  toWorker: number;
  /** Worker start until the new weights are applied (claim, state, nginx apply). */
  worker: number;
  /** Applied until 20 fresh requests in a row answer the stable colour. */
  serving: number;
  total: number;
}

/** The hand-run script's file: `api` at `greenWeight`% green, in the same nginx, on `port`. */
const handFile = (port: number, blue: string, green: string, greenWeight: number) =>
  handRunConf({
    upstream: 'fdbench_hand',
    listenPort: port,
    servers: [
      { colour: 'blue', address: blue, weight: 100 - greenWeight },
      { colour: 'green', address: green, weight: greenWeight },
    ],
  });

async function oneDriver(driver: Driver, basePort: number) {
  const stack = new TestStack({ prefix: `fdbenchrb${driver === 'lua' ? 'l' : 'r'}`, basePort });
  if (driver === 'lua') stack.nginx.modules = LUA_MODULES;
  await stack.start({ configure: (cfg) => Object.assign(cfg.nginx, { driver }) });
  const api = stack.config.environments.staging?.services.api;
  if (!api) throw new Error('no api');
  const names = await createColourServices([api]);
  const rollbacks = new Queue('rollbacks', { connection: stack.redis.client(), prefix: stack.prefix });
  const url = `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;
  const handPort = await freePort();
  const handUrl = `http://127.0.0.1:${handPort}/colour`;
  const hand = join(stack.nginx.prefix, 'conf.d', 'fdbench-hand.conf');
  const nginx = (argv: string[]) => execFileSync(argv[0] as string, argv.slice(1));
  const ours: Breakdown[] = [];
  const raw: number[] = [];
  try {
    writeFileSync(hand, handFile(handPort, api.blue.address, api.green.address, 0));
    nginx(stack.nginx.reloadCommand);
    await untilServing(handUrl, 'blue');
    for (let i = 0; i < RUNS; i++) {
      const seen = stack.emulator.ephemeralsFor('U0DEV').length;
      await stack.driver.command('/deploy', 'api 1.1.0');
      const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
      await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
      const t0 = performance.now();
      const sent = await stack.driver.command('/rollback', 'api');
      const sentAt = Date.now() - (performance.now() - t0);
      await untilServing(url, 'blue');
      const servingAt = Date.now();
      const r = await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'rolled back');
      const requestId = requestIdOf({
        team_id: stack.emulator.teamId,
        trigger_id: sent.triggerId,
        user_id: 'U0DEV',
      });
      // The rollback lane's job of this request (rollbackJobId: request id and service).
      const rbJob = await rollbacks.getJob(`${requestId}-api`);
      const requestedAt = rbJob?.data.requestedAt as number;
      const appliedAt = requestedAt + (r.rollback?.trafficSwitchMs ?? Number.NaN);
      const pickedAt = rbJob?.processedOn ?? Number.NaN;
      ours.push({
        ack: sent.ms,
        toWorker: pickedAt - requestedAt,
        worker: appliedAt - pickedAt,
        serving: servingAt - appliedAt,
        total: servingAt - sentAt,
      });
      const last = ours[ours.length - 1] as Breakdown;
      process.stdout.write(
        `[bench] rollback ${i + 1}/${RUNS} (${driver} driver): ${Math.round(last.total)} ms to serving stable\n`,
      );
      await waitFor(
        async () =>
          (await fetch(`http://${api.green.address}/version`).then((x) => x.text())).trim() === '1.0.0',
        { timeoutMs: 60_000 },
      );

      // The same switch by hand: 90/10 first (as a release at 10% would be), then time the move to 100% blue.
      writeFileSync(hand, handFile(handPort, api.blue.address, api.green.address, 10));
      nginx(stack.nginx.reloadCommand);
      await untilServing(handUrl, 'green', { streak: 1 });
      const h0 = performance.now();
      writeFileSync(hand, handFile(handPort, api.blue.address, api.green.address, 0));
      nginx(stack.nginx.testCommand);
      nginx(stack.nginx.reloadCommand);
      await untilServing(handUrl, 'blue');
      raw.push(performance.now() - h0);
    }
  } finally {
    await rollbacks.close();
    await stack.stop();
    await removeServicesAndWait(names);
  }
  const med = (k: keyof Breakdown) => round(median(ours.map((b) => b[k])), 1);
  return {
    driver,
    flightdeckMs: med('total'),
    handMs: round(median(raw), 1),
    ratio: round(med('total') / median(raw)),
    /** Median of each step over the runs (the steps' medians need not add up to the total's). */
    stepMs: { ack: med('ack'), toWorker: med('toWorker'), worker: med('worker'), serving: med('serving') },
    runs: ours.map((b) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, round(v, 1)]))),
    handRuns: raw.map((x) => round(x, 1)),
  };
}

export async function rollbackTime(): Promise<ScenarioResult> {
  const lua = await oneDriver('lua', 30100);
  const reload = await oneDriver('reload', 30150);
  const row = (r: typeof lua, target?: number): Row => ({
    scenario: `4. Rollback: /rollback sent → nginx serving 100% stable, nginx.driver ${r.driver} (median of ${RUNS})`,
    flightdeck: `${ms(r.flightdeckMs)} (ack ${ms(r.stepMs.ack)}, to worker ${ms(r.stepMs.toWorker)}, worker ${ms(r.stepMs.worker)}, nginx serving ${ms(r.stepMs.serving)})`,
    baseline: `write + nginx -t + reload by hand: ${ms(r.handMs)}`,
    ratio: times(r.ratio),
    target:
      target === undefined ? 'reported (the same reload as by hand, plus the path to it)' : `≤ ×${target}`,
    met: target === undefined ? undefined : r.ratio <= target,
  });
  return {
    id: 'rollback',
    raw: { lua, reload },
    rows: [row(lua, 0.5), row(reload)],
  };
}
