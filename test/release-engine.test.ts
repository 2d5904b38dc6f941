import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureSplit, releaseIds, soakingAt, waitProgress, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

const stack = new TestStack({ prefix: 'fdrel', basePort: 28200 });
const names: string[] = [];

beforeAll(async () => {
  await stack.start();
  names.push(...(await createStagingColourServices(stack)));
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

const nginxUrl = (env: string, svc: string) => `http://127.0.0.1:${stack.nginx.port}/${env}/${svc}/colour`;

async function answer(user: string, seen: number, re: RegExp) {
  return stack.answerTo(user, seen, re);
}

describe('a full blue/green release of a two-service environment', () => {
  it('goes 10 → 50 → 100 with the measured split and a truthful progress message at each step', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'all 1.1.0 to staging');
    const text = await answer('U0DEV', seen, /releasing/);
    const ids = releaseIds(text);
    expect(ids).toHaveLength(2);

    for (const [percent, expectGreen] of [
      [10, 20],
      [50, 100],
      [100, 200],
    ] as const) {
      for (const id of ids) {
        await waitRelease(stack, id, soakingAt(percent), `soaking at ${percent}%`);
        const progress = await waitProgress(stack, id, new RegExp(`⏳ Soak 1h at ${percent}%`));
        expect(progress).toContain(`✅ Traffic ${percent}% → green`);
        expect(progress).toContain(`green \`${'█'.repeat(percent / 10)}`);
      }
      for (const svc of ['api', 'web']) {
        const split = await measureSplit(nginxUrl('staging', svc));
        expect(split.other).toBe(0);
        // nginx's weighted round robin is exact per worker; allow for two workers' interleaving.
        expect(Math.abs(split.green - expectGreen)).toBeLessThanOrEqual(percent === 100 ? 0 : 12);
      }
      for (const svc of ['api', 'web']) {
        const before = stack.emulator.ephemeralsFor('U0DEV').length;
        await stack.driver.command('/deploy', `promote ${svc}`);
        await answer('U0DEV', before, /Promoted/);
      }
    }

    for (const id of ids) {
      const done = await waitRelease(stack, id, (r) => r.status === 'completed', 'completed');
      expect(done.steps.every((s) => s.status === 'done')).toBe(true);
      await waitProgress(stack, id, /✅ Released/);
    }
    for (const svc of ['api', 'web']) {
      expect(await serviceImage(`fdrel-staging-${svc}-green`)).toBe('flightdeck/testapp:1.1.0');
      expect(await serviceImage(`fdrel-staging-${svc}-blue`)).toBe('flightdeck/testapp:1.0.0');
    }
    // History, status and metrics tell the same story.
    const seenH = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'history api');
    const history = await answer('U0DEV', seenH, /\*api in staging\*/);
    expect(history).toContain('live green (flightdeck/testapp:1.1.0)');
    expect(history).toContain(`\`${ids[0]}\``);
    const seenS = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'status');
    const status = await answer('U0DEV', seenS, /In flight \(0\)/);
    expect(status).toMatch(/Last finished[\s\S]*completed/);
    const metrics = await (await fetch(`${stack.apps[0]?.url}/metrics`)).text();
    expect(metrics).toMatch(/flightdeck_releases_total\{environment="staging",outcome="completed"\} 2/);
    expect(metrics).toMatch(
      /flightdeck_traffic_weight_percent\{environment="staging",service="api",colour="green"\} 100/,
    );
    expect(metrics).toMatch(
      /flightdeck_release_step_duration_seconds_count\{step="converge",result="done"\} 2/,
    );
    expect(metrics).toContain('flightdeck_lock_wait_seconds_bucket');

    // One message for the batch in the channel; one per release in its thread, updated in place
    // (at least once per soak it was seen at, and at the end).
    const batch = stack.emulator
      .channelMessages('C0RELEASES')
      .filter((m) => /`batch-/.test(JSON.stringify(m.blocks)));
    expect(batch).toHaveLength(1);
    const posts = stack.emulator
      .threadReplies('C0RELEASES', batch[0]?.ts as string)
      .filter((m) => /fdrel|rel-staging/.test(JSON.stringify(m.blocks)));
    expect(posts).toHaveLength(2);
    expect(posts.every((m) => m.edits >= 4)).toBe(true);
  }, 240_000);
});
