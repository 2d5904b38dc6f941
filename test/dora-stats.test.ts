// DORA figures from flightdeck's own records: a scripted history (events written to the DORA log as
// flightdeck writes them) plus a real one on the single-node Swarm — a release of api that completes,
// a critical alert through the Alertmanager webhook, a /rollback — then `/deploy stats`, App Home
// and /metrics are checked against figures worked out by hand.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DoraEvent, formatSpan, median } from '../src/releases/dora.js';
import { DoraLog } from '../src/releases/dora-log.js';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { waitFor } from './helpers/ports.js';
import { releaseIds, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createStagingColourServices, removeServicesAndWait } from './helpers/swarm.js';

const run = promisify(execFile);
const TOKEN = 'alertmanager-dora-token-0123456789';
const stack = new TestStack({ prefix: 'fddora', basePort: 34400 });
const names: string[] = [];
const H = 3_600_000;
const D = 24 * H;
let log: DoraLog;
let T0 = 0;

beforeAll(async () => {
  await stack.start({
    env: { ALERTMANAGER_WEBHOOK_TOKEN: TOKEN },
    configure: (cfg) => {
      const c = cfg as typeof cfg & Record<string, unknown>;
      c.checklists = { gateEnvironments: [] };
      // The test images are built with `docker import`: no OCI label, but Docker's own Created time.
      c.dora = { failureWindow: '24h', imageCreatedLabel: 'docker:created' };
      c.alerts = { defaultChannel: 'C0ALERTS', duringRelease: 'none' };
      // One 100% step that completes on its own after a short soak.
      Object.assign(cfg.release, { steps: [100], soak: ['1s'] });
    },
  });
  names.push(...(await createStagingColourServices(stack, 'api')));
  log = new DoraLog(stack.client, stack.prefix);
  T0 = Date.now();
}, 180_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
});

async function command(cmd: string, text: string, re: RegExp, user = 'U0DEV'): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.command(cmd, text, { user });
  return stack.answerTo(user, seen, re);
}

const deploy = (id: string, requestedAt: number, at: number, imageCreatedAt?: number): DoraEvent => ({
  kind: 'deploy',
  id: `deploy:${id}`,
  at,
  releaseId: id,
  version: id,
  requestedAt,
  ...(imageCreatedAt === undefined ? {} : { imageCreatedAt }),
});
const failed = (id: string, requestedAt: number, failedAt: number, restoredAt: number): DoraEvent => ({
  kind: 'failed',
  id: `failed:${id}`,
  at: restoredAt,
  releaseId: id,
  version: id,
  requestedAt,
  failedAt,
});

