/**
 * Scenario 3: wrk at full speed through nginx while a release goes 10 → 50 → 100 and is rolled
 * back, with keep-alive clients and with clients that close every connection; once with the
 * reload driver and once with the Lua driver. Baseline: the same load with no traffic change.
 */

import { LUA_MODULES } from '../../test/helpers/nginx-server.js';
import { releaseIds, soakingAt, waitRelease } from '../../test/helpers/release.js';
import { TestStack } from '../../test/helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from '../../test/helpers/swarm.js';
import type { Row, ScenarioResult } from '../lib/result.js';
import { untilServing } from '../lib/serving.js';
import { round, sleep } from '../lib/stats.js';
import { Wrk, type WrkSummary } from '../lib/wrk.js';

const CONNECTIONS = 8;
const STEADY_MS = 5_000;

type Load = { keepAlive: WrkSummary; close: WrkSummary };

async function underLoad(url: string, during: () => Promise<void>): Promise<Load> {
  const keepAlive = new Wrk(url, { connections: CONNECTIONS, close: false }).start();
  const close = new Wrk(url, { connections: CONNECTIONS, close: true }).start();
  try {
    await sleep(500); // both at full speed before anything changes
    await during();
    await sleep(500);
  } catch (err) {
    await Promise.allSettled([keepAlive.stop(), close.stop()]);
    throw err;
  }
  return { keepAlive: await keepAlive.stop(), close: await close.stop() };
}

async function oneDriver(driver: 'reload' | 'lua', basePort: number) {
  const stack = new TestStack({ prefix: `fdbench${driver === 'lua' ? 'tl' : 'tr'}`, basePort });
  stack.nginx.logLevel = 'notice'; // so reloads() can count them
  if (driver === 'lua') stack.nginx.modules = LUA_MODULES;
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg.nginx, { driver });
      // Under full load a health check can take seconds on two shared cores; the suite's 1 s
      // would roll the release back (rightly) and end the measurement early.
      cfg.release.healthCheck.timeout = '5s';
    },
  });
  const names = await createStagingColourServices(stack, 'api');
  const url = `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;
  try {
    const steady = await underLoad(url, () => sleep(STEADY_MS));
    const reloadsBefore = stack.nginx.reloads();
    const started = performance.now();
    const shift = await underLoad(url, async () => {
      const seen = stack.emulator.ephemeralsFor('U0DEV').length;
      await stack.driver.command('/deploy', 'api 1.1.0');
      const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /releasing/));
      for (const percent of [10, 50, 100]) {
        await waitRelease(stack, id as string, soakingAt(percent), `soaking at ${percent}%`);
        await sleep(1_000); // a second of load at each split
        if (percent < 100) await stack.driver.command('/deploy', 'promote api');
      }
      await stack.driver.command('/rollback', 'api');
      await waitRelease(stack, id as string, (r) => r.status === 'rolled_back', 'rolled back');
      await untilServing(url, 'blue');
    });
    return {
      steady,
      shift,
      shiftSeconds: round((performance.now() - started) / 1000, 1),
      reloads: stack.nginx.reloads() - reloadsBefore,
    };
  } finally {
    await stack.stop();
    await removeServicesAndWait(names);
  }
}

export async function trafficShift(): Promise<ScenarioResult> {
  const reload = await oneDriver('reload', 30200);
  const lua = await oneDriver('lua', 30300);
  const rows: Row[] = [];
  for (const [name, r] of [
    ['reload', reload],
    ['lua', lua],
  ] as const) {
    for (const mode of ['keepAlive', 'close'] as const) {
      const s = r.shift[mode];
      const b = r.steady[mode];
      rows.push({
        scenario: `3. Traffic 10→50→100→rollback under wrk, ${mode === 'keepAlive' ? 'keep-alive' : 'connection-close'} clients, nginx.driver ${name} (${r.reloads} reloads)`,
        flightdeck: `${s.failed} failed of ${s.requests.toLocaleString('en')} (${Math.round(s.requests / s.seconds)}/s)`,
        baseline: `no traffic change: ${b.failed} failed of ${b.requests.toLocaleString('en')} (${Math.round(b.requests / b.seconds)}/s)`,
        ratio: `${s.failed} vs ${b.failed}`,
        target: '0 failed',
        met: s.failed === 0,
      });
    }
  }
  return { id: 'traffic', rows, raw: { connections: CONNECTIONS, reload, lua } };
}
