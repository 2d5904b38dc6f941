import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceStateStore } from '../../../src/releases/service-state-store.js';
import { waitFor } from '../../helpers/ports.js';
import {
  deployRelease,
  measureSplit,
  promoteRelease,
  soakingAt,
  waitProgress,
  waitRelease,
} from '../../helpers/release.js';
import { TestStack } from '../../helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait, waitServing } from '../../helpers/swarm.js';

// The Docker engine restarted in the middle of a release. Serial phase only: restarting dockerd
// kills every Swarm task on the machine (vitest.serial.config.ts).
const ROOT = resolve(import.meta.dirname, '../../..');
const stack = new TestStack({ prefix: 'fdinfd', basePort: 29700 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      // Two retries (2 s, 4 s) of a step that cannot reach the engine, then roll back.
      Object.assign(cfg.release, { maxStepRetries: 2 });
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 300_000);

afterAll(async () => {
  await dockerUp().catch(() => {});
  await stack.stop();
  await removeServicesAndWait(names);
});

const api = () =>
  stack.config.environments.staging?.services.api as NonNullable<
    NonNullable<typeof stack.config.environments.staging>['services']['api']
  >;
const port = (colour: 'blue' | 'green') => Number(api()[colour].address.split(':')[1]);
const url = () => `http://127.0.0.1:${stack.nginx.port}/staging/api/colour`;

const swarmState = () => {
  try {
    return execFileSync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    }).trim();
  } catch {
    return 'down';
  }
};

/** SIGTERM to dockerd, as an operator's restart does; resolves once it has exited. */
async function stopDockerd(): Promise<void> {
  const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  await waitFor(
    () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    },
    { timeoutMs: 120_000, intervalMs: 250, what: 'dockerd to exit' },
  );
}

/** Starts dockerd exactly as scripts/stack.sh does (docker_up), then waits for Swarm to be active. */
async function dockerUp(): Promise<void> {
  if (swarmState() === 'down') {
    const state = process.env.FLIGHTDECK_STACK_DIR ?? join(ROOT, '.stack');
    mkdirSync(state, { recursive: true });
    const log = openSync(join(state, 'dockerd.log'), 'w');
    const d = spawn('setsid', ['dockerd', '--storage-driver=vfs'], {
      env: { ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1' },
      stdio: ['ignore', log, log],
      detached: true,
    });
    d.unref();
  }
  await waitFor(() => swarmState() === 'active', {
    timeoutMs: 180_000,
    intervalMs: 500,
    what: 'dockerd up with Swarm active',
  });
}

const deploy = (text: string) => deployRelease(stack, text);

const promote = () => promoteRelease(stack, 'api');

describe('the Docker engine restarted in the middle of a release', () => {
  it('fails safe: rolled back with a clear message, traffic on the last good colour, lock released; the next release completes', async () => {
    const id = await deploy('api 1.1.0');
    await waitRelease(stack, id, (r) => r.steps[r.stepIndex]?.kind === 'converge', 'converging', 120_000);
    const stopped = Date.now();
    await stopDockerd();
    // Down for longer than the step's retries: the release must not wait for ever.
    const r = await waitRelease(
      stack,
      id,
      (x) => ['rolled_back', 'failed', 'completed'].includes(x.status),
      'to end while the engine is down',
      120_000,
    );
    const endedAfter = Date.now() - stopped;
    expect(r.status).toBe('rolled_back');
    // Unreachable once dockerd has gone; while it shuts down it first leaves the swarm (503).
    const why = /Docker engine (unreachable|not ready: .* is not a Swarm manager right now)/;
    expect(r.outcome).toMatch(why);
    expect(r.steps.find((s) => s.kind === 'shift')?.status).toBe('skipped');
    const message = await waitProgress(stack, id, /Rolled back/);
    expect(message).toMatch(why);
    const readyz = (await (await fetch(`${stack.apps[0]?.url}/readyz`)).json()) as { failing: string[] };
    expect(readyz.failing).toContain('docker');
    const states = new ServiceStateStore(stack.client, stack.prefix);
    const down = await states.get('staging', 'api');
    expect(down.weights).toEqual({ blue: 100, green: 0 });
    expect(down.inFlight).toBeUndefined();

    await dockerUp();
    const downMs = Date.now() - stopped;
    // Swarm starts blue's task again; nginx sends everything there.
    await waitServing(port('blue'), '1.0.0', 180_000);
    const split = await measureSplit(url(), 40);
    expect(split).toEqual({ blue: 40, green: 0, other: 0 });
    await waitFor(async () => (await fetch(`${stack.apps[0]?.url}/readyz`)).status === 200, {
      timeoutMs: 30_000,
      what: '/readyz 200',
    });

    // The engine is back and nothing is held: the same release, asked again, goes through.
    const again = await deploy('api 1.1.0');
    for (const p of [10, 50, 100]) {
      await waitRelease(stack, again, soakingAt(p), `the new release soaking at ${p}%`, 180_000);
      await promote();
    }
    await waitRelease(stack, again, (x) => x.status === 'completed', 'completed');
    expect(await measureSplit(url(), 20)).toEqual({ blue: 0, green: 20, other: 0 });
    console.log(
      `[fault:docker-restart] dockerd stopped while converging: release ${r.status} ${Math.round(endedAfter / 1000)} s later ("${r.outcome}"); engine back after ${Math.round(downMs / 1000)} s; nginx ${split.blue}/40 on blue (last good); lock released; the next /deploy completed`,
    );
  }, 600_000);
});
