import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import { waitFor } from './helpers/ports.js';
import { TestPrometheus } from './helpers/prometheus-server.js';
import {
  measureSplit,
  releaseIds,
  releases,
  soakingAt,
  waitProgress,
  waitRelease,
} from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

const BASE = 28300;
const stack = new TestStack({ prefix: 'fdsafe', basePort: BASE });
const prom = new TestPrometheus();
const names: string[] = [];
const qa = {
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: 'fdsafe-qa-api-blue', address: `127.0.0.1:${BASE + 201}` },
  green: { swarmService: 'fdsafe-qa-api-green', address: `127.0.0.1:${BASE + 202}` },
};
const ERROR_RATE =
  'sum(rate(testapp_requests_total{code="500",colour="{{colour}}",service="{{service}}",environment="{{environment}}"}[10s]))' +
  ' / sum(rate(testapp_requests_total{colour="{{colour}}",service="{{service}}",environment="{{environment}}"}[10s]))';

beforeAll(async () => {
  await prom.start([
    {
      address: qa.blue.address,
      labels: { environment: 'qa', service: 'api', colour: 'blue' },
      path: '/cgi-bin/metrics',
    },
    {
      address: qa.green.address,
      labels: { environment: 'qa', service: 'api', colour: 'green' },
      path: '/cgi-bin/metrics',
    },
  ]);
  await stack.start({
    configure: (cfg) => {
      // The checklist gate of production has its own suite; here production is approval only.
      Object.assign(cfg, {
        prometheus: { url: prom.url },
        access: { leads: ['U0LEAD', 'U0ONCALL'] },
        checklists: { gateEnvironments: [] },
      });
      cfg.environments.qa = {
        deployers: ['*'],
        services: { api: qa },
        release: { gates: [{ name: 'error rate', query: ERROR_RATE, max: 0.001 }] },
      };
    },
  });
  names.push(
    ...(await createColourServices([
      ...Object.values(stack.config.environments.staging?.services ?? {}),
      qa,
    ])),
  );
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await prom.destroy();
  await removeServicesAndWait(names);
});

const url = (env: string, svc: string, path = 'colour') =>
  `http://127.0.0.1:${stack.nginx.port}/${env}/${svc}/${path}`;
const states = () => new ServiceStateStore(stack.client, stack.prefix);

async function deploy(text: string, user = 'U0DEV'): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.command('/deploy', text, { user });
  const answer = await stack.answerTo(user, seen, /rel-|Not done|locked|already|both colours/);
  return answer;
}

/** Answers posted in the channel (in_channel), e.g. a rollback's report. */
async function channelPost(re: RegExp, channel = 'C0RELEASES'): Promise<string> {
  return waitFor(() => stack.emulator.channelMessages(channel).find((m) => re.test(m.text))?.text, {
    timeoutMs: 30_000,
    what: `a message in ${channel} matching ${re}`,
  });
}

async function command(cmd: string, text: string, re: RegExp, user = 'U0DEV'): Promise<string> {
  const seen = stack.emulator.ephemeralsFor(user).length;
  await stack.driver.command(cmd, text, { user });
  return stack.answerTo(user, seen, re);
}

/** The release's progress message as stored by the emulator, for clicking its buttons. */
async function messageOf(id: string) {
  const r = await waitRelease(stack, id, (x) => !!x.message, 'a progress message');
  const msg = stack.emulator.messages.find((m) => m.channel === r.message?.channel && m.ts === r.message?.ts);
  if (!msg) throw new Error('message not in the emulator');
  return msg;
}

async function click(id: string, actionId: string, user: string) {
  const msg = await messageOf(id);
  return stack.driver.click(msg, { action_id: actionId, value: id }, { user });
}

