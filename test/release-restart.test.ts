import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Release } from '../src/releases/schema.js';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import {
  deployRelease,
  measureSplit,
  promoteRelease,
  soakingAt,
  waitProgress,
  waitRelease,
} from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, previousImage, removeServicesAndWait } from './helpers/swarm.js';

const stack = new TestStack({ prefix: 'fdkill', basePort: 28600 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start();
  names.push(...(await createStagingColourServices(stack)));
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const app = () => stack.apps[0] as NonNullable<(typeof stack.apps)[0]>;
const url = (svc: string) => `http://127.0.0.1:${stack.nginx.port}/staging/${svc}/colour`;

const deploy = (text: string) => deployRelease(stack, text);

const promote = (svc: string) => promoteRelease(stack, svc);

/** Walks the remaining soaks with /deploy promote until the release completes. */
async function promoteToTheEnd(id: string, svc: string, from: number): Promise<Release> {
  for (const p of [10, 50, 100].filter((x) => x >= from)) {
    await waitRelease(stack, id, soakingAt(p), `soaking at ${p}%`);
    await promote(svc);
  }
  return waitRelease(stack, id, (r) => r.status === 'completed', 'completed');
}

/** Every step completed exactly once: one "✓" event per step, in order. */
function expectEachStepOnce(r: Release): void {
  const done = r.events.filter((e) => e.text.startsWith('✓ '));
  expect(done).toHaveLength(r.steps.length);
  for (const [i, s] of r.steps.entries()) expect(done[i]?.text.startsWith(`✓ ${s.label}: `)).toBe(true);
}

describe('flightdeck killed (SIGKILL) in the middle of a release, then started again', () => {
  it('during convergence: the release resumes and completes; the Swarm update was sent once', async () => {
    const id = await deploy('api 1.1.0');
    await waitRelease(stack, id, (r) => r.steps[r.stepIndex]?.kind === 'converge', 'converging', 60_000);
    await app().kill();
    await app().start();
    const r = await promoteToTheEnd(id, 'api', 10);
    expectEachStepOnce(r);
    // A second update to the same image would have made 1.1.0 the previous spec.
    expect(await previousImage('fdkill-staging-api-green')).toBe('flightdeck/testapp:1.0.0');
    await waitProgress(stack, id, /✅ Released/);
  }, 180_000);

  it('during a soak: the same soak continues (its end time survives) and the release completes', async () => {
    const id = await deploy('web 1.1.0');
    await waitRelease(stack, id, soakingAt(10), 'soaking at 10%');
    await promote('web');
    const soaking = await waitRelease(stack, id, soakingAt(50), 'soaking at 50%');
    const due = soaking.steps[soaking.stepIndex]?.due;
    await app().kill();
    await app().start();
    const after = await waitRelease(stack, id, soakingAt(50), 'still soaking at 50%');
    expect(after.steps[after.stepIndex]?.due).toBe(due);
    const split = await measureSplit(url('web'), 100);
    expect(Math.abs(split.green - 50)).toBeLessThanOrEqual(8);
    const r = await promoteToTheEnd(id, 'web', 50);
    expectEachStepOnce(r);
  }, 180_000);

  it('just after a weight change, before it was recorded: the step is redone without a second effect', async () => {
    // api is live on green now: this release goes to blue.
    app().setEnv({ FLIGHTDECK_FAILPOINTS: 'after:shift@10' });
    await app().stop();
    await app().start();
    const died = app().exited();
    const id = await deploy('api 1.2.0');
    await died;
    const states = new ServiceStateStore(stack.client, stack.prefix);
    // The weights changed (nginx reloaded) but the step was not recorded as done.
    expect((await states.get('staging', 'api')).weights).toEqual({ blue: 10, green: 90 });
    const r0 = await stack.releaseQueue.getJob(id);
    expect(await r0?.getState()).toBe('active');

    app().setEnv({});
    await app().start();
    const soaking = await waitRelease(stack, id, soakingAt(10), 'soaking at 10% after the restart', 60_000);
    expect(soaking.steps.find((s) => s.kind === 'shift')?.detail).toMatch(
      /10% → blue \(nginx already there\)/,
    );
    const split = await measureSplit(url('api'), 100);
    expect(Math.abs(split.blue - 10)).toBeLessThanOrEqual(8);
    const r = await promoteToTheEnd(id, 'api', 10);
    expectEachStepOnce(r);
    expect((await states.get('staging', 'api')).live).toBe('blue');
    expect((await states.get('staging', 'api')).inFlight).toBeUndefined();
  }, 180_000);
});
