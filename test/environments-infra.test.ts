// One set of infrastructure per environment, for real: staging reaches Docker over tcp + TLS (a
// TLS-terminating proxy in front of this host's socket, with certificates made by openssl here),
// production's Docker endpoint does not exist, qa has its own nginx and its own Prometheus, and
// preprod (releases wait for approval) shares staging's endpoint. The others share the stack's
// nginx and the top-level Prometheus.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerEndpoint } from '../src/config/infrastructure.js';
import { createDocker, pingDocker } from '../src/integrations/swarm.js';
import { ServiceStateStore } from '../src/releases/service-state-store.js';
import { initialUpstreams, proxyLocations, testConfig } from './helpers/config.js';
import { TestNginx } from './helpers/nginx-server.js';
import { waitFor } from './helpers/ports.js';
import { TestPrometheus } from './helpers/prometheus-server.js';
import { measureSplit, releaseIds, waitRelease } from './helpers/release.js';
import { TestStack } from './helpers/stack.js';
import { createColourServices, removeServicesAndWait, serviceImage } from './helpers/swarm.js';

const PREFIX = 'fdenvs';
const BASE = 32000;
const NO_DOCKER = 'unix:///nonexistent/flightdeck-envs-docker.sock';

const dir = mkdtempSync(join(tmpdir(), 'fd-envs-'));
const certPath = join(dir, 'client');
const stack = new TestStack({ prefix: PREFIX, basePort: BASE });
const qaNginx = new TestNginx();
const promTop = new TestPrometheus();
const promQa = new TestPrometheus();
const names: string[] = [];

/** openssl, argv only: a CA, a server certificate for 127.0.0.1 and a client certificate. */
function makeCertificates(): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca'])
    ssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      `${ca}-key.pem`,
      '-out',
      `${ca}.pem`,
      '-days',
      '1',
      '-subj',
      `/CN=${ca}`,
    );
  const signed = (name: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('req', ...key, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}-cert.pem`,
    );
  };
  signed('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  signed('client', 'flightdeck', 'extendedKeyUsage=clientAuth\n');
  // The layout of Docker's DOCKER_CERT_PATH.
  mkdirSync(certPath);
  copyFileSync(join(dir, 'ca.pem'), join(certPath, 'ca.pem'));
  copyFileSync(join(dir, 'client-cert.pem'), join(certPath, 'cert.pem'));
  copyFileSync(join(dir, 'client-key.pem'), join(certPath, 'key.pem'));
}

/** dockerd's API over TLS with client certificates (as `dockerd --tlsverify`), forwarded to its socket. */
class TlsDockerProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async start(): Promise<void> {
    const read = (f: string) => readFileSync(join(dir, f));
    this.server = createServer(
      { key: read('server-key.pem'), cert: read('server-cert.pem'), ca: read('ca.pem'), requestCert: true },
      (client) => {
        const engine = connect('/var/run/docker.sock');
        for (const s of [client, engine]) {
          this.sockets.add(s);
          s.on('close', () => this.sockets.delete(s));
        }
        client.on('error', () => engine.destroy());
        engine.on('error', () => client.destroy());
        client.pipe(engine).pipe(client);
      },
    );
    this.server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', () => resolve()));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  /** The endpoint stops answering (connections refused) until start() again, on the same port. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise((r) => server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.server = undefined;
  }
}
const proxy = new TlsDockerProxy();

const qaService = (colour: 'blue' | 'green', port: number) => ({
  swarmService: `${PREFIX}-qa-api-${colour}`,
  address: `127.0.0.1:${port}`,
});
const qaEnvironment = () => ({
  deployers: ['*'],
  nginx: {
    upstreamFile: qaNginx.upstreamFile,
    testCommand: qaNginx.testCommand,
    reloadCommand: qaNginx.reloadCommand,
    probeUrl: qaNginx.probeUrl,
    statusListen: qaNginx.statusListen,
  },
  prometheus: { url: promQa.url },
  services: {
    api: {
      image: 'flightdeck/testapp',
      port: 8080,
      healthPath: '/health',
      blue: qaService('blue', BASE + 201),
      green: qaService('green', BASE + 202),
    },
  },
});

/** Shares staging's endpoint; nothing runs its services (its one release stops at the update). */
const preprodEnvironment = () => ({
  deployers: ['*'],
  requireApproval: true,
  docker: { host: `tcp://127.0.0.1:${proxy.port}`, tls: { certPath } },
  release: { maxStepRetries: 1 },
  services: {
    api: {
      image: 'flightdeck/testapp',
      port: 8080,
      healthPath: '/health',
      blue: { swarmService: `${PREFIX}-preprod-api-blue`, address: `127.0.0.1:${BASE + 301}` },
      green: { swarmService: `${PREFIX}-preprod-api-green`, address: `127.0.0.1:${BASE + 302}` },
    },
  },
});

