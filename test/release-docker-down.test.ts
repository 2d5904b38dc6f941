import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import { releaseIds } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';

// flightdeck pointed at a Docker socket where no engine answers.
const stack = new TestStack({ prefix: 'fdnodock', basePort: 28500 });

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, { docker: { socketPath: '/tmp/flightdeck-no-docker-here.sock' } });
      Object.assign(cfg.release, { maxStepRetries: 1 });
    },
  });
});
afterAll(async () => {
  await stack.stop();
});

describe('Docker engine unreachable', () => {
  it('/readyz names docker', async () => {
    const res = await fetch(`${stack.apps[0]?.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { failing: string[] };
    expect(body.failing).toEqual(['docker']);
  });

  it('/deploy says so at once and starts nothing; traffic stays where it was', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.1.0');
    const answer = await stack.answerTo('U0DEV', seen, /not released/);
    expect(answer).toBe(
      ":no_entry: api not released: staging's Docker endpoint unix:///tmp/flightdeck-no-docker-here.sock does not answer (ENOENT); production uses it too.",
    );
    expect(releaseIds(answer)).toEqual([]);
    const state = await new ServiceStateStore(stack.client, stack.prefix).get('staging', 'api');
    expect(state.weights).toEqual({ blue: 100, green: 0 });
    expect(state.inFlight).toBeUndefined();
  });
});