describe('metric gates', () => {
  it('rolls back automatically when the error rate gate fails, showing the measured value', async () => {
    const [id] = releaseIds(await deploy('api errors to qa'));
    expect(id).toBeDefined();
    await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
    // Real traffic through nginx: about 10% reaches green, which answers 500.
    const deadline = Date.now() + 60_000;
    let errorRate: number[] = [];
    while (Date.now() < deadline) {
      await Promise.all(
        Array.from({ length: 20 }, () => fetch(url('qa', 'api', 'cgi-bin/app')).then((r) => r.text())),
      );
      errorRate = await prom.query(
        ERROR_RATE.replace(/\{\{colour\}\}/g, 'green')
          .replace(/\{\{service\}\}/g, 'api')
          .replace(/\{\{environment\}\}/g, 'qa'),
      );
      if (errorRate.length > 0) break;
    }
    expect(errorRate[0]).toBeGreaterThan(0.5);
    await command('/deploy', 'promote api in qa', /Promoted/);

    const done = await waitRelease(stack, id as string, (r) => r.status === 'rolled_back', 'rolled back');
    expect(done.outcome).toMatch(/gate failed: ✗ error rate 1 \(≤ 0\.001\)/);
    expect(done.gateResults.find((g) => g.name === 'error rate')?.ok).toBe(false);
    const text = await waitProgress(stack, id as string, /↩️ Rolled back/);
    expect(text).toContain('❌ Gate at 10%');
    expect(text).toMatch(/traffic 100% on blue in \d+\.\d+ s/);
    expect((await measureSplit(url('qa', 'api'), 50)).blue).toBe(50);
    await waitFor(async () => (await serviceImage('fdsafe-qa-api-green')) === 'flightdeck/testapp:1.0.0', {
      timeoutMs: 30_000,
      what: 'green rolled back in Swarm',
    });
    expect((await states().get('qa', 'api')).inFlight).toBeUndefined();
  }, 180_000);
});

describe('/rollback in the middle of a release', () => {
  it('puts traffic back at once, cancels the pending steps and frees the lock', async () => {
    const [id] = releaseIds(await deploy('web 1.2.0'));
    await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
    expect((await stack.releaseQueue.getJob(id as string))?.id).toBe(id);
    // Straight to the rollback lane: acked at once, answered in the channel with the outcome.
    expect((await stack.driver.command('/rollback', 'web')).body?.text).toMatch(/`\/rollback web` — on it/);
    const answer = await channelPost(new RegExp(`web in staging: release ${id} pre-empted`));
    expect(answer).toMatch(/traffic 100% on blue in \d+\.\d+ s/);
    expect(await measureSplit(url('staging', 'web'), 50)).toEqual({ blue: 50, green: 0, other: 0 });
    const r = await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'rolled back');
    expect(r.steps.filter((s) => s.status === 'skipped').length).toBeGreaterThan(5);
    expect(await stack.releaseQueue.getJob(id as string)).toBeUndefined();
    expect((await states().get('staging', 'web')).inFlight).toBeUndefined();
    await waitFor(
      async () => (await serviceImage('fdsafe-staging-web-green')) === 'flightdeck/testapp:1.0.0',
      {
        timeoutMs: 30_000,
      },
    );
    // The lock is free: a new release may start.
    const again = await deploy('web 1.2.0');
    expect(again).toMatch(/releasing web 1\.2\.0/);
    const [id2] = releaseIds(again);
    await waitRelease(stack, id2 as string, soakingAt(10), 'soaking at 10%');
    await command('/deploy', 'cancel web', /Cancelling/);
    await waitRelease(stack, id2 as string, (x) => x.status === 'rolled_back', 'cancelled and rolled back');
  }, 180_000);
});

