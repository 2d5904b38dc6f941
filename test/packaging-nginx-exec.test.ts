import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NginxDriver, type Upstream } from '../src/integrations/nginx.js';
import { SwarmExecRunner } from '../src/integrations/nginx-exec.js';
import { NginxLuaDriver } from '../src/integrations/nginx-lua.js';
import { sh } from './helpers/packaging-stack.js';
import { waitFor } from './helpers/ports.js';
import { measureSplit } from './helpers/release.js';
import { createColourServices, docker, removeServicesAndWait } from './helpers/swarm.js';

// nginx as a Swarm service from the image scripts/build-base-image.sh assembles (on the host
// network, as the one-node stack runs it), driven by the nginx drivers with the Docker exec runner.
// Ports 29863-29867 and the prefix fdpkr belong to this file.
const NGINX_SERVICE = 'fdpkr-nginx';
const HEALTH_PORT = 29865;
const PROXY_PORT = 29866;
const STATUS_LISTEN = '127.0.0.1:29867';
const COLOURS = {
  blue: { swarmService: 'fdpkr-lua-api-blue', address: '127.0.0.1:29863' },
  green: { swarmService: 'fdpkr-lua-api-green', address: '127.0.0.1:29864' },
};
const api = (green: number): Upstream => ({
  name: 'fdpkr_staging_api',
  servers: [
    { colour: 'blue', address: COLOURS.blue.address, weight: 100 - green },
    { colour: 'green', address: COLOURS.green.address, weight: green },
  ],
});

describe('nginx as a Swarm service, reloaded through Docker exec', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fdpkr-nginx-'));
  const runner = new SwarmExecRunner(docker, NGINX_SERVICE);
  const lua = new NginxLuaDriver(
    {
      upstreamFile: join(dir, 'flightdeck-upstreams.conf'),
      testCommand: ['nginx', '-t'],
      reloadCommand: ['nginx', '-s', 'reload'],
      statusListen: STATUS_LISTEN,
      upstreamPrefix: 'fdpkr',
      adminToken: 'fdpkr-admin-token-0123456789',
    },
    runner.run,
  );
  let colourServices: string[] = [];

  beforeAll(async () => {
    await sh('bash', ['scripts/build-base-image.sh', 'nginx']);
    colourServices = await createColourServices([COLOURS]);
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, 'health.conf'),
      `server { listen 127.0.0.1:${HEALTH_PORT}; location = /health { return 200 "ok\\n"; } }\n`,
    );
    await removeServicesAndWait([NGINX_SERVICE]);
    await docker.createService({
      Name: NGINX_SERVICE,
      Labels: { 'flightdeck.test': '1' },
      TaskTemplate: {
        ContainerSpec: {
          Image: 'flightdeck/nginx-local:1',
          // At nginx's include path, and at the host path too: the Lua driver renders the path of
          // its weights file (as it sees it) into the config nginx reads.
          Mounts: [
            { Type: 'bind', Source: dir, Target: '/etc/nginx/flightdeck', ReadOnly: true },
            { Type: 'bind', Source: dir, Target: dir, ReadOnly: true },
          ],
          StopSignal: 'SIGQUIT',
        },
        Networks: [{ Target: 'host' }],
        RestartPolicy: { Condition: 'any', Delay: 500_000_000 },
      },
      Mode: { Replicated: { Replicas: 1 } },
    } as never);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${HEALTH_PORT}/health`)).ok, {
      timeoutMs: 90_000,
      intervalMs: 250,
      what: `${NGINX_SERVICE} answering on ${HEALTH_PORT}`,
    });
    // The runner execs into a task Swarm lists as running with its container: wait for that too
    // (on a loaded machine the port answers before the task list says so).
    await waitFor(
      async () => {
        const tasks = (await docker.listTasks({
          filters: { service: [NGINX_SERVICE], 'desired-state': ['running'] },
        })) as Array<{ Status?: { State?: string; ContainerStatus?: { ContainerID?: string } } }>;
        return tasks.some((t) => t.Status?.State === 'running' && t.Status.ContainerStatus?.ContainerID);
      },
      { timeoutMs: 90_000, intervalMs: 250, what: `a running task of ${NGINX_SERVICE}` },
    );
  }, 240_000);

  afterAll(async () => {
    const logs = await sh('docker', ['service', 'logs', '--raw', NGINX_SERVICE]).catch((e) => String(e));
    writeFileSync(`/tmp/flightdeck-test-${NGINX_SERVICE}.log`, logs);
    await removeServicesAndWait([NGINX_SERVICE, ...colourServices]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('nginx.driver lua: the first apply tests and reloads in the task, later splits go live without one', async () => {
    const first = await lua.apply([api(0)]);
    expect(first.changed).toBe(true);
    expect(first.live).toBe(false); // the static file was new: nginx -t and reload ran in the task
    // A server block proxying to the upstream flightdeck now declares; reloaded the same way.
    writeFileSync(
      join(dir, 'proxy.conf'),
      `server { listen 127.0.0.1:${PROXY_PORT}; location / { proxy_pass http://fdpkr_staging_api; } }\n`,
    );
    await runner.run(['nginx', '-t']);
    await runner.run(['nginx', '-s', 'reload']);
    const url = `http://127.0.0.1:${PROXY_PORT}/colour`;
    await waitFor(async () => (await fetch(url).catch(() => undefined))?.ok, { what: 'the proxy server' });
    expect(await measureSplit(url, 50)).toEqual({ blue: 50, green: 0, other: 0 });

    const shifted = await lua.apply([api(10)]);
    expect(shifted).toMatchObject({ changed: true, live: true });
    const split = await measureSplit(url, 200);
    expect(split).toEqual({ blue: 180, green: 20, other: 0 });
    expect(await lua.readBack()).toContain('127.0.0.1:29864 10');
  });

  it('nginx.driver reload: a file nginx -t rejects in the task fails with its message and is taken back', async () => {
    const bad = join(dir, 'bad-upstreams.conf');
    const reload = new NginxDriver(
      { upstreamFile: bad, testCommand: ['nginx', '-t'], reloadCommand: ['nginx', '-s', 'reload'] },
      runner.run,
    );
    const broken: Upstream = {
      name: 'fdpkr_broken',
      servers: [{ colour: 'blue', address: '127.0.0.1:99999', weight: 100 }],
    };
    await expect(reload.apply([broken])).rejects.toThrow(
      /nginx -t rejected the new upstreams; the old config stays: `nginx -t` in fdpkr-nginx\.1 exited 1: .*invalid port/,
    );
    expect(existsSync(bad)).toBe(false);
    // nginx kept serving the last good config.
    expect((await measureSplit(`http://127.0.0.1:${PROXY_PORT}/colour`, 20)).other).toBe(0);
    expect(readFileSync(join(dir, 'flightdeck-upstreams.conf.weights'), 'utf8')).toContain(
      'fdpkr_staging_api',
    );
  });
});
