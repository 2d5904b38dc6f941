/**
 * `npm run demo`: flightdeck on its embedded defaults against the local stack (scripts/stack.sh demo)
 * and the Slack emulator, printing the Slack conversation as it happens. Type slash commands at the
 * prompt (`/deploy help`, `as U0GUEST /deploy api 1.1.0 to production`); Ctrl-C stops everything.
 * `--once` runs the scripted conversation and exits (used by the test suite).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { TZDate } from '@date-fns/tz';
import { format } from 'date-fns';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { startFlightdeck } from '../src/app.js';
import { FlightdeckConfig } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { ReleaseStore } from '../src/releases/release-store.js';
import { SlackDriver } from '../tools/slack-emulator/driver.js';
import { SlackEmulator } from '../tools/slack-emulator/emulator.js';
import { c, printTranscript, sendLine } from './slack-transcript.js';
import { testappServiceSpec } from './testapp-service.js';

const ROOT = resolve(import.meta.dirname, '..');
const STATE = process.env.FLIGHTDECK_STACK_DIR ?? join(ROOT, '.stack');
const once = process.argv.includes('--once');
const port = Number(process.env.PORT ?? 3000);
const nginxPrefix = join(STATE, 'nginx');
mkdirSync(join(nginxPrefix, 'conf.d'), { recursive: true });

const alertmanagerUrl = `http://127.0.0.1:${process.env.STACK_ALERTMANAGER_PORT ?? 9093}`;
const webhookToken = process.env.ALERTMANAGER_WEBHOOK_TOKEN ?? 'demo-webhook-token';
const nginxArgs = ['-p', nginxPrefix, '-c', 'nginx.conf', '-e', join(nginxPrefix, 'logs', 'error.log')];
const svc = (env: string, name: string, base: number) => ({
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: `demo-${env}-${name}-blue`, address: `127.0.0.1:${base}` },
  green: { swarmService: `demo-${env}-${name}-green`, address: `127.0.0.1:${base + 1}` },
});

const DEMO_SELECTOR = 'service="{{service}}",colour="{{colour}}"';

/**
 * Request metrics per service and colour for the demo's compare gate, scraped by the stack's
 * Prometheus: synthetic (the test app exports none), 60 requests a second each, 0.5% errors unless a
 * colour is made bad on purpose.
 */
const demoMetrics = {
  counts: new Map<string, { requests: number; errors: number }>(),
  bad: new Set<string>(),
};
const demoMetricsTimer = setInterval(() => {
  for (const service of ['api', 'web'])
    for (const colour of ['blue', 'green']) {
      const k = `${service}|${colour}`;
      const c = demoMetrics.counts.get(k) ?? { requests: 0, errors: 0 };
      c.requests += 60;
      c.errors += 60 * (demoMetrics.bad.has(k) ? 0.06 : 0.005);
      demoMetrics.counts.set(k, c);
    }
}, 1_000);
demoMetricsTimer.unref();
const demoMetricsServer = createServer((_req, res) => {
  const lines = ['# TYPE demo_requests_total counter'];
  for (const [k, c] of demoMetrics.counts) {
    const [service, colour] = k.split('|');
    const l = `service="${service}",colour="${colour}",environment="staging"`;
    lines.push(`demo_requests_total{${l},code="200"} ${c.requests - c.errors}`);
    lines.push(`demo_requests_total{${l},code="500"} ${c.errors}`);
  }
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
  res.end(`${lines.join('\n')}\n`);
});
demoMetricsServer.listen(Number(process.env.STACK_DEMO_METRICS_PORT ?? 8090), '127.0.0.1');

/** "YYYY-MM-DD HH:MM" in the demo's time zone, `offsetMs` from now. */
const localTime = (offsetMs: number) =>
  format(new TZDate(Date.now() + offsetMs, 'Europe/London'), 'yyyy-MM-dd HH:mm');