beforeAll(async () => {
  makeCertificates();
  await proxy.start();
  // Each Prometheus knows only its own environments: `up` exists for a target that never answers.
  const targets = (...envs: string[]) => envs.map((env) => ({ address: '127.0.0.1:9', labels: { env } }));
  await Promise.all([promTop.start(targets('staging', 'production')), promQa.start(targets('qa'))]);
  // qa's own nginx proxies qa alone.
  const qaOnly = {
    ...testConfig({ upstreamFile: '', testCommand: [], reloadCommand: [], probeUrl: '', statusListen: '' }),
    environments: { qa: qaEnvironment() },
  };
  await qaNginx.start(proxyLocations(qaOnly), initialUpstreams(qaOnly));
  await stack.start({
    nginxEnvironments: ['staging', 'production', 'preprod'],
    configure: (cfg) => {
      Object.assign(cfg, {
        prometheus: { url: promTop.url },
        checklists: { gateEnvironments: [] },
      });
      Object.assign(cfg.release, {
        steps: [100],
        soak: ['1s'],
        gates: [{ name: 'own prometheus', query: 'count(up{env="{{environment}}"})', min: 1 }],
      });
      Object.assign(cfg.environments.staging ?? {}, {
        docker: { host: `tcp://127.0.0.1:${proxy.port}`, tls: { certPath } },
      });
      Object.assign(cfg.environments.production ?? {}, { docker: { host: NO_DOCKER } });
      cfg.environments.qa = qaEnvironment();
      cfg.environments.preprod = preprodEnvironment();
    },
  });
  const staging = stack.config.environments.staging?.services.api;
  const qa = stack.config.environments.qa?.services.api;
  if (!staging || !qa) throw new Error('config without staging/api or qa/api');
  names.push(...(await createColourServices([staging, qa])));
  for (const [prom, env] of [
    [promTop, 'staging'],
    [promQa, 'qa'],
  ] as const)
    await waitFor(async () => (await prom.query(`count(up{env="${env}"})`)).length > 0, {
      timeoutMs: 30_000,
      what: `${env} in its Prometheus`,
    });
}, 240_000);

