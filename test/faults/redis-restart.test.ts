import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Release } from '../../src/releases/schema.js';
import { ServiceStateStore } from '../../src/releases/service-state-store.js';
import { renderBlocks } from '../../tools/slack-emulator/render.js';
import { type AmAlert, startWithAlertmanager, TestAlertmanager } from '../helpers/alertmanager-server.js';
import { waitFor } from '../helpers/ports.js';
import {
  deployRelease,
  measureSplit,
  promoteRelease,
  soakingAt,
  waitProgress,
  waitRelease,
} from '../helpers/release.js';
import { TestStack } from '../helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from '../helpers/swarm.js';

// Redis (AOF on) stopped and started again under a release and under an alert storm.
const TOKEN = 'alertmanager-fault-token-0123456789';
const am = new TestAlertmanager();
const stack = new TestStack({ prefix: 'fdinfr', basePort: 29600 });
const names: string[] = [];

beforeAll(async () => {
  await startWithAlertmanager(stack, am, {
    token: TOKEN,
    alerts: { defaultChannel: 'C0ALERTS', summariseAbove: 20, duringRelease: 'none' },
  });
  // The suite's own queue handles see Redis go away too; that is expected here.
  for (const q of [stack.queue, stack.releaseQueue]) q.on('error', () => {});
  names.push(...(await createStagingColourServices(stack, 'api')));
}, 240_000);

afterAll(async () => {
  await am.destroy();
  await stack.stop();
  await removeServicesAndWait(names);
});

const app = () => stack.apps[0] as NonNullable<(typeof stack.apps)[0]>;

async function readyz(): Promise<{ status: number; failing: string[] }> {
  const res = await fetch(`${app().url}/readyz`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, failing: ((await res.json()) as { failing: string[] }).failing };
}

/**
 * Stops Redis (SIGTERM: AOF flushed), runs `whileDown`, keeps it down at least `minDownMs`, then
 * starts it again on the same port and data.
 */
async function restartRedis(whileDown: () => Promise<void>, minDownMs: number): Promise<number> {
  const started = Date.now();
  await stack.redis.stop();
  await whileDown();
  await new Promise((r) => setTimeout(r, Math.max(0, started + minDownMs - Date.now())));
  await stack.redis.start();
  const downMs = Date.now() - started;
  await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 30_000, what: '/readyz 200' });
  return downMs;
}

/** A slash command sent while Redis is down: answered in time, in the ack, with "try again". */
async function expectTryAgain(text: string): Promise<void> {
  const sent = await stack.driver.command('/deploy', text);
  expect(sent.status).toBe(200);
  expect(sent.timedOut).toBe(false);
  expect(sent.body?.response_type).toBe('ephemeral');
  expect(sent.body?.text).toMatch(/Redis\) is not answering\. Nothing was started — please try again/);
}

const deploy = (text: string) => deployRelease(stack, text);

const promote = () => promoteRelease(stack, 'api');

describe('Redis restarted (AOF on) in the middle of a release', () => {
  it('while converging and while soaking: commands meanwhile get "try again", /readyz names redis, the release resumes and completes', async () => {
    const id = await deploy('api 1.1.0');
    await waitRelease(stack, id, (r) => r.steps[r.stepIndex]?.kind === 'converge', 'converging', 60_000);
    let refused = 0;
    const down1 = await restartRedis(async () => {
      const r = await waitFor(
        async () => {
          const x = await readyz();
          return x.status === 503 ? x : undefined;
        },
        { what: '/readyz 503' },
      );
      expect(r.failing).toContain('redis');
      await expectTryAgain('web 1.2.0');
      refused += 1;
      // Longer than jobs.lockDuration (5 s): the release job's lock lapses while Redis is away.
    }, 7_000);

    await waitRelease(stack, id, soakingAt(10), 'soaking at 10% after the restart', 120_000);
    const down2 = await restartRedis(async () => {
      // The command goes once flightdeck has noticed Redis is gone (as above), not in the moment
      // between Redis stopping and its connection closing.
      await waitFor(async () => (await readyz()).status === 503, { what: '/readyz 503' });
      await expectTryAgain('promote api');
      refused += 1;
    }, 2_000);
    await promote();
    await waitRelease(stack, id, soakingAt(50), 'soaking at 50%');
    await promote();
    await waitRelease(stack, id, soakingAt(100), 'soaking at 100%');
    await promote();
    const done: Release = await waitRelease(stack, id, (r) => r.status === 'completed', 'completed');

    // Every step once, in order: nothing repeated with effect, nothing skipped.
    const ticks = done.events.filter((e) => e.text.startsWith('✓ '));
    expect(ticks).toHaveLength(done.steps.length);
    for (const [i, s] of done.steps.entries()) expect(ticks[i]?.text.startsWith(`✓ ${s.label}: `)).toBe(true);
    const state = await new ServiceStateStore(stack.client, stack.prefix).get('staging', 'api');
    expect(state.inFlight).toBeUndefined();
    expect(state.weights).toEqual({ blue: 0, green: 100 });
    const split = await measureSplit(`http://127.0.0.1:${stack.nginx.port}/staging/api/colour`, 40);
    expect(split).toEqual({ blue: 0, green: 40, other: 0 });
    await waitProgress(stack, id, /✅ Released/);
    // One progress message, not one per reconnect.
    const progress = stack.emulator.messages.filter((m) => renderBlocks(m.blocks, m.text).includes(id));
    expect(progress).toHaveLength(1);
    // The refused commands started nothing.
    expect(await stack.jobsFor('web 1.2.0')).toBe(0);
    const webState = await new ServiceStateStore(stack.client, stack.prefix).get('staging', 'web');
    expect(webState.inFlight).toBeUndefined();
    console.log(
      `[fault:redis-release] Redis down ${down1} ms while converging and ${down2} ms while soaking; release ${done.status}, ${ticks.length}/${done.steps.length} steps once each, nginx ${split.green}/40 on green, ${refused} commands answered "try again" in the ack, 0 jobs from them`,
    );
  }, 300_000);
});