/** The embedded defaults: two environments on the local stack, a lead, a deployer, a guest. */
const config = FlightdeckConfig.parse({
  timezone: 'Europe/London',
  defaultEnvironment: 'staging',
  server: { port, host: '127.0.0.1' },
  redis: { prefix: 'flightdeck-demo' },
  nginx: {
    upstreamFile: join(nginxPrefix, 'conf.d', 'flightdeck-upstreams.conf'),
    testCommand: ['nginx', ...nginxArgs, '-t', '-q'],
    reloadCommand: ['nginx', ...nginxArgs, '-s', 'reload'],
    probeUrl: `http://127.0.0.1:${process.env.STACK_NGINX_PORT ?? 8088}/flightdeck-nginx-health`,
    // Weights change in nginx's shared memory, without a reload: no request is lost during a release
    // (a reload can reset an idle keep-alive connection a request is racing onto).
    driver: 'lua',
    statusListen: `127.0.0.1:${process.env.STACK_NGINX_STATUS_PORT ?? 8087}`,
  },
  channels: { releases: 'C0RELEASES', alerts: 'C0ALERTS' },
  access: { leads: ['U0LEAD'] },
  alertmanager: { url: alertmanagerUrl },
  checklists: { templates: join(ROOT, 'scripts', 'demo-template.yml'), gateEnvironments: ['production'] },
  // A version enters production only after it completed in staging.
  pipeline: ['staging', 'production'],
  // Production is frozen for the next two hours, whenever the demo runs (rollbacks still go through).
  freezes: [
    {
      name: 'Quarter close',
      reason: 'finance is closing the books',
      from: localTime(-3_600_000),
      until: localTime(2 * 3_600_000),
      environments: ['production'],
    },
  ],
  alerts: {
    defaultChannel: 'C0ALERTS',
    routes: [{ match: { severity: 'critical' }, channel: 'C0ONCALL' }],
    escalation: { after: '5m', repeat: '10m', maxTimes: 3, notify: ['U0ONCALL'] },
    reconcileEvery: '3s',
  },
  // Short soaks so the whole release fits in a minute; production keeps the seed's defaults.
  release: {
    steps: [10, 50, 100],
    soak: ['6s', '6s', '3s'],
    convergeTimeout: '2m',
    pollInterval: '1s',
    healthCheck: { attempts: 2, interval: '500ms', timeout: '1s' },
    smoke: [{ path: '/version', status: 200 }],
    // The canary's error ratio against the stable colour's, over the same window (the metrics are
    // the demo's own synthetic ones, below).
    gates: [
      {
        name: 'error rate',
        compare: 'errors',
        requests: `sum(increase(demo_requests_total{${DEMO_SELECTOR}}[{{window}}]))`,
        errors: `sum(increase(demo_requests_total{${DEMO_SELECTOR},code="500"}[{{window}}]))`,
        minRequests: 200,
        maxExtension: '1m',
      },
    ],
  },
  prometheus: { url: `http://127.0.0.1:${process.env.STACK_PROMETHEUS_PORT ?? 9090}` },
  environments: {
    staging: {
      deployers: ['*'],
      services: { api: svc('staging', 'api', 19001), web: svc('staging', 'web', 19011) },
    },
    production: {
      channel: 'C0PROD',
      deployers: ['U0DEV'],
      requireApproval: true,
      services: { api: svc('production', 'api', 19101), web: svc('production', 'web', 19111) },
    },
  },
});

const redisUrl = process.env.REDIS_URL ?? `redis://127.0.0.1:${process.env.STACK_REDIS_PORT ?? 6390}`;
const demoPort = Number(process.env.STACK_DEMO_HTTP_PORT ?? 8089);

