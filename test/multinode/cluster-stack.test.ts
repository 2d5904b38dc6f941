import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { upstreamName } from '../../src/integrations/nginx.js';
import { EdgeDriver } from '../../src/integrations/nginx-edge.js';
import { SlackDriver } from '../../tools/slack-emulator/driver.js';
import { SlackEmulator } from '../../tools/slack-emulator/emulator.js';
import { SIGNING_SECRET } from '../helpers/flightdeck-process.js';
import { cleanupBed, ensureMultinode, type Multinode, testLabels, uniqueId } from '../helpers/multinode.js';
import { buildImages, ROOT, sh } from '../helpers/packaging-stack.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { deployRelease, promoteRelease, soakingAt, waitRelease } from '../helpers/release.js';
import { createColourService, HOST, Probe } from './helpers/edge-bed.js';

// deploy/flightdeck.cluster.yml deployed for real on the 3-node bed, as docs/install.md
// ("Multi-node") says: the image built here and pushed to the bed's registry, web ×2, worker ×2 on
// the manager, nginx edges ×2 on the edge nodes, Redis with the edges' ACL user; then a release
// through the stack's own web replicas, served by both edges.
const STACK = uniqueId('fdcl').replace(/-/g, '');
const TAG = 'fdmn';
const SOCK = '/run/fdmn1.sock';
const EDGE_PORT = 18080;
const REDIS_PASSWORD = 'cluster-redis-password';
let bed: Multinode;
let emulator: SlackEmulator;
let probe: Probe;
let webPort = 0;
const dir = `/tmp/fd-cluster-${STACK}`;
const apps = `${STACK}-apps`;
const d1 = (args: string[], env: Record<string, string> = {}, timeoutMs = 300_000) =>
  sh('docker', args, { env: { ...env, DOCKER_HOST: `unix://${SOCK}` }, timeoutMs });

