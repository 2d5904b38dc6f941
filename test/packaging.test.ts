import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SwarmExecRunner } from '../src/integrations/nginx-exec.js';
import { SlackDriver } from '../tools/slack-emulator/driver.js';
import { SlackEmulator } from '../tools/slack-emulator/emulator.js';
import { renderBlocks } from '../tools/slack-emulator/render.js';
import { initialUpstreams, proxyLocations, testConfig } from './helpers/config.js';
import { type FlightdeckProcess, SIGNING_SECRET } from './helpers/flightdeck-process.js';
import { HealthHold } from './helpers/packaging-health-hold.js';
import {
  buildImages,
  containerOfClientPort,
  createSecret,
  deployStack,
  ROOT,
  removeSecret,
  removeStack,
  runningContainers,
  SlackApiTap,
  sh,
  sha,
} from './helpers/packaging-stack.js';
import { waitFor } from './helpers/ports.js';
import { measureSplit, releaseIds, releases } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, docker, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

// Ports 29800-29899 belong to this suite: web 29811-2, workers 29821-2, Redis 29890; the stack's
// nginx 29880 (status server 29881) and the colour services it releases (prefix fdpkr) 29861-2.
const STACK = 'fdpkg';
const IMAGE = 'flightdeck/flightdeck:fdpkg';
const WEB_PORTS = [29811, 29812];
const WORKER_PORTS = [29821, 29822];
const SECRETS = [
  'slack_bot_token',
  'slack_signing_secret',
  'alertmanager_webhook_token',
  'redis_password',
  'nginx_admin_token',
];
const REDIS_PASSWORD = 'fdpkg-redis-password-0123456789abcdef';
const NGINX = { port: 29880, statusListen: '127.0.0.1:29881' };
const API = {
  blue: { swarmService: 'fdpkr-staging-api-blue', address: '127.0.0.1:29861' },
  green: { swarmService: 'fdpkr-staging-api-green', address: '127.0.0.1:29862' },
};

async function readyz(port: number): Promise<{ status: number; body: { failing?: string[] } }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(3_000) });
  return { status: res.status, body: (await res.json()) as { failing?: string[] } };
}

const waitReady = (port: number) =>
  waitFor(async () => (await readyz(port)).status === 200, {
    timeoutMs: 180_000,
    intervalMs: 500,
    what: `/readyz 200 on 127.0.0.1:${port}`,
  });