afterAll(async () => {
  await stack.stop();
  await removeServicesAndWait(names);
  qaNginx.destroy();
  await Promise.all([promTop.destroy(), promQa.destroy()]);
  await proxy.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tlsEndpoint = (tls: Partial<{ caFile: string; certFile: string; keyFile: string; verify: boolean }>) =>
  ({
    transport: 'tcp',
    host: `tcp://127.0.0.1:${proxy.port}`,
    hostname: '127.0.0.1',
    port: proxy.port,
    tls: { verify: true, ...tls },
  }) as DockerEndpoint;

async function readyz() {
  const res = await fetch(`${stack.apps[0]?.url}/readyz`);
  return {
    status: res.status,
    body: (await res.json()) as { failing: string[]; checks: Record<string, string> },
  };
}

describe('Docker over tcp + TLS', () => {
  it('connects with the certificates of certPath, and refuses what it should', async () => {
    const files = {
      caFile: join(certPath, 'ca.pem'),
      certFile: join(certPath, 'cert.pem'),
      keyFile: join(certPath, 'key.pem'),
    };
    await pingDocker(createDocker(tlsEndpoint(files)));
    // A manager whose certificate another CA signed is refused, unless verify: false says not to check.
    const otherCa = { ...files, caFile: join(dir, 'other-ca.pem') };
    await expect(pingDocker(createDocker(tlsEndpoint(otherCa)))).rejects.toThrow(/certificate/);
    await pingDocker(createDocker(tlsEndpoint({ ...otherCa, verify: false })));
    // The engine asks for a client certificate: without one, no answer.
    await expect(pingDocker(createDocker(tlsEndpoint({ caFile: files.caFile })))).rejects.toThrow();
  });
});

describe('one environment’s Docker endpoint does not answer', () => {
  it('/readyz names that environment’s part alone, and every part of the others', async () => {
    const r = await readyz();
    expect(r.status).toBe(503);
    expect(r.body.failing).toEqual(['docker:production']);
    expect(r.body.checks['docker:production']).toMatch(
      /^unix:\/\/\/nonexistent\/flightdeck-envs-docker\.sock does not answer \(ENOENT\)/,
    );
    expect(r.body.checks).toMatchObject({
      redis: 'ok',
      'docker:staging': 'ok',
      'docker:qa': 'ok',
      'docker:preprod': 'ok',
      'nginx:staging': 'ok',
      'nginx:production': 'ok',
      'nginx:qa': 'ok',
      'nginx:preprod': 'ok',
      'prometheus:staging': 'ok',
      'prometheus:production': 'ok',
      'prometheus:qa': 'ok',
      'prometheus:preprod': 'ok',
    });
  });

  it('/deploy into it says so at once and starts nothing', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    const started = Date.now();
    await stack.driver.command('/deploy', 'all 1.1.0 to production');
    const answer = await stack.answerTo('U0DEV', seen, /not released/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer).toBe(
      `:no_entry: api, web not released: production's Docker endpoint ${NO_DOCKER} does not answer (ENOENT); other environments are not affected.`,
    );
    const states = new ServiceStateStore(stack.client, stack.prefix);
    for (const svc of ['api', 'web']) expect((await states.get('production', svc)).inFlight).toBeUndefined();
  });

  it('a release in each other environment completes, through its own Docker endpoint, nginx and Prometheus', async () => {
    const ids: string[] = [];
    for (const text of ['api 1.1.0', 'api 1.1.0 to qa']) {
      const seen = stack.emulator.ephemeralsFor('U0DEV').length;
      await stack.driver.command('/deploy', text);
      ids.push(...releaseIds(await stack.answerTo('U0DEV', seen, /releasing/)));
    }
    expect(ids).toHaveLength(2);
    for (const id of ids) {
      const r = await waitRelease(stack, id, (x) => x.status === 'completed', 'completed', 120_000);
      // Each gate counts the environment's targets in its own Prometheus; the other one has none.
      expect(r.gateResults.find((g) => g.name === 'own prometheus')).toMatchObject({ value: 1, ok: true });
    }
    expect(await promTop.query('count(up{env="qa"})')).toEqual([]);
    expect(await promQa.query('count(up{env="staging"})')).toEqual([]);
    // Staging went through the TLS endpoint to this host's Swarm like qa through the socket.
    expect(await serviceImage(`${PREFIX}-staging-api-green`)).toBe('flightdeck/testapp:1.1.0');
    expect(await serviceImage(`${PREFIX}-qa-api-green`)).toBe('flightdeck/testapp:1.1.0');
    // Each nginx renders its own environments only, and serves the new colour.
    const stackFile = readFileSync(stack.nginx.upstreamFile, 'utf8');
    const qaFile = readFileSync(qaNginx.upstreamFile, 'utf8');
    expect(stackFile).toContain('upstream flightdeck_staging_api {');
    expect(stackFile).toContain('upstream flightdeck_production_api {');
    expect(stackFile).not.toContain('flightdeck_qa_');
    expect(qaFile).toContain('upstream flightdeck_qa_api {');
    expect(qaFile).not.toMatch(/flightdeck_(staging|production)_/);
    expect(await measureSplit(`http://127.0.0.1:${stack.nginx.port}/staging/api/colour`, 20)).toEqual({
      blue: 0,
      green: 20,
      other: 0,
    });
    expect(await measureSplit(`http://127.0.0.1:${qaNginx.port}/qa/api/colour`, 20)).toEqual({
      blue: 0,
      green: 20,
      other: 0,
    });
  }, 240_000);

  it('/rollback still moves traffic when the environment’s endpoint goes away, and finishes Swarm once it is back', async () => {
    await proxy.stop();
    const down = await waitFor(
      async () => {
        const r = await readyz();
        return r.body.failing.includes('docker:staging') ? r : undefined;
      },
      { what: '/readyz to name docker:staging' },
    );
    expect(down.body.failing).toEqual(['docker:staging', 'docker:production', 'docker:preprod']);
    expect(down.body.checks['docker:staging']).toBe(
      `tcp://127.0.0.1:${proxy.port} does not answer (ECONNREFUSED)`,
    );

    const channel = () => stack.emulator.channelMessages('C0RELEASES').map((m) => m.text);
    const before = channel().length;
    await stack.driver.command('/rollback', 'api');
    const report = await waitFor(
      () =>
        channel()
          .slice(before)
          .find((t) => /api in staging/.test(t)),
      {
        timeoutMs: 30_000,
        what: 'the rollback report',
      },
    );
    expect(report).toMatch(/traffic 100% on blue/);
    expect(report).toContain(
      `${PREFIX}-staging-api-green not rolled back yet (staging's Docker endpoint tcp://127.0.0.1:${proxy.port} does not answer (ECONNREFUSED); preprod uses it too, other environments are not affected); run /rollback again once it answers`,
    );
    expect(await measureSplit(`http://127.0.0.1:${stack.nginx.port}/staging/api/colour`, 20)).toEqual({
      blue: 20,
      green: 0,
      other: 0,
    });
    // qa is not affected.
    expect(await measureSplit(`http://127.0.0.1:${qaNginx.port}/qa/api/colour`, 10)).toMatchObject({
      green: 10,
    });

    await proxy.start();
    const again = channel().length;
    await stack.driver.command('/rollback', 'api');
    const finished = await waitFor(
      () =>
        channel()
          .slice(again)
          .find((t) => /api in staging/.test(t)),
      {
        timeoutMs: 30_000,
        what: 'the second rollback report',
      },
    );
    expect(finished).toMatch(
      new RegExp(
        `${PREFIX}-staging-api-green rolled back to flightdeck/testapp:1\\.0\\.0 \\(finishing a rollback that was interrupted\\)`,
      ),
    );
    await waitFor(
      async () => (await serviceImage(`${PREFIX}-staging-api-green`)) === 'flightdeck/testapp:1.0.0',
      {
        timeoutMs: 30_000,
        what: 'green rolled back in Swarm',
      },
    );
  }, 120_000);

  it('a release whose endpoint goes away after it was requested fails safe, naming the endpoint', async () => {
    const seen = stack.emulator.ephemeralsFor('U0DEV').length;
    await stack.driver.command('/deploy', 'api 1.1.0 to preprod');
    const [id] = releaseIds(await stack.answerTo('U0DEV', seen, /waits for a lead/));
    await proxy.stop();
    const r = await waitRelease(stack, id as string, (x) => !!x.message, 'a progress message');
    const msg = stack.emulator.messages.find(
      (m) => m.channel === r.message?.channel && m.ts === r.message?.ts,
    );
    if (!msg) throw new Error('no progress message in the emulator');
    await stack.driver.click(msg, { action_id: 'release_approve', value: id as string }, { user: 'U0LEAD' });
    const done = await waitRelease(
      stack,
      id as string,
      (x) => x.status === 'rolled_back',
      'rolled back',
      60_000,
    );
    expect(done.outcome).toContain(
      `Docker engine unreachable (ECONNREFUSED): preprod's Docker endpoint tcp://127.0.0.1:${proxy.port} does not answer`,
    );
    expect(done.steps[0]?.status).toBe('failed');
    const state = await new ServiceStateStore(stack.client, stack.prefix).get('preprod', 'api');
    expect(state.weights).toEqual({ blue: 100, green: 0 });
    expect(state.inFlight).toBeUndefined();
    await proxy.start();
  }, 90_000);
});