/** `docker save` on this host into `docker load` on node 1: the image the operator built, moved. */
function copyImage(image: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'inherit'] });
    const load = spawn('docker', ['-H', `unix://${SOCK}`, 'load', '-q'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    save.stdout.pipe(load.stdin);
    load.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker load exited ${code}`))));
    save.on('error', reject);
    load.on('error', reject);
  });
}

const colour = (svc: string, c: string) => `${STACK}-staging-${svc}-${c}`;
// The stack's own Redis is on its networks only; the test reads it through a published port.
let redis: Redis;

/** A stand-in with what the release helpers need, over the stack's own web and Redis. */
const suite = {
  get emulator() {
    return emulator;
  },
  driver: undefined as unknown as SlackDriver,
  get client() {
    return redis;
  },
  prefix: STACK,
  answerTo: (user: string, after: number, match?: RegExp) =>
    waitFor(
      () =>
        emulator
          .ephemeralsFor(user)
          .slice(after)
          .filter((e) => e.via !== 'ack')
          .find((e) => !match || match.test(e.text))?.text,
      { timeoutMs: 90_000, what: `an answer for ${user}` },
    ),
};

beforeAll(async () => {
  bed = await ensureMultinode();
  mkdirSync(dir, { recursive: true });
  // The image, built as an operator builds it, then pushed where every manager pulls from.
  await buildImages(`flightdeck/flightdeck:${TAG}`);
  await copyImage(`flightdeck/flightdeck:${TAG}`);
  const image = `${bed.registry}/flightdeck/flightdeck:${TAG}`;
  await d1(['tag', `flightdeck/flightdeck:${TAG}`, image]);
  await d1(['push', image]);

  emulator = await new SlackEmulator({ host: HOST }).start();
  await bed
    .docker(1)
    .createNetwork({ Name: apps, Driver: 'overlay', Attachable: true, Labels: testLabels(STACK) });
  // The blue/green services, by name on the apps network.
  for (const c of ['blue', 'green'])
    await createColourService(bed, {
      name: colour('api', c),
      colour: c,
      tag: '1.0.0',
      network: apps,
      labels: testLabels(STACK),
    });

  const secrets: Record<string, string> = {
    slack_bot_token: emulator.botToken,
    slack_signing_secret: SIGNING_SECRET,
    alertmanager_webhook_token: 'cluster-webhook-token-0123456789',
    redis_password: REDIS_PASSWORD,
    edge_redis_password: 'cluster-edge-password',
  };
  for (const [name, value] of Object.entries(secrets)) {
    await bed.docker(1).createSecret({
      Name: `${STACK}_${name}`,
      Labels: testLabels(STACK),
      Data: Buffer.from(value).toString('base64'),
    } as never);
  }
  const config = {
    timezone: 'UTC',
    defaultEnvironment: 'staging',
    redis: { prefix: STACK },
    server: { host: '0.0.0.0' },
    nginx: {
      driver: 'edge',
      edge: {
        redis: { host: 'redis', user: 'flightdeck-edge', passwordFile: '/run/secrets/edge_redis_password' },
        confirmTimeout: '20s',
        minReplicas: 2,
      },
    },
    channels: { releases: 'C0RELEASES' },
    access: { leads: ['U0LEAD'] },
    release: {
      steps: [10, 50, 100],
      soak: ['1h', '1h', '1h'],
      convergeTimeout: '120s',
      pollInterval: '500ms',
      healthCheck: { attempts: 3, interval: '500ms', timeout: '2s' },
    },
    environments: {
      staging: {
        deployers: ['*'],
        services: {
          api: {
            image: `${bed.registry}/flightdeck/testapp`,
            port: 8080,
            blue: { swarmService: colour('api', 'blue'), address: `tasks.${colour('api', 'blue')}:8080` },
            green: { swarmService: colour('api', 'green'), address: `tasks.${colour('api', 'green')}:8080` },
          },
        },
      },
    },
  };
  writeFileSync(join(dir, 'flightdeck.yml'), stringify(config));
  const cli = (...args: string[]) =>
    sh(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts'), 'edge-config', ...args], {
      env: { FLIGHTDECK_CONFIG: join(dir, 'flightdeck.yml') },
    });
  writeFileSync(join(dir, 'flightdeck-edge.conf'), await cli());
  const acl = (await cli('--acl')).trim();
  const location = `location /staging/api/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://${upstreamName('flightdeck', 'staging', 'api')}/; }`;
  writeFileSync(join(dir, 'site.conf'), `server {\n  listen 8080;\n  ${location}\n}\n`);
  // What this bed needs on top of the cluster file: the manager's socket is /run/fdmn1.sock (the
  // engines share this machine's filesystem), web and Redis published for the emulator and the test.
  webPort = await freePort();
  const redisPort = await freePort();
  writeFileSync(
    join(dir, 'bed.yml'),
    stringify({
      version: '3.8',
      services: {
        web: {
          ports: [{ target: 3000, published: webPort, mode: 'host' }],
          deploy: { placement: { max_replicas_per_node: 1 } },
        },
        worker: { volumes: [{ type: 'bind', source: SOCK, target: '/var/run/docker.sock' }] },
        redis: { ports: [{ target: 6379, published: redisPort, mode: 'host' }] },
      },
    }),
  );
  const env = {
    FLIGHTDECK_IMAGE: image,
    FLIGHTDECK_CONFIG_FILE: join(dir, 'flightdeck.yml'),
    FLIGHTDECK_EDGE_CONF: join(dir, 'flightdeck-edge.conf'),
    FLIGHTDECK_SITE_CONF: join(dir, 'site.conf'),
    FLIGHTDECK_EDGE_ACL: acl,
    FLIGHTDECK_EDGE_PORT: String(EDGE_PORT),
    FLIGHTDECK_APPS_NETWORK: apps,
    FLIGHTDECK_SECRETS: STACK,
    DOCKER_GID: String(statSync(SOCK).gid),
    NGINX_IMAGE: bed.image('nginx-local', '1'),
    REDIS_IMAGE: bed.image('redis-local', '7'),
    SLACK_API_URL: emulator.apiUrl,
  };
  await d1(
    ['stack', 'deploy', '-c', join(ROOT, 'deploy/flightdeck.cluster.yml'), '-c', join(dir, 'bed.yml'), STACK],
    env,
    600_000,
  );
  redis = new Redis({
    host: bed.nodes.find((n) => n.index === 1)?.address,
    port: redisPort,
    password: REDIS_PASSWORD,
    maxRetriesPerRequest: 1,
  });
  redis.on('error', () => {});
  // Web answers where its tasks run (host-mode ports); Slack is sent to the first that answers.
  const webUrl = await waitFor(
    async () => {
      for (const n of bed.nodes) {
        const url = `http://${n.address}:${webPort}`;
        const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return url;
      }
      return undefined;
    },
    { timeoutMs: 600_000, intervalMs: 1_000, what: "the stack's web replicas answering" },
  );
  suite.driver = new SlackDriver(emulator, webUrl, SIGNING_SECRET);
}, 1_500_000);

