import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import { colourService } from './helpers/config.js';
import { waitFor } from './helpers/ports.js';
import { releaseIds, releases, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

// A sequential `/deploy all` (release.parallel: false) in an environment that needs a lead's approval.
const BASE = 31000;
const stack = new TestStack({ prefix: 'fdseq', basePort: BASE });
const names: string[] = [];

const svc = (env: string, name: string, port: number) => colourService('fdseq', env, name, port);
// seqa: x, y, z run on real Swarm; w has no Swarm services (it is never approved, so never touches them).
const seqa = {
  x: svc('seqa', 'x', BASE + 301),
  y: svc('seqa', 'y', BASE + 311),
  z: svc('seqa', 'z', BASE + 321),
  w: svc('seqa', 'w', BASE + 331),
};
// seqb: p has no Swarm services, so its release fails at its first step.
const seqb = {
  p: svc('seqb', 'p', BASE + 401),
  q: svc('seqb', 'q', BASE + 411),
  r: svc('seqb', 'r', BASE + 421),
};
const policy = (approvalTimeout: string) => ({
  parallel: false,
  approvalTimeout,
  steps: [100],
  soak: ['0s'],
});

beforeAll(async () => {
  await stack.start({
    configure: (cfg) => {
      Object.assign(cfg, { checklists: { gateEnvironments: [] } });
      // Long enough for x and y to complete before anyone's deadline, short enough to see w expire.
      cfg.environments.seqa = {
        deployers: ['*'],
        requireApproval: true,
        release: policy('60s'),
        services: seqa,
      };
      cfg.environments.seqb = {
        deployers: ['*'],
        requireApproval: true,
        release: policy('60s'),
        services: seqb,
      };
    },
  });
  names.push(...(await createColourServices([seqa.x, seqa.y, seqa.z])));
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const states = () => new ServiceStateStore(stack.client, stack.prefix);
const url = (env: string, name: string) => `http://127.0.0.1:${stack.nginx.port}/${env}/${name}/version`;

async function deployAll(env: string): Promise<string[]> {
  const seen = stack.emulator.ephemeralsFor('U0DEV').length;
  await stack.driver.command('/deploy', `all 1.1.0 to ${env}`);
  const answer = await stack.answerTo('U0DEV', seen, /rel-/);
  expect(answer).toMatch(/waits for a lead other than you to approve/);
  return releaseIds(answer);
}

/** Presses a button of a release's progress message as `user`; resolves to the answer. */
async function click(id: string, actionId: string, user = 'U0LEAD'): Promise<string> {
  const r = await waitRelease(stack, id, (x) => !!x.message, 'a progress message');
  const msg = stack.emulator.messages.find((m) => m.channel === r.message?.channel && m.ts === r.message?.ts);
  if (!msg) throw new Error('message not in the emulator');
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.click(msg, { action_id: actionId, value: id }, { user });
  return stack.answerTo(user, seen);
}

async function jobState(id: string): Promise<string> {
  const job = await stack.releaseQueue.getJob(id);
  return job ? job.getState() : 'none';
}

describe('a sequential /deploy all that needs approval', () => {
  it('each release waits for its own approval and for the one before it; one never approved expires', async () => {
    const [x, y, z, w] = (await deployAll('seqa')) as [string, string, string, string];
    expect([x, y, z, w].every(Boolean)).toBe(true);
    // Every release awaiting approval has its job, delayed to its deadline.
    for (const id of [x, y, z, w]) {
      await waitRelease(stack, id, (r) => r.status === 'awaiting_approval', 'awaiting approval');
      expect(await jobState(id)).toBe('delayed');
    }

    expect(await click(x, 'release_approve')).toMatch(/Approved/);
    // Approved while x runs: y waits for x, it does not run beside it.
    expect(await click(y, 'release_approve')).toMatch(
      new RegExp(`Approved \`${y}\`\\. It starts once \`${x}\` \\(x\\) has completed`),
    );
    expect((await releases(stack).get(y))?.status).toBe('queued');
    await waitProgress(stack, y, /Queued behind the rest of its batch[\s\S]*approved by <@U0LEAD>/);

    const doneX = await waitRelease(stack, x, (r) => r.status === 'completed', 'x completed', 120_000);
    const doneY = await waitRelease(stack, y, (r) => r.status === 'completed', 'y completed', 120_000);
    // y started only once x had completed.
    expect(doneY.steps[0]?.startedAt ?? 0).toBeGreaterThanOrEqual(
      doneX.finishedAt ?? Number.POSITIVE_INFINITY,
    );

    // Approved after the release before it completed: it runs (and frees its lock) too.
    expect((await releases(stack).get(z))?.status).toBe('awaiting_approval');
    expect(await click(z, 'release_approve')).toMatch(/Approved/);
    await waitRelease(stack, z, (r) => r.status === 'completed', 'z completed', 120_000);
    await waitProgress(stack, z, /✅ Released/);
    for (const name of ['x', 'y', 'z'] as const) {
      expect(await serviceImage(`fdseq-seqa-${name}-green`)).toBe('flightdeck/testapp:1.1.0');
      const res = await fetch(url('seqa', name));
      expect((await res.text()).trim()).toBe('1.1.0');
      expect((await states().get('seqa', name)).inFlight).toBeUndefined();
    }

    // Nobody approves w: at its deadline it expires, changes nothing and frees its lock.
    const expired = await waitRelease(stack, w, (r) => r.status === 'expired', 'w expired', 120_000);
    expect(expired.outcome).toBe('No lead approved it in time; nothing was changed.');
    await waitProgress(stack, w, /⌛ Approval expired/);
    expect((await states().get('seqa', 'w')).inFlight).toBeUndefined();
  }, 300_000);

  it('a release that fails cancels the rest of the batch, approved or still awaiting approval', async () => {
    const [p, q, r] = (await deployAll('seqb')) as [string, string, string];
    expect(await click(q, 'release_approve')).toMatch(/It starts once/);
    await click(p, 'release_approve');
    const failed = await waitRelease(stack, p, (x) => x.status === 'rolled_back', 'p rolled back');
    expect(failed.outcome).toMatch(/Swarm service fdseq-seqb-p-green does not exist/);
    for (const id of [q, r]) {
      const cancelled = await waitRelease(stack, id, (x) => x.status === 'cancelled', 'cancelled');
      expect(cancelled.outcome).toBe('Cancelled before any change: batch stopped: p rolled back');
      await waitProgress(stack, id, /🚫 Cancelled/);
      // Its expiry job went with it.
      await waitFor(async () => (await jobState(id)) === 'none', { what: `${id}'s job removed` });
    }
    for (const name of ['p', 'q', 'r']) expect((await states().get('seqb', name)).inFlight).toBeUndefined();
  }, 120_000);
});