describe('Redis restarted in the middle of an alert storm (through a real Alertmanager)', () => {
  it('every alert ends up in Slack exactly once', async () => {
    const alert = (name: string, extra: Record<string, string> = {}): AmAlert => ({
      labels: { alertname: name, severity: 'warning', instance: 'db-1:9100', ...extra },
      annotations: { summary: `${name} on db-1` },
    });
    const singles = ['RedisFaultA', 'RedisFaultB', 'RedisFaultC', 'RedisFaultD'].map((n) => alert(n));
    const storm = Array.from({ length: 300 }, (_, i) => alert('RedisFaultStorm', { shard: `s${i}` }));
    const webhook503 = async () => {
      const m = (await (await fetch(`${app().url}/metrics`)).text()).match(
        /flightdeck_alert_webhook_requests_total\{status="503"\} (\d+)/,
      );
      return Number(m?.[1] ?? 0);
    };
    const before503 = await webhook503();

    await am.post([...singles.slice(0, 2), ...storm.slice(0, 100)]);
    // A deadline for the summary, not a wait: on a loaded machine Alertmanager's batches come later.
    await waitFor(() => stack.emulator.messages.some((m) => m.text.startsWith('Alert storm: ')), {
      timeoutMs: 120_000,
      what: 'the storm summary',
    });
    await am.post(storm.slice(100, 200));
    // Down while the storm is being listed; more alerts arrive at Alertmanager meanwhile.
    const downMs = await restartRedis(async () => {
      await am.post([...singles.slice(2), ...storm.slice(200)]);
    }, 4_000);

    const fps = await waitFor(
      async () => {
        const all = (await am.alerts()).filter((a) => a.labels.alertname?.startsWith('RedisFault'));
        return all.length === 304 ? all.map((a) => a.fingerprint) : undefined;
      },
      { what: '304 alerts in Alertmanager' },
    );
    const shownTimes = () => {
      const views = stack.emulator.messages.map((m) => renderBlocks(m.blocks, m.text));
      return fps.map((fp) => views.filter((v) => v.includes(`\`${fp}\``)).length);
    };
    await waitFor(() => shownTimes().every((n) => n >= 1), {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'every alert in Slack',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}: ${shownTimes().filter((n) => n > 0).length} of 304 shown`);
    });
    // Let any retry that would duplicate a message land before counting.
    await new Promise((r) => setTimeout(r, 3_000));
    const times = shownTimes();
    const lost = times.filter((n) => n === 0).length;
    const duplicated = times.filter((n) => n > 1).length;
    const summaries = stack.emulator
      .channelMessages('C0ALERTS')
      .filter((m) => m.text.startsWith('Alert storm:'));
    const refused = (await webhook503()) - before503;
    console.log(
      `[fault:redis-alerts] Redis down ${downMs} ms mid-storm; 304 alerts: ${304 - lost} shown, ${lost} lost, ${duplicated} duplicated; ${summaries.length} storm summary; ${refused} webhook deliveries answered 503 and retried by Alertmanager`,
    );
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
    expect(summaries).toHaveLength(1);
    expect(stack.emulator.retryAfterViolations).toBe(0);
  }, 240_000);
});
