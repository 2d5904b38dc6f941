/**
 * `npm run slack`, the Slack emulator on its own (docs/install.md, one-node install): an operator
 * with no Slack types a slash command, flightdeck (a real process, real Redis and nginx) checks its
 * token against the emulator, and the operator sees the worker's answer printed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load-config.js';
import { initialUpstreams, proxyLocations, testConfig } from './helpers/config.js';
import { FlightdeckProcess, SIGNING_SECRET } from './helpers/flightdeck-process.js';
import { TestNginx } from './helpers/nginx-server.js';
import { freePort, waitFor } from './helpers/ports.js';
import { TestRedis } from './helpers/redis-server.js';

const ROOT = resolve(import.meta.dirname, '..');
// biome-ignore lint/suspicious/noControlCharactersInRegex: strips the terminal's colour codes (ESC).
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

function startCli(args: string[], env: Record<string, string>): { proc: ChildProcess; out: () => string } {
  let out = '';
  const proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/slack-emulator.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { proc, out: () => plain(out) };
}

const exited = (p: ChildProcess) =>
  p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise<number | null>((r) => p.once('exit', r));

describe('npm run slack (the emulator on its own)', () => {
  const redis = new TestRedis();
  const nginx = new TestNginx();
  let app: FlightdeckProcess;
  let cli: ReturnType<typeof startCli>;
  let slackPort = 0;

  beforeAll(async () => {
    await redis.start();
    const draft = testConfig(
      { upstreamFile: '', testCommand: [], reloadCommand: [], probeUrl: '', statusListen: '' },
      { prefix: 'fdslackcli', basePort: 28900 },
    );
    await nginx.start(proxyLocations(draft), initialUpstreams(draft));
    const config = testConfig(nginx, { prefix: 'fdslackcli', basePort: 28900 });
    slackPort = await freePort();
    app = new FlightdeckProcess({
      config,
      redisUrl: redis.url,
      slackApiUrl: `http://127.0.0.1:${slackPort}/api/`,
      botToken: 'xoxb-flightdeck-emulator',
    });
    app.port = await freePort();
    // As in the docs: the emulator first, then flightdeck (which checks its token at start-up).
    cli = startCli(['--port', String(slackPort), '--app', app.url], { SLACK_SIGNING_SECRET: SIGNING_SECRET });
    await waitFor(() => cli.out().includes('Slack emulator on'), { timeoutMs: 30_000, what: 'the emulator' });
    await app.start();
  }, 120_000);

  afterAll(async () => {
    cli?.proc.kill('SIGTERM');
    if (cli) await exited(cli.proc);
    await app?.destroy();
    nginx.destroy();
    await redis.destroy();
  });

  it('sends a typed slash command, signed, and prints the answer a worker wrote', async () => {
    cli.proc.stdin?.write('/traffic status\n');
    const out = await waitFor(
      () => {
        const o = cli.out();
        return /only @dev sees\) flightdeck: \*staging\*/.test(o) ? o : undefined;
      },
      { timeoutMs: 30_000, what: 'the answer to /traffic status' },
    );
    expect(out).toContain('@dev in #releases: /traffic status');
    expect(out).toMatch(/`api\s+blue █+ 100%\s+green ░+\s+0%` live blue/);
    expect(out).not.toContain('(Slack: HTTP');
  });

  it('a command as another user is that user’s; a line that is no command changes nothing', async () => {
    cli.proc.stdin?.write('as U0GUEST /deploy api 9.9.9 to production\nhello\n');
    const out = await waitFor(
      () => {
        const o = cli.out();
        return o.includes('Type a slash command') && /only @guest sees\) flightdeck: .+/.test(o)
          ? o
          : undefined;
      },
      { timeoutMs: 30_000, what: 'the refusal to @guest' },
    );
    expect(out).toContain('@guest in #releases: /deploy api 9.9.9 to production');
    // Gus deploys nowhere in production: refused, nothing started.
    expect(out).not.toMatch(/releasing api 9\.9\.9/);
  });

  it('refuses to start without the signing secret, or on a taken port, with a clear message', async () => {
    const noSecret = startCli(['--port', String(await freePort())], {});
    expect(await exited(noSecret.proc)).toBe(2);
    expect(noSecret.out()).toContain('give --signing-secret-file or SLACK_SIGNING_SECRET');

    const taken = startCli(['--port', String(slackPort)], { SLACK_SIGNING_SECRET: 'x' });
    expect(await exited(taken.proc)).toBe(2);
    expect(taken.out()).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});

describe('deploy/local/flightdeck.yml', () => {
  it('is a valid configuration for the one-node stack', () => {
    const cfg = parseConfigText(readFileSync(resolve(ROOT, 'deploy/local/flightdeck.yml'), 'utf8'));
    expect(cfg.server.host).toBe('127.0.0.1');
    expect(cfg.nginx.exec?.swarmService).toBe('flightdeck_nginx');
    expect(cfg.nginx.upstreamFile?.startsWith('/etc/nginx/flightdeck/')).toBe(true);
  });
});