describe('locks, pausing and /traffic during a release', () => {
  it('refuses a second deploy with who holds the lock, refuses /traffic until paused, and aborts by button', async () => {
    const [id] = releaseIds(await deploy('api 1.1.0'));
    await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');

    const second = await deploy('api 1.2.0', 'U0LEAD');
    expect(second).toMatch(
      new RegExp(
        `api in staging is locked by ${id}: <@U0DEV> is releasing 1\\.1\\.0 since .* UTC \\(now: Soak 1h at 10%\\)`,
      ),
    );

    const refused = await command('/traffic', 'api 50', /Not done/);
    expect(refused).toMatch(/is in flight; pause it first/);

    await click(id as string, 'release_pause', 'U0DEV');
    await waitRelease(stack, id as string, (r) => r.status === 'paused', 'paused');
    await waitProgress(stack, id as string, /⏸️ Paused/);
    await stack.driver.command('/traffic', 'api 30 green');
    const moved = await channelPost(/🔀 api in staging/);
    expect(moved).toMatch(/blue `███████░░░ {2}70%` · green `███░░░░░░░ {2}30%`/);
    const split = await measureSplit(url('staging', 'api'), 100);
    expect(Math.abs(split.green - 30)).toBeLessThanOrEqual(8);

    await click(id as string, 'release_resume', 'U0DEV');
    await waitRelease(stack, id as string, (r) => r.status === 'running', 'resumed');
    await click(id as string, 'release_abort', 'U0DEV');
    const r = await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'aborted');
    expect(r.outcome).toMatch(/aborted by <@U0DEV>/);
    expect((await measureSplit(url('staging', 'api'), 30)).blue).toBe(30);
  }, 180_000);
});

describe('production approval', () => {
  it('waits for a lead other than the requester, then fails clearly when the Swarm service is missing', async () => {
    const [id] = releaseIds(await deploy('api 1.1.0 to production', 'U0LEAD'));
    const waiting = await waitRelease(
      stack,
      id as string,
      (r) => r.status === 'awaiting_approval',
      'awaiting approval',
    );
    expect(waiting.steps.every((s) => s.status === 'pending')).toBe(true);
    const text = await waitProgress(stack, id as string, /\[Approve\] \[Reject\]/);
    expect(text).toContain('A lead other than <@U0LEAD> must approve');

    let seen = stack.emulator.ephemeralsFor('U0LEAD').length;
    await click(id as string, 'release_approve', 'U0LEAD');
    expect(await stack.answerTo('U0LEAD', seen, /Not done/)).toMatch(/a lead other than you must approve/);
    seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await click(id as string, 'release_approve', 'U0DEV');
    expect(await stack.answerTo('U0DEV', seen, /Not done/)).toMatch(/only a lead/);
    expect((await releases(stack).get(id as string))?.status).toBe('awaiting_approval');

    await click(id as string, 'release_approve', 'U0ONCALL');
    const r = await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'rolled back');
    expect(r.approvedBy?.id).toBe('U0ONCALL');
    expect(r.outcome).toMatch(/Swarm service fdsafe-production-api-green does not exist/);
    expect(r.weights).toEqual({ blue: 100, green: 0 });
    await waitProgress(stack, id as string, /approved by <@U0ONCALL>/);
  }, 120_000);

  it('a rejected release changes nothing and frees the lock', async () => {
    const [id] = releaseIds(await deploy('web 1.1.0 to production'));
    await waitRelease(stack, id as string, (r) => r.status === 'awaiting_approval', 'awaiting approval');
    // Someone who may not deploy to production cannot touch its buttons; the attempt is audited.
    const before = stack.emulator.ephemeralsFor('U0GUEST').length;
    await click(id as string, 'release_abort', 'U0GUEST');
    expect(await stack.answerTo('U0GUEST', before, /Not done/)).toMatch(/not a deployer for \*production\*/);
    await waitFor(async () =>
      (await stack.audit.recent(200)).some(
        (e) => e.userId === 'U0GUEST' && e.outcome === 'refused' && e.text.includes('release_abort'),
      ),
    );
    expect((await releases(stack).get(id as string))?.status).toBe('awaiting_approval');
    await click(id as string, 'release_reject', 'U0LEAD');
    await waitRelease(stack, id as string, (r) => r.status === 'rejected', 'rejected');
    expect((await states().get('production', 'web')).inFlight).toBeUndefined();
    await waitProgress(stack, id as string, /🚫 Rejected/);
  });
});