describe('flightdeck as a Swarm stack (image built here, two web and two worker replicas, nginx)', () => {
  const emulator = new SlackEmulator();
  let tap: SlackApiTap;
  let dir: string;
  let nginxDir: string;
  let buildLog = '';
  let colourServices: string[] = [];

  beforeAll(async () => {
    ({ buildLog } = await buildImages(IMAGE));
    await removeStack(STACK);
    await emulator.start();
    tap = await new SlackApiTap(emulator.url).start();
    dir = mkdtempSync(join(tmpdir(), 'fdpkg-'));
    colourServices = await createColourServices([API]);
    const cfg = testConfig(
      {
        upstreamFile: '/etc/nginx/flightdeck/flightdeck-upstreams.conf',
        testCommand: [],
        reloadCommand: [],
        probeUrl: `http://127.0.0.1:${NGINX.port}/flightdeck-nginx-health`,
        statusListen: NGINX.statusListen,
      },
      { prefix: STACK, basePort: 29830 },
    );
    delete cfg.environments.production;
    (cfg.environments.staging as { services: Record<string, unknown> }).services.api = {
      ...cfg.environments.staging?.services.api,
      ...API,
    };
    // nginx is the stack's service: its own `nginx -t` and `nginx -s reload` (the defaults) run in it.
    const { testCommand: _t, reloadCommand: _r, ...nginxCfg } = cfg.nginx;
    const flightdeckYml = {
      ...cfg,
      nginx: { ...nginxCfg, exec: { swarmService: `${STACK}_nginx` } },
      server: { host: '127.0.0.1', port: 3000 },
    };
    // The directory nginx includes: the operator's server block and flightdeck's upstream file,
    // which the workers (uid 1000) rewrite.
    nginxDir = mkdtempSync(join(tmpdir(), 'fdpkg-nginx-'));
    chmodSync(nginxDir, 0o755);
    chownSync(nginxDir, 1000, 1000);
    writeFileSync(
      join(nginxDir, 'site.conf'),
      `server {\n    listen 127.0.0.1:${NGINX.port};\n    location = /flightdeck-nginx-health { return 200 "ok\\n"; }\n${proxyLocations(cfg)}\n}\n`,
    );
    writeFileSync(
      join(nginxDir, 'flightdeck-upstreams.conf'),
      `${initialUpstreams(cfg)}\nserver {\n    listen ${NGINX.statusListen};\n    location = /flightdeck/generation { return 200 "initial"; }\n}\n`,
    );
    const configText = stringify(flightdeckYml);
    const configFile = join(dir, 'flightdeck.yml');
    writeFileSync(configFile, configText);
    await createSecret(`${STACK}_slack_bot_token`, emulator.botToken);
    await createSecret(`${STACK}_slack_signing_secret`, SIGNING_SECRET);
    await createSecret(`${STACK}_alertmanager_webhook_token`, 'fdpkg-webhook-token');
    await createSecret(`${STACK}_redis_password`, REDIS_PASSWORD);
    await createSecret(`${STACK}_nginx_admin_token`, 'fdpkg-nginx-admin-token-0123456789');
    await deployStack(STACK, {
      FLIGHTDECK_IMAGE: IMAGE,
      FLIGHTDECK_CONFIG_FILE: configFile,
      FLIGHTDECK_CONFIG_VERSION: `${STACK}-${sha(configText)}`,
      FLIGHTDECK_SECRETS: STACK,
      DOCKER_GID: String(statSync('/var/run/docker.sock').gid),
      NGINX_FLIGHTDECK_DIR: nginxDir,
      SLACK_API_URL: tap.apiUrl,
      FLIGHTDECK_WEB_PORT_PREFIX: '2981',
      FLIGHTDECK_WORKER_PORT_PREFIX: '2982',
      FLIGHTDECK_REDIS_PORT: '29890',
    });
    await Promise.all([...WEB_PORTS, ...WORKER_PORTS].map(waitReady));
  }, 1_200_000);

  afterAll(async () => {
    for (const svc of ['web', 'worker']) {
      const logs = await sh('docker', ['service', 'logs', '--raw', `${STACK}_${svc}`]).catch((e) =>
        String(e),
      );
      writeFileSync(`/tmp/flightdeck-test-${STACK}-${svc}.log`, logs);
    }
    await removeStack(STACK);
    await removeServicesAndWait(colourServices);
    for (const s of SECRETS) await removeSecret(`${STACK}_${s}`);
    await tap?.stop();
    await emulator.stop();
    for (const d of [dir, nginxDir]) if (d) rmSync(d, { recursive: true, force: true });
  }, 300_000);

  it('builds from the locally assembled base, with the extra CA only in the build stage', async () => {
    expect(buildLog).toMatch(/Successfully tagged flightdeck\/flightdeck:fdpkg/);
    const image = await docker.getImage(IMAGE).inspect();
    expect(image.Config.User).toBe('node');
    expect(image.Config.Entrypoint).toEqual(['/sbin/tini', '--']);
    expect(JSON.stringify(image.Config.Healthcheck?.Test)).toContain('/healthz');
    const [web] = await runningContainers(`${STACK}_web`);
    const exec = async (...cmd: string[]) =>
      sh('docker', ['exec', web as string, ...cmd]).then((s) => s.trim());
    // Non-root, tini as PID 1 with node under it, and no proxy CA or dev dependency in the runtime.
    expect(await exec('id', '-u')).toBe('1000');
    expect(await exec('cat', '/proc/1/cmdline')).toContain('/sbin/tini');
    expect(await exec('sh', '-c', 'ls /tmp/extra-ca.pem /app/node_modules/vitest 2>&1 || true')).toMatch(
      /No such file[\s\S]*No such file/,
    );
    // The Slack emulator is a test double: none of its code is in the image.
    expect(await exec('sh', '-c', 'grep -rl "SlackEmulator\\|_emulator/" /app/dist || echo none')).toBe(
      'none',
    );
    expect(await exec('sh', '-c', 'ls /app/dist')).not.toMatch(/slack-emulator|tools/);
  });

  it('answers /readyz 200 on every web and worker replica', async () => {
    for (const port of WEB_PORTS) {
      const r = await readyz(port);
      expect(r.status, `web on ${port}`).toBe(200);
    }
    for (const port of WORKER_PORTS) expect((await readyz(port)).status, `worker on ${port}`).toBe(200);
    expect(await runningContainers(`${STACK}_web`)).toHaveLength(2);
    expect(await runningContainers(`${STACK}_worker`)).toHaveLength(2);
  });

  it('executes a command sent to either web replica on a worker', async () => {
    for (const port of WEB_PORTS) {
      const driver = new SlackDriver(emulator, `http://127.0.0.1:${port}`, SIGNING_SECRET);
      const before = emulator.ephemeralsFor('U0DEV').length;
      const ack = await driver.command('/traffic', 'status');
      expect(ack.status).toBe(200);
      // The web role runs no job: an answer through response_url can only come from a worker.
      const answer = await waitFor(
        () =>
          emulator
            .ephemeralsFor('U0DEV')
            .slice(before)
            .find((e) => e.via !== 'ack' && /api/.test(e.text))?.text,
        { timeoutMs: 30_000, what: `the worker's answer to /traffic status sent to ${port}` },
      );
      expect(answer).toMatch(/staging/);
    }
  });

  it('releases through the stack: a worker shifts the stack nginx 10 → 50 → 100 by exec in its task', async () => {
    const url = `http://127.0.0.1:${NGINX.port}/staging/api/colour`;
    expect(await measureSplit(url, 20)).toEqual({ blue: 20, green: 0, other: 0 });
    const driver = new SlackDriver(emulator, `http://127.0.0.1:${WEB_PORTS[0]}`, SIGNING_SECRET);
    const ask = async (text: string, answer: RegExp) => {
      const before = emulator.ephemeralsFor('U0DEV').length;
      expect((await driver.command('/deploy', text)).status).toBe(200);
      return waitFor(
        () =>
          emulator
            .ephemeralsFor('U0DEV')
            .slice(before)
            .find((e) => e.via !== 'ack' && answer.test(e.text))?.text,
        { timeoutMs: 60_000, what: `the answer to /deploy ${text}` },
      );
    };
    const [id] = releaseIds(await ask('api 1.1.0', /releasing/));
    expect(id).toBeDefined();
    // The release's progress message in the channel, as people read it.
    let progress = '';
    const waitProgress = (re: RegExp) =>
      waitFor(
        () => {
          progress =
            emulator
              .channelMessages('C0RELEASES')
              .map((m) => renderBlocks(m.blocks, m.text))
              .find((t) => t.includes(id as string)) ?? '';
          return re.test(progress) ? progress : undefined;
        },
        { timeoutMs: 150_000, intervalMs: 200, what: `${id}'s progress to match ${re}` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nmessage now:\n${progress}`);
      });

    for (const [percent, expectGreen] of [
      [10, 20],
      [50, 100],
      [100, 200],
    ] as const) {
      await waitProgress(new RegExp(`⏳ Soak 1h at ${percent}%`));
      expect(progress).toMatch(new RegExp(`✅ Traffic ${percent}% → green.*reloaded`));
      const split = await measureSplit(url, 200);
      expect(split.other).toBe(0);
      // Weighted round robin is exact per nginx worker; two workers interleave.
      expect(Math.abs(split.green - expectGreen)).toBeLessThanOrEqual(percent === 100 ? 0 : 12);
      await ask('promote api', /Promoted/);
    }
    await waitProgress(/✅ Released/);
    expect(await serviceImage(API.green.swarmService)).toBe('flightdeck/testapp:1.1.0');
    // The file nginx serves came from a worker container, and nginx runs its generation.
    const upstreams = readFileSync(join(nginxDir, 'flightdeck-upstreams.conf'), 'utf8');
    expect(upstreams).toMatch(/upstream flightdeck_staging_api \{[^}]*# green 100%/);
    const generation = /# generation ([0-9a-f]{16})/.exec(upstreams)?.[1];
    const live = await fetch(`http://${NGINX.statusListen}/flightdeck/generation`);
    expect(await live.text()).toBe(generation);
  }, 480_000);

  it("runs nginx's commands in the nginx task through Docker and names the task when one fails", async () => {
    const runner = new SwarmExecRunner(docker, `${STACK}_nginx`);
    await runner.run(['nginx', '-t']);
    const err = await runner.run(['nginx', '-t', '-c', '/etc/nginx/missing.conf']).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      new RegExp(`nginx -t -c /etc/nginx/missing.conf\` in ${STACK}_nginx\\.1 exited 1: .*missing\\.conf`),
    );
    const none = new SwarmExecRunner(docker, `${STACK}_no_such_nginx`);
    await expect(none.run(['nginx', '-t'])).rejects.toThrow(
      /nginx service fdpkg_no_such_nginx does not exist/,
    );
  });

  it('loses no job when the worker holding it is killed', async () => {
    // The worker's chat.postMessage is held by Slack for long enough to find and kill that worker.
    emulator.injectFault('chat.postMessage', { status: 500, count: 1, delayMs: 30_000 });
    const seen = tap.calls.length;
    // Posts from here on (the release above posted its own).
    const postsAfter = () =>
      emulator
        .channelMessages('C0RELEASES')
        .filter((m) => m.via === 'chat.postMessage')
        .slice(postsBefore);
    const postsBefore = emulator
      .channelMessages('C0RELEASES')
      .filter((m) => m.via === 'chat.postMessage').length;
    const driver = new SlackDriver(emulator, `http://127.0.0.1:${WEB_PORTS[1]}`, SIGNING_SECRET);
    expect((await driver.command('/checklist', 'pre', { user: 'U0LEAD' })).status).toBe(200);
    const call = await waitFor(() => tap.calls.slice(seen).find((c) => c.method === 'chat.postMessage'), {
      timeoutMs: 30_000,
      what: 'the checklist post to reach Slack',
    });
    const holder = await containerOfClientPort(call.clientPort);
    const workers = await runningContainers(`${STACK}_worker`);
    expect(workers).toContain(holder);
    await docker.getContainer(holder).kill();

    // The other worker takes the job over once its lock lapses (jobs.lockDuration 5s here).
    await waitFor(() => postsAfter().length > 0, {
      timeoutMs: 90_000,
      intervalMs: 250,
      what: 'the checklist message after the kill',
    });
    // Delivered once: the held call never completed, the taken-over job posted it.
    const posts = postsAfter();
    expect(posts).toHaveLength(1);
    expect(posts[0]?.text).toMatch(/pre|checklist/i);
    // Swarm replaces the killed task and both workers are ready again.
    await waitFor(async () => (await runningContainers(`${STACK}_worker`)).length === 2, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'Swarm to replace the killed worker',
    });
    await Promise.all(WORKER_PORTS.map(waitReady));
  }, 300_000);

  it('drains on SIGTERM inside the container (tini passes the signal to node)', async () => {
    const [web] = await runningContainers(`${STACK}_web`);
    await docker.getContainer(web as string).stop({ t: 30 });
    const info = await docker.getContainer(web as string).inspect();
    expect(info.State.ExitCode).toBe(0);
    const logs = await sh('docker', ['logs', web as string]);
    expect(logs).toContain('"signal":"SIGTERM"');
    expect(logs).toContain('Draining');
    expect(logs).toMatch(/"drained":true[^\n]*flightdeck stopped/);
    await Promise.all(WEB_PORTS.map(waitReady));
  }, 300_000);

  it('exports every metric the Grafana dashboard charts, from the running replicas', async () => {
    const dashboard = readFileSync(join(ROOT, 'docs/grafana/flightdeck-dashboard.json'), 'utf8');
    const charted = new Set(
      [...dashboard.matchAll(/\b(flightdeck_[a-z_]+?)(?:_bucket|_sum|_count)?\b[{([]/g)].map(
        (m) => m[1] as string,
      ),
    );
    expect(charted.size).toBeGreaterThan(10);
    let exported = '';
    for (const port of [WEB_PORTS[0], WORKER_PORTS[0]])
      exported += await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const name of charted) expect(exported, name).toContain(`# TYPE ${name} `);
  });

  it('keeps its Redis data in the AOF on the stack volume', async () => {
    const [redis] = await runningContainers(`${STACK}_redis`);
    const info = await docker.getContainer(redis as string).inspect();
    expect(info.Mounts.find((m) => m.Destination === '/data')?.Name).toBe(`${STACK}_redis-data`);
    expect(
      await sh('docker', [
        'exec',
        '-e',
        `REDISCLI_AUTH=${REDIS_PASSWORD}`,
        redis as string,
        'redis-cli',
        '-p',
        '29890',
        'config',
        'get',
        'appendonly',
      ]),
    ).toMatch(/appendonly\s+yes/);
  });

  it('asks for the password of the redis_password secret: without it, no one reaches the queues', async () => {
    // What any process that reaches Redis's port sends: plain RESP, no password.
    const ask = (command: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(29890, '127.0.0.1');
        let reply = '';
        socket.on('data', (d) => {
          reply += d.toString();
          if (reply.endsWith('\r\n')) socket.end();
        });
        socket.on('end', () => resolve(reply));
        socket.on('error', reject);
        socket.write(`${command}\r\n`);
      });
    expect(await ask('PING')).toMatch(/^-NOAUTH/);
    // The command queue a forged job would go into can be neither read nor written.
    expect(await ask(`KEYS ${STACK}:commands:*`)).toMatch(/^-NOAUTH/);
    expect(await ask(`XADD ${STACK}:commands:events * forged 1`)).toMatch(/^-NOAUTH/);
  });

  it('gives each role only the secrets it uses: workers have no signing secret and no webhook token', async () => {
    const secretsOf = async (svc: string) => {
      const info = await docker.getService(`${STACK}_${svc}`).inspect();
      return ((info.Spec?.TaskTemplate?.ContainerSpec?.Secrets ?? []) as Array<{ SecretName: string }>)
        .map((x) => x.SecretName.replace(`${STACK}_`, ''))
        .sort();
    };
    // The one-node override adds nginx's admin token (its config's nginx.driver is lua).
    expect(await secretsOf('worker')).toEqual(['nginx_admin_token', 'redis_password', 'slack_bot_token']);
    expect(await secretsOf('web')).toEqual([
      'alertmanager_webhook_token',
      'redis_password',
      'slack_bot_token',
      'slack_signing_secret',
    ]);
  });
});

describe('graceful shutdown on SIGTERM (a worker stopped in the middle of a release step)', () => {
  // One hold per service: a release still in flight from an earlier test never holds (or counts as)
  // the next test's health check.
  const holds = { api: new HealthHold(), web: new HealthHold() };
  const stack = new TestStack({ prefix: 'fdpkgsd', basePort: 29840 });
  const colours = [
    { svc: 'api', blue: 29841, green: 29842 },
    { svc: 'web', blue: 29851, green: 29852 },
  ].map(({ svc, blue, green }) => ({
    blue: { swarmService: `fdpkgsd-staging-${svc}-blue`, address: `127.0.0.1:${blue}` },
    green: { swarmService: `fdpkgsd-staging-${svc}-green`, address: `127.0.0.1:${green}` },
  }));
  let services: string[] = [];
  const worker = () => stack.apps.at(-1) as FlightdeckProcess;

  /** The green weight nginx is configured with for one staging service. */
  const greenShare = (svc: string) =>
    new RegExp(`upstream flightdeck_staging_${svc} \\{[^}]*# green (\\d+)%`).exec(
      readFileSync(stack.nginx.upstreamFile, 'utf8'),
    )?.[1];

  beforeAll(async () => {
    await holds.api.start();
    await holds.web.start();
    services = await createColourServices(colours);
    await stack.start({
      roles: ['web', 'worker'],
      configure: (cfg) => {
        delete cfg.environments.production;
        // Green's health endpoint is the hold: a health check stays in flight until it answers.
        for (const [name, s] of Object.entries(cfg.environments.staging?.services ?? {}))
          s.green.address = holds[name as keyof typeof holds].address;
        cfg.release.healthCheck = { attempts: 1, interval: '300ms', timeout: '60s' };
      },
    });
  }, 300_000);

  afterAll(async () => {
    holds.api.answer();
    holds.web.answer();
    await stack.stop();
    await holds.api.stop();
    await holds.web.stop();
    await removeServicesAndWait(services);
  }, 180_000);

  async function deployAndWaitForHealthCheck(svc: 'api' | 'web'): Promise<void> {
    const hold = holds[svc];
    hold.hold();
    const before = hold.received;
    const driver = new SlackDriver(stack.emulator, stack.apps[0]?.url ?? '', SIGNING_SECRET);
    expect((await driver.command('/deploy', `${svc} 1.1.0`)).status).toBe(200);
    await waitFor(() => hold.received > before, {
      timeoutMs: 120_000,
      intervalMs: 100,
      what: `the health check of ${svc}'s new colour`,
    });
  }

  it('fails /readyz, finishes the step in flight, then exits 0', async () => {
    await deployAndWaitForHealthCheck('api');
    process.kill(worker().pid as number, 'SIGTERM');
    const draining = await waitFor(
      async () => {
        const res = await fetch(`${worker().url}/readyz`);
        return res.status === 503 ? ((await res.json()) as { failing: string[] }) : undefined;
      },
      { timeoutMs: 10_000, what: '/readyz 503 while draining' },
    );
    expect(draining.failing).toContain('shutting-down');
    expect(worker().exitCode).toBeNull(); // still finishing the health check
    holds.api.answer();
    await waitFor(() => worker().exitCode !== null, { timeoutMs: 60_000, what: 'the worker to exit' });
    expect(worker().exitCode).toBe(0);
    expect(worker().output).toMatch(/"drained":true[^\n]*flightdeck stopped/);
    // The check it was making finished and is on the record. It was either the health step's (the
    // release then moved on: nginx sends green its first 10%) or the first of the streak checked
    // while Swarm still confirmed the update (the health step then has it).
    const api = (await releases(stack).recent(10)).find((r) => r.service === 'api');
    const health = api?.steps.find((st) => st.kind === 'health');
    if (health?.status === 'done') expect(greenShare('api')).toBe('10');
    else expect(health).toMatchObject({ streak: 1, detail: expect.stringMatching(/^1\/1 healthy/) });
  }, 240_000);

  it('hands the job back when the timeout passes, and another worker resumes it', async () => {
    await stack.addApp('worker', { FLIGHTDECK_SHUTDOWN_TIMEOUT: '2s' });
    await deployAndWaitForHealthCheck('web');
    const stopping = worker();
    process.kill(stopping.pid as number, 'SIGTERM');
    await waitFor(() => stopping.exitCode !== null, { timeoutMs: 30_000, what: 'the worker to exit' });
    expect(stopping.exitCode).toBe(0);
    expect(stopping.output).toContain('handing the active jobs back');
    expect(greenShare('web')).toBe('0');

    await stack.addApp('worker');
    holds.web.answer();
    await waitFor(() => greenShare('web') === '10', {
      timeoutMs: 120_000,
      intervalMs: 250,
      what: 'the new worker to resume the release to 10%',
    });
  }, 300_000);
});