/** The demo owns its Redis prefix and its Swarm services: start each run from the same place. */
async function resetDemo(): Promise<void> {
  // Silences from an earlier run would mute this run's alert.
  const silences = (await fetch(`${alertmanagerUrl}/api/v2/silences`)
    .then((r) => r.json())
    .catch(() => [])) as Array<{ id: string; createdBy: string; status: { state: string } }>;
  for (const s of silences) {
    if (s.status.state === 'active' && s.createdBy.endsWith('via flightdeck')) {
      await fetch(`${alertmanagerUrl}/api/v2/silence/${s.id}`, { method: 'DELETE' }).catch(() => {});
    }
  }
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  const keys = await r.keys('flightdeck-demo:*');
  if (keys.length > 0) await r.del(...keys);
  r.disconnect();
  const docker = new Docker({ socketPath: '/var/run/docker.sock', version: 'v1.41' });
  const staging = config.environments.staging?.services ?? {};
  const wanted = Object.values(staging).flatMap((svc) =>
    (['blue', 'green'] as const).map((colour) => ({
      name: svc[colour].swarmService,
      colour,
      port: Number(svc[colour].address.split(':')[1]),
    })),
  );
  await Promise.all(
    wanted.map((w) =>
      docker
        .getService(w.name)
        .remove()
        .catch(() => {}),
    ),
  );
  // Host ports are free only once the old containers are gone.
  for (let i = 0; i < 120; i++) {
    const left = await docker.listContainers({
      all: true,
      filters: { label: ['com.docker.swarm.service.name'] },
    });
    if (!left.some((ct) => wanted.some((w) => w.name === ct.Labels['com.docker.swarm.service.name']))) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  for (const w of wanted) {
    await docker.createService(
      testappServiceSpec({
        ...w,
        image: 'flightdeck/testapp:1.0.0',
        labels: { 'flightdeck.demo': '1' },
      }) as never,
    );
  }
  for (const w of wanted) {
    for (let i = 0; i < 240; i++) {
      const ok = await fetch(`http://127.0.0.1:${w.port}/health`, { signal: AbortSignal.timeout(500) }).then(
        (x) => x.ok,
        () => false,
      );
      if (ok) break;
      await new Promise((res) => setTimeout(res, 250));
    }
  }
}

/** A server block so you can curl the services through nginx: http://127.0.0.1:8089/staging/api/colour */
function exposeThroughNginx(): void {
  const locations = Object.entries(config.environments)
    .flatMap(([env, e]) =>
      Object.keys(e.services).map(
        (svc) => `  location /${env}/${svc}/ { proxy_pass http://flightdeck_${env}_${svc}/; }`,
      ),
    )
    .join('\n');
  writeFileSync(
    join(nginxPrefix, 'conf.d', 'zz-demo-server.conf'),
    `server {\n  listen 127.0.0.1:${demoPort};\n${locations}\n}\n`,
  );
  execFileSync('nginx', [...nginxArgs, '-s', 'reload']);
}

/** `n` requests through nginx: how many each colour answered, and how many failed (never hidden). */
async function split(env: string, svc: string, n = 100): Promise<string> {
  const counts = { blue: 0, green: 0 };
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${demoPort}/${env}/${svc}/colour`).then(
      async (x) => (x.ok ? (await x.text()).trim() : 'failed'),
      () => 'failed',
    );
    if (res === 'blue' || res === 'green') counts[res] += 1;
    else failed += 1;
  }
  const colours = (['blue', 'green'] as const).filter((c) => counts[c] > 0).map((c) => `${c} ${counts[c]}`);
  return `${colours.join(' / ')} · ${failed} failed`;
}

console.log(
  'Preparing the demo: Swarm services demo-staging-{api,web}-{blue,green} on flightdeck/testapp:1.0.0 …',
);
await resetDemo();

const emulator = await new SlackEmulator().start(Number(process.env.SLACK_EMULATOR_PORT ?? 0));
printTranscript(emulator);

const signingSecret = randomBytes(16).toString('hex');
const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
const app = await startFlightdeck(
  {
    config: { ...config, slack: { apiUrl: emulator.apiUrl } },
    secrets: {
      slackSigningSecret: signingSecret,
      slackBotToken: emulator.botToken,
      redisUrl,
      alertmanagerWebhookToken: webhookToken,
      nginxAdminToken: randomBytes(24).toString('hex'),
    },
    role: 'all',
    configPath: '(embedded demo defaults)',
  },
  logger,
);
const driver = new SlackDriver(emulator, `http://127.0.0.1:${app.port}`, signingSecret);
exposeThroughNginx();

console.log(
  `${c.bold}flightdeck demo${c.reset} — flightdeck on http://127.0.0.1:${app.port}, Slack emulator on ${emulator.url}`,
);
console.log(
  `${c.dim}users: @lena (U0LEAD, lead), @dev (U0DEV, production deployer), @guest (U0GUEST)${c.reset}`,
);

const settle = (ms = 600) => new Promise((r) => setTimeout(r, ms));
async function send(line: string): Promise<void> {
  await sendLine(driver, line);
}

for (const line of ['/deploy help', '/traffic api 150', 'as U0GUEST /deploy api 1.1.0 to production']) {
  await send(line);
  await settle();
}

/** Follows the latest release of a service until it ends, measuring the split through nginx at each soak. */
async function watchRelease(env: string, service: string, since: number, measure = true): Promise<void> {
  const splitSeen = new Set<number>();
  for (let i = 0; i < 240; i++) {
    const r = new Redis(redisUrl);
    // Read through the store, not by key pattern: a release owns several keys of other types.
    const [rel] = await new ReleaseStore(r, 'flightdeck-demo').history(env, service, 1);
    r.disconnect();
    const step = rel?.steps?.[rel.stepIndex];
    if (
      measure &&
      rel &&
      rel.createdAt >= since &&
      step?.kind === 'soak' &&
      step.status === 'waiting' &&
      step.percent !== undefined &&
      !splitSeen.has(step.percent)
    ) {
      splitSeen.add(step.percent);
      console.log(
        `  ${c.dim}(meanwhile, 100 requests through nginx to /${env}/${service}/: ${await split(env, service)})${c.reset}`,
      );
    }
    // Only the release this command started: an earlier one of the service has ended already.
    if (rel && rel.createdAt >= since && ['completed', 'rolled_back', 'failed'].includes(rel.status)) return;
    await settle(250);
  }
}

// A real release on Swarm and nginx, watched through its progress message.
let sent = Date.now();
await send('/deploy api 1.1.0 to staging');
await watchRelease('staging', 'api', sent);
await settle(800);
await send('/traffic status');
await settle(800);
await send('/rollback api');
await settle(1_500);
console.log(`  ${c.dim}(through nginx now: ${await split('staging', 'api')})${c.reset}`);

// A compare gate fails a bad canary: web's green answers 6% errors while blue stays at 0.5%.
console.log(
  `\n${c.dim}(web 1.1.0 is bad: its green colour fails 6% of requests, blue 0.5%; the error-rate gate compares the two)${c.reset}`,
);
demoMetrics.bad.add('web|green');
sent = Date.now();
await send('/deploy web 1.1.0 to staging');
await watchRelease('staging', 'web', sent, false);
await settle(1_500);
demoMetrics.bad.delete('web|green');

// An alert fired through the real Alertmanager, acknowledged, silenced and resolved in place.
const demoAlert = {
  labels: {
    alertname: 'HighLatency',
    severity: 'critical',
    service: 'api',
    environment: 'staging',
    instance: 'api-green',
    // Unique to this run: Alertmanager does not re-notify an identical alert within repeat_interval.
    demo_run: String(Date.now()),
  },
  annotations: {
    summary: 'p95 latency of api above 2 s',
    description: 'histogram_quantile(0.95, …) = 2.7 s for 5 minutes.',
  },
};
console.log(
  `\n${c.dim}(Prometheus fires HighLatency; Alertmanager at ${alertmanagerUrl} sends it to flightdeck)${c.reset}`,
);
const postAlert = (endsAt?: string) =>
  fetch(`${alertmanagerUrl}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ ...demoAlert, ...(endsAt ? { endsAt } : {}) }]),
  });
await postAlert();
const alertMessage = async (pattern: RegExp) => {
  for (let i = 0; i < 120; i++) {
    const m = emulator
      .channelMessages('C0ONCALL')
      .find((x) => pattern.test(JSON.stringify(x.blocks ?? x.text)));
    if (m) return m;
    await settle(250);
  }
  throw new Error('the alert did not reach Slack');
};
const fired = await alertMessage(/HighLatency/);
const fingerprint = /`([a-f0-9]{16})`/.exec(JSON.stringify(fired.blocks))?.[1] ?? '';
await settle(500);
await driver.click(
  fired,
  { action_id: 'alert_ack', value: fingerprint, text: 'Acknowledge' },
  { user: 'U0ONCALL' },
);
await alertMessage(/Acknowledged by/);
await settle(500);
await driver.click(
  fired,
  { action_id: 'alert_silence', value: `${fingerprint}|1h`, text: 'Silence 1h' },
  { user: 'U0ONCALL' },
);
await alertMessage(/Silenced by/);
const silences = (await (await fetch(`${alertmanagerUrl}/api/v2/silences`)).json()) as Array<{
  createdBy: string;
  status: { state: string };
}>;
console.log(
  `  ${c.dim}(Alertmanager now has ${silences.filter((x) => x.status.state === 'active').length} active silence(s), created by ${silences.at(-1)?.createdBy})${c.reset}`,
);
console.log(
  `${c.dim}(the latency recovers; Alertmanager mutes the resolved notification of a silenced alert, so flightdeck notices by comparing with Alertmanager's list)${c.reset}`,
);
await postAlert(new Date(Date.now() - 1_000).toISOString());
await alertMessage(/resolved after/);

// The 28-day rollout: a lead starts it, the team ticks items from Slack, the gate stops production.
console.log(`\n${c.dim}(the 28-day rollout: day 1 was 14 days ago, so the calendar says phase 3)${c.reset}`);
const start = new Date(Date.now() - 14 * 86_400_000).toISOString().slice(0, 10);
await send(`as U0LEAD /checklist start q4-launch ${start}`);
await settle(800);
const checklistMessage = async (title: string) => {
  for (let i = 0; i < 80; i++) {
    const m = [...emulator.channelMessages('C0RELEASES')]
      .reverse()
      .find((x) => JSON.stringify(x.blocks ?? '').includes(`📋 ${title}`));
    if (m) return m;
    await settle(250);
  }
  throw new Error(`no ${title} message`);
};
/** Ticks items as Slack sends a checkbox click: the group's new selection, from the message as shown. */
const tickItems = async (title: string, ids: string[], user: string) => {
  for (const id of ids) {
    const m = await checklistMessage(title);
    const block = (m.blocks ?? []).find((b) =>
      ((b as { elements?: Array<{ options?: Array<{ value: string }> }> }).elements?.[0]?.options ?? []).some(
        (o) => o.value === id,
      ),
    ) as { block_id: string; elements: Array<{ initial_options?: Array<{ value: string }> }> };
    await driver.click(
      m,
      {
        action_id: 'checklist_tick',
        type: 'checkboxes',
        block_id: block.block_id,
        text: `☑ ${id}`,
        selected_options: [...(block.elements[0]?.initial_options ?? []), { value: id }],
      },
      { user },
    );
    await settle(700);
  }
};
await send('/checklist');
await settle(2_500);
await tickItems('Staging validation', ['user-registration', 'user-authentication'], 'U0DEV');
await send('/checklist phase 2');
await settle(1_500);
await tickItems('Pre-production validation thresholds', ['avg-response', 'error-rate'], 'U0LEAD');
await send('/checklist status');
await settle(1_000);
await send('/checklist pre');
await settle(1_500);
await tickItems('Pre-deployment checklist', ['ssl-certificates'], 'U0DEV');
// Production takes only what completed in staging: api 1.1.0 was rolled back there, production is
// frozen, and the pre-deployment checklist is not done.
await send('/deploy api 1.1.0 to production');
await settle(1_000);
await tickItems('Pre-deployment checklist', ['load-balancer-tested', 'rollback-tested'], 'U0LEAD');
console.log(`\n${c.dim}(api 1.1.0 goes through staging again, and completes there this time)${c.reset}`);
sent = Date.now();
await send('/deploy api 1.1.0 to staging');
await watchRelease('staging', 'api', sent, false);
await settle(800);
await send('/deploy api 1.1.0 to production');
await settle(1_000);
await send('/deploy status');
await settle(800);
// The freeze is the only rule left; a lead deploys past it, on the record.
await send('as U0LEAD /deploy api 1.1.0 to production override CAB-42: fix for the checkout outage');
await settle(1_500);
await send('/checklist status');
await settle(1_000);
await send('/checklist post');
await settle(1_500);

async function shutdown(): Promise<void> {
  demoMetricsServer.close();
  await app.stop();
  await emulator.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

if (once) {
  await shutdown();
} else if (process.stdin.isTTY) {
  console.log(`\n${c.bold}Your turn.${c.reset} Type slash commands (Ctrl-C to stop).`);
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ' });
  rl.prompt();
  rl.on('line', async (line) => {
    if (line.trim()) await send(line);
    await settle(400);
    rl.prompt();
  });
  rl.on('close', () => void shutdown());
} else {
  console.log(`\n${c.dim}flightdeck keeps running; Ctrl-C to stop.${c.reset}`);
}