describe('traffic moved by hand', () => {
  it('a deploy never updates a colour that serves traffic', async () => {
    await stack.driver.command('/traffic', 'web 30 green');
    await channelPost(/🔀 web in staging: blue `███████░░░ {2}70%`/);
    const split = await deploy('web 1.2.0');
    expect(split).toMatch(/web in staging has traffic on both colours \(blue 70%, green 30%\)/);

    await stack.driver.command('/traffic', 'web 100 green');
    await channelPost(/🔀 web in staging: blue `░░░░░░░░░░ {3}0%`/);
    const [id] = releaseIds(await deploy('web 1.2.0'));
    const r = await waitRelease(stack, id as string, soakingAt(10), 'soaking at 10%');
    expect([r.fromColour, r.toColour]).toEqual(['green', 'blue']);
    await command('/deploy', 'cancel web', /Cancelling/);
    await waitRelease(stack, id as string, (x) => x.status === 'rolled_back', 'rolled back');
    expect((await measureSplit(url('staging', 'web'), 20)).green).toBe(20);
    await stack.driver.command('/traffic', 'web 100 blue');
    await channelPost(/🔀 web in staging: blue `██████████ 100%`/);
  }, 120_000);
});

describe('/rollback in production', () => {
  it('asks for confirmation with a button before anything changes', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/rollback', 'api production');
    await stack.answerTo('U0DEV', seen, /Roll back api in production\?/);
    const prompt = stack.emulator.ephemeralsFor('U0DEV').at(-1);
    expect(JSON.stringify(prompt?.blocks)).toContain('rollback_confirm');
    const before = stack.emulator.channelMessages('C0RELEASES').length;
    // Only the click does it.
    await new Promise((r) => setTimeout(r, 300));
    expect(stack.emulator.channelMessages('C0RELEASES').length).toBe(before);
    await stack.driver.click(
      { channel: 'C0RELEASES', ts: '0.000001' },
      { action_id: 'rollback_confirm', value: 'production|api' },
      { user: 'U0DEV' },
    );
    expect(await channelPost(/api in production|Nothing to roll back: api in production/)).toMatch(
      /Nothing to roll back: api in production has all traffic on blue/,
    );
  });
});

describe('failures keep traffic where it was', () => {
  it('an unknown image tag fails convergence and rolls back; traffic never moved', async () => {
    const [id] = releaseIds(await deploy('web 9.9.9'));
    const r = await waitRelease(
      stack,
      id as string,
      (x) => x.status === 'rolled_back',
      'rolled back',
      120_000,
    );
    expect(r.outcome).toMatch(/did not converge/);
    expect(r.steps.find((s) => s.kind === 'shift')?.status).toBe('skipped');
    expect((await measureSplit(url('staging', 'web'), 30)).blue).toBe(30);
  }, 150_000);

  it('nginx -t failing keeps the old config, reloads nothing and says why', async () => {
    const before = readFileSync(stack.nginx.upstreamFile, 'utf8');
    const broken = join(stack.nginx.prefix, 'conf.d', 'broken.conf');
    writeFileSync(broken, 'this is not nginx config;\n');
    try {
      const answer = await command(
        '/traffic',
        'api 20 green',
        /Traffic for api in staging unchanged|Not done/,
      );
      expect(answer).toMatch(
        /nginx -t rejected the new upstreams; the old config stays: .*unknown directive "this"/,
      );
      expect(readFileSync(stack.nginx.upstreamFile, 'utf8')).toBe(before);
      expect((await states().get('staging', 'api')).weights).toEqual({ blue: 100, green: 0 });
    } finally {
      rmSync(broken);
    }
    expect((await measureSplit(url('staging', 'api'), 30)).blue).toBe(30);
  });
});