afterAll(async () => {
  await probe?.stop();
  redis?.disconnect();
  if (bed) {
    await d1(['stack', 'rm', STACK]).catch(() => '');
    await waitFor(
      async () =>
        (await bed.docker(1).listServices({ filters: { label: [`com.docker.stack.namespace=${STACK}`] } }))
          .length === 0,
      { timeoutMs: 120_000, what: 'the stack to go' },
    ).catch(() => {});
    await cleanupBed(bed, STACK);
    await bed
      .docker(1)
      .getVolume(`${STACK}_redis-data`)
      .remove()
      .catch(() => {});
  }
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 300_000);

const running = async (service: string) =>
  (
    (await bed
      .docker(1)
      .listTasks({ filters: { service: [`${STACK}_${service}`], 'desired-state': ['running'] } })) as any[]
  )
    .filter((t) => t.Status?.State === 'running')
    .map((t) => bed.nodeById(String(t.NodeID))?.index ?? 0)
    .sort();

describe('deploy/flightdeck.cluster.yml on the 3-node Swarm', () => {
  it('runs web ×2, worker ×2 on the manager, the edges on the two edge nodes (no Docker socket) and Redis', async () => {
    await waitFor(
      async () =>
        (await running('worker')).length === 2 &&
        (await running('nginx')).length === 2 &&
        (await running('web')).length === 2 &&
        (await running('redis')).length === 1,
      {
        timeoutMs: 300_000,
        what: 'every service of the stack running',
      },
    );
    expect(await running('worker')).toEqual([1, 1]);
    expect(await running('nginx')).toEqual([2, 3]);
    expect((await running('web')).length).toBe(2);
    expect(await running('redis')).toEqual([1]);
    const spec = (await bed.docker(1).getService(`${STACK}_nginx`).inspect()) as any;
    expect(JSON.stringify(spec.Spec.TaskTemplate.ContainerSpec.Mounts ?? [])).not.toContain('docker.sock');
    const edges = new EdgeDriver(redis, {
      redisPrefix: STACK,
      group: 'flightdeck',
      confirmTimeoutMs: 0,
      minReplicas: 2,
    });
    await waitFor(
      async () => {
        const s = await edges.status();
        return s.live.length === 2 && s.live.every((r) => r.generation === s.desired && r.health === 'ok');
      },
      { timeoutMs: 120_000, what: 'both edges serving the published weights' },
    );
    // From here on, what a user behind the edges sees.
    probe = new Probe(() =>
      [2, 3].map(
        (i) => `http://${bed.nodes.find((n) => n.index === i)?.address}:${EDGE_PORT}/staging/api/colour`,
      ),
    ).start();
  });

  it("releases 10 → 50 → 100 through the stack's own web and workers, both edges following, no request failed", async () => {
    const id = await deployRelease(suite, 'api 1.1.0');
    for (const percent of [10, 50, 100]) {
      await waitRelease(suite, id, soakingAt(percent), `soaking at ${percent}%`, 300_000);
      for (const node of [2, 3]) {
        const s = await probe.measure(
          `http://${bed.nodes.find((n) => n.index === node)?.address}:${EDGE_PORT}/staging/api/colour`,
          200,
        );
        expect(s.failed).toBe(0);
        // Within 4% of 200: the probe's two loops share the edge's counter (edge-release.test.ts).
        expect(
          Math.abs((100 * s.green) / (s.blue + s.green) - percent),
          JSON.stringify(s),
        ).toBeLessThanOrEqual(4);
      }
      await promoteRelease(suite, 'api');
    }
    await waitRelease(suite, id, (r) => r.status === 'completed', 'completed', 300_000);
    expect(probe.failed).toEqual([]);
  });
});
