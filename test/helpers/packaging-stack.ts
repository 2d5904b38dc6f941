import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './ports.js';
import { docker } from './swarm.js';

const run = promisify(execFile);
export const ROOT = resolve(import.meta.dirname, '../..');

/** Runs a program (argv, never a shell) with a generous buffer; throws with its output on failure. */
export async function sh(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<string> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 600_000,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * The base image (skipped when its recipe is unchanged) and the flightdeck image, built as an
 * operator would: `docker build --network host`, with this host's extra CA (the registry is
 * reached through a TLS proxy) given through deploy/ca/.
 */
export async function buildImages(tag: string): Promise<{ buildLog: string }> {
  await sh('bash', ['scripts/build-base-image.sh', 'all']);
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  const target = join(ROOT, 'deploy/ca/build-host.pem');
  if (extraCa && existsSync(extraCa)) {
    // Copy only when different, so the build's layer cache holds.
    if (!existsSync(target) || !readFileSync(target).equals(readFileSync(extraCa)))
      copyFileSync(extraCa, target);
  }
  const buildLog = await sh('docker', ['build', '--network', 'host', '-t', tag, '.'], {
    env: { DOCKER_BUILDKIT: '0' },
    timeoutMs: 900_000,
  });
  return { buildLog };
}

/** Deploys the production stack file with the one-node override, as docs/install.md says. */
export async function deployStack(name: string, env: Record<string, string>): Promise<string> {
  return sh(
    'docker',
    [
      'stack',
      'deploy',
      '--resolve-image',
      'never',
      '-c',
      'deploy/flightdeck.stack.yml',
      '-c',
      'deploy/flightdeck.local.yml',
      name,
    ],
    { env },
  );
}

/** Removes the stack and waits until its containers are gone; the Redis volume goes too. */
export async function removeStack(name: string): Promise<void> {
  await sh('docker', ['stack', 'rm', name]).catch(() => '');
  await waitFor(
    async () => {
      const left = await docker.listContainers({
        all: true,
        filters: { label: [`com.docker.stack.namespace=${name}`] },
      });
      return left.length === 0;
    },
    { timeoutMs: 120_000, intervalMs: 500, what: `the containers of stack ${name} to go` },
  ).catch(() => {});
  await docker
    .getVolume(`${name}_redis-data`)
    .remove()
    .catch(() => {});
}

export async function createSecret(name: string, value: string): Promise<void> {
  await docker
    .getSecret(name)
    .remove()
    .catch(() => {});
  await docker.createSecret({ Name: name, Data: Buffer.from(value).toString('base64') } as never);
}

export async function removeSecret(name: string): Promise<void> {
  await docker
    .getSecret(name)
    .remove()
    .catch(() => {});
}

/** Running containers of one stack service, by container id. */
export async function runningContainers(service: string): Promise<string[]> {
  const list = await docker.listContainers({
    filters: { label: [`com.docker.swarm.service.name=${service}`], status: ['running'] },
  });
  return list.map((c) => c.Id);
}

/**
 * Which container holds the client end of a loopback TCP connection (host networking: the
 * container's processes use the host's network namespace, so `ss` sees their sockets).
 */
export async function containerOfClientPort(port: number): Promise<string> {
  const out = await sh('ss', ['-Htnp', 'state', 'established', `( sport = :${port} )`]);
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (!pid) throw new Error(`no process holds local port ${port}: ${out}`);
  const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const id = /([0-9a-f]{64})/.exec(cgroup)?.[1];
  if (!id) throw new Error(`process ${pid} is not in a container: ${cgroup}`);
  return id;
}

export function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/**
 * A pass-through in front of the Slack emulator's Web API that notes the client port of each call,
 * so a test can tell which replica made it. It forwards everything unchanged.
 */
export class SlackApiTap {
  private server?: Server;
  port = 0;
  readonly calls: Array<{ method: string; clientPort: number }> = [];

  constructor(private readonly upstream: string) {}

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  async start(port = 0): Promise<this> {
    const up = new URL(this.upstream);
    this.server = createServer((req, res) => {
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
      this.calls.push({ method, clientPort: req.socket.remotePort ?? 0 });
      const fwd = request(
        { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      fwd.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(fwd);
    });
    await new Promise<void>((r) => this.server?.listen(port, '127.0.0.1', () => r()));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