describe('/deploy stats after a history of releases, rollbacks and alerts', () => {
  it('shows the figures worked out by hand', async () => {
    const ago = (days: number, hours = 0) => T0 - days * D + hours * H;
    // Scripted: api had a good release 20 days ago (image built 2 h before), and two releases rolled
    // back during their rollout (restored 45 s and 2 h after the rollback began).
    await log.record('staging', 'api', deploy('a1', ago(20), ago(20, 0.5), ago(20, -1.5)));
    await log.record('staging', 'api', failed('a2', ago(12), ago(12, 0.25), ago(12, 0.25) + 45_000));
    await log.record('staging', 'api', failed('a3', ago(8), ago(8, 0.25), ago(8, 2.25)));
    // Older than the window: not counted.
    await log.record('staging', 'api', deploy('a0', ago(45), ago(45, 1)));
    // web: two releases; the second failed (a critical alert 1 h after, /rollback 30 min later).
    await log.record('staging', 'web', deploy('w1', ago(3), ago(3, 0.25)));
    await log.record('staging', 'web', deploy('w2', ago(2), ago(2, 0.5), ago(2)));
    await log.record('staging', 'web', {
      kind: 'critical',
      id: 'critical:w',
      at: ago(2, 1.5),
      name: 'HighErrorRate',
    });
    await log.record('staging', 'web', {
      kind: 'rollback',
      id: 'rollback:w',
      at: ago(2, 2),
      version: 'w2',
      by: 'U0DEV',
    });

    // Real: api 1.1.0 released through the engine on Swarm; it completes.
    const started = await command('/deploy', 'api 1.1.0', /releasing/);
    const [id] = releaseIds(started);
    const done = await waitRelease(stack, id as string, (r) => r.status === 'completed', 'completed');
    // Its deploy event carries the image's creation time, read through the Docker endpoint.
    const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Created}}', done.image]);
    const created = Date.parse(stdout.trim());
    const real = await waitFor(
      async () =>
        (await log.read('staging', 'api', 0, Date.now())).find(
          (e) => e.kind === 'deploy' && e.releaseId === id,
        ),
      { what: 'the release recorded as a deploy' },
    );
    expect(real).toMatchObject({ at: done.finishedAt, requestedAt: done.createdAt, imageCreatedAt: created });

    // Real: a critical alert for api in staging through the Alertmanager webhook…
    const res = await fetch(`${stack.apps[0]?.url}/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        version: '4',
        groupKey: '{}:{alertname="HighErrorRate"}',
        status: 'firing',
        receiver: 'flightdeck',
        groupLabels: { alertname: 'HighErrorRate' },
        commonLabels: {},
        commonAnnotations: {},
        externalURL: 'http://alertmanager.example',
        alerts: [
          {
            status: 'firing',
            labels: {
              alertname: 'HighErrorRate',
              severity: 'critical',
              environment: 'staging',
              service: 'api',
            },
            annotations: { summary: 'More than 5% of requests failed' },
            startsAt: new Date().toISOString(),
            endsAt: '0001-01-01T00:00:00Z',
            generatorURL: 'http://prometheus.example/graph',
            fingerprint: 'd0a0000000000001',
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const alert = await waitFor(
      async () => (await log.read('staging', 'api', 0, Date.now())).find((e) => e.kind === 'critical'),
      { what: 'the critical alert recorded' },
    );
    // …and a /rollback of the release: the next good state.
    await stack.driver.command('/rollback', 'api', { user: 'U0DEV' });
    const rolled = await waitFor(
      () =>
        stack.emulator
          .channelMessages('C0RELEASES')
          .find((m) => /api in staging: traffic 100% on blue/.test(m.text)),
      { what: 'the /rollback answered in the channel' },
    );
    console.log(`/rollback api → ${rolled.text}`);
    const back = await waitFor(
      async () => (await log.read('staging', 'api', 0, Date.now())).find((e) => e.kind === 'rollback'),
      { what: 'the /rollback recorded' },
    );
    expect(back).toMatchObject({ version: '1.1.0', by: 'U0DEV' });
    const restoreMs = back.at - alert.at;
    expect(restoreMs).toBeGreaterThanOrEqual(0);
    expect(restoreMs).toBeLessThan(45_000);
    const leadMs = (done.finishedAt as number) - created;

    const stats = await command('/deploy', 'stats staging 30', /DORA figures for staging/);
    console.log(`/deploy stats staging 30 →\n${stats}`);
    // api: a1 and the real release completed; a2, a3 rolled back, the real one followed by an alert and
    // a /rollback: 3 failed of 4 changes. Restores 45 s, 2 h and the real one (< 45 s): median 45 s.
    // Lead: a1 2 h and the real one.
    const apiLead = formatSpan(median([2 * H, leadMs]) as number);
    expect(stats).toContain(
      `• *api*: 2 deploys (0.07/day) · CFR 75% (3/4) · restore 45 s (3) · lead ${apiLead} (2)`,
    );
    // web: w2 failed (alert 1 h after it went live, /rollback 30 min after the alert).
    expect(stats).toContain(
      '• *web*: 2 deploys (0.07/day) · CFR 50% (1/2) · restore 30 min (1) · lead 30 min (1)',
    );
    // All: restores [real, 45 s, 30 min, 2 h] → median (45 s + 30 min) / 2 = 15 min; leads 30 min, 2 h, real.
    const allLead = formatSpan(median([2 * H, leadMs, 30 * 60_000]) as number);
    expect(stats).toContain(
      `*all services*: 4 deploys (0.13/day) · CFR 67% (4/6) · restore 15 min (4) · lead ${allLead} (3)`,
    );

    // A shorter window: only the real release and web's two.
    const week = await command('/deploy', 'stats 7', /DORA figures for staging, last 7 days/);
    console.log(`/deploy stats 7 →\n${week}`);
    expect(week).toContain(
      `• *api*: 1 deploy (0.14/day) · CFR 100% (1/1) · restore ${formatSpan(restoreMs)} (1) · lead ${formatSpan(leadMs)} (1)`,
    );

    // The same figures as gauges on /metrics, per environment and service (`all`: the environment).
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${stack.apps[0]?.url}/metrics`)).text();
        return text.includes('flightdeck_dora_deployments{environment="staging",service="api"} 2')
          ? text
          : undefined;
      },
      { timeoutMs: 45_000, what: 'the DORA gauges' },
    );
    const dora = metrics.split('\n').filter((l) => l.startsWith('flightdeck_dora_'));
    console.log(`/metrics DORA gauges:\n${dora.join('\n')}`);
    expect(dora).toContain('flightdeck_dora_change_failure_ratio{environment="staging",service="api"} 0.75');
    expect(dora).toContain('flightdeck_dora_change_failure_ratio{environment="staging",service="web"} 0.5');
    expect(dora).toContain('flightdeck_dora_deployments{environment="staging",service="all"} 4');
    expect(dora).toContain(
      'flightdeck_dora_time_to_restore_seconds{environment="staging",service="all"} 922.5',
    );
    expect(dora).toContain(
      'flightdeck_dora_time_to_restore_seconds{environment="staging",service="web"} 1800',
    );
    expect(dora).toContain('flightdeck_dora_deployments{environment="production",service="all"} 0');
    expect(
      dora.some((l) => l.startsWith('flightdeck_dora_change_failure_ratio{environment="production"')),
    ).toBe(false);

    // App Home's DORA section: each environment's total.
    await stack.driver.event({ type: 'app_home_opened', user: 'U0LEAD', channel: 'D0LEAD', tab: 'home' });
    const home = await waitFor(
      () => {
        const view = stack.emulator.homeViews.get('U0LEAD') as { blocks?: unknown[] } | undefined;
        const text = view ? renderBlocks(view.blocks as never, '') : '';
        return text.includes('DORA, last 30 days') ? text : undefined;
      },
      { timeoutMs: 30_000, what: 'App Home with its DORA section' },
    );
    const section = home.split('\n').filter((l) => /DORA|\*staging\*: |\*production\*: /.test(l));
    console.log(`App Home:\n${section.join('\n')}`);
    expect(home).toContain('*staging*: 4 deploys (0.13/day) · CFR 67% (4/6) · restore 15 min (4)');
    expect(home).toContain('*production*: 0 deploys (0.00/day) · CFR — · restore — · lead —');
  }, 180_000);

  it('keeps the event list bounded: events older than 400 days pruned, the newest 2,000 kept', async () => {
    const now = Date.now();
    const key = `${stack.prefix}:data:dora:production:web`;
    await log.record('production', 'web', { kind: 'critical', id: 'old', at: now - 401 * D, name: 'Old' });
    await log.record('production', 'web', { kind: 'critical', id: 'c0', at: now - 10 * D, name: 'X' });
    expect((await log.read('production', 'web', 0, now)).map((e) => e.id)).toEqual(['c0']);
    for (let i = 1; i <= 2_010; i++)
      await log.record('production', 'web', {
        kind: 'critical',
        id: `c${i}`,
        at: now - 10 * D + i,
        name: 'X',
      });
    expect(await stack.client.zcard(key)).toBe(2_000);
    const kept = await log.read('production', 'web', 0, now);
    expect(kept[0]?.id).toBe('c11');
    expect(kept.at(-1)?.id).toBe('c2010');
    const ttl = await stack.client.pttl(key);
    expect(ttl).toBeGreaterThan(399 * D);
    console.log(
      `DORA list after 2,012 writes: ${await stack.client.zcard(key)} events, TTL ${Math.round(ttl / D)} days`,
    );
    await stack.client.del(key);
  });

  it.each([
    ['stats staging abc', /Unknown environment `abc`/],
    ['stats 400', /`400` days: the window is 1 to 365 days/],
    ['stats moon 7', /Unknown environment `moon`/],
    ['stats 1e3', /`1e3` is not a number of days/],
  ])('answers `/deploy %s` with a usage message', async (text, re) => {
    const sent = await stack.driver.command('/deploy', text);
    expect(sent.body?.text).toMatch(re);
    expect(sent.body?.text).toContain('/deploy stats [environment] [days]');
  });
});
