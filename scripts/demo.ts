/**
 * `npm run demo`: flightdeck on its embedded defaults against the local stack (scripts/stack.sh demo)
 * and the Slack emulator, printing the Slack conversation as it happens. Type slash commands at the
 * prompt (`/deploy help`, `as U0GUEST /deploy api 1.1.0 to production`); Ctrl-C stops everything.
 * `--once` runs the scripted conversation and exits (used by the test suite).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { startFlightdeck } from '../src/app.js';
import { FlightdeckConfig } from '../src/config/schema.js';
import { createLogger } from '../src/observability/logger.js';
import { SlackDriver } from '../src/slack-emulator/driver.js';
import { SlackEmulator } from '../src/slack-emulator/emulator.js';

const ROOT = resolve(import.meta.dirname, '..');
const STATE = process.env.FLIGHTDECK_STACK_DIR ?? join(ROOT, '.stack');
const once = process.argv.includes('--once');
const port = Number(process.env.PORT ?? 3000);
const nginxPrefix = join(STATE, 'nginx');
mkdirSync(join(nginxPrefix, 'conf.d'), { recursive: true });

const nginxArgs = ['-p', nginxPrefix, '-c', 'nginx.conf', '-e', join(nginxPrefix, 'logs', 'error.log')];
const svc = (env: string, name: string, base: number) => ({
  image: 'flightdeck/testapp',
  port: 8080,
  healthPath: '/health',
  blue: { swarmService: `demo-${env}-${name}-blue`, address: `127.0.0.1:${base}` },
  green: { swarmService: `demo-${env}-${name}-green`, address: `127.0.0.1:${base + 1}` },
});

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
  },
  channels: { releases: 'C0RELEASES', alerts: 'C0ALERTS' },
  access: { leads: ['U0LEAD'] },
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

const c = { dim: '\x1b[2m', bold: '\x1b[1m', cyan: '\x1b[36m', yellow: '\x1b[33m', reset: '\x1b[0m' };
const emulator = await new SlackEmulator().start(Number(process.env.SLACK_EMULATOR_PORT ?? 0));
const name = (id: string) => emulator.users.get(id)?.name ?? id;
const chan = (id: string) => `#${emulator.channels.get(id)?.name ?? id}`;
emulator.on('transcript', (e: Record<string, string>) => {
  const body = (e.text ?? '').replace(/\n/g, '\n      ');
  if (e.kind === 'command' || e.kind === 'click') {
    console.log(
      `\n${c.bold}${c.cyan}@${name(e.user ?? '')}${c.reset} in ${chan(e.channel ?? '')}: ${c.bold}${e.text}${c.reset}`,
    );
  } else if (e.kind === 'ephemeral') {
    console.log(
      `  ${c.dim}(only @${name(e.user ?? '')} sees)${c.reset} ${c.yellow}flightdeck${c.reset}: ${body}`,
    );
  } else if (e.kind === 'message') {
    console.log(`  ${chan(e.channel ?? '')} ${c.yellow}flightdeck${c.reset}: ${body}`);
  } else if (e.kind === 'update') {
    console.log(
      `  ${chan(e.channel ?? '')} ${c.yellow}flightdeck${c.reset} ${c.dim}(edited)${c.reset}: ${body}`,
    );
  }
});

const signingSecret = randomBytes(16).toString('hex');
const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
const app = await startFlightdeck(
  {
    config: { ...config, slack: { apiUrl: emulator.apiUrl } },
    secrets: {
      slackSigningSecret: signingSecret,
      slackBotToken: emulator.botToken,
      redisUrl: process.env.REDIS_URL ?? `redis://127.0.0.1:${process.env.STACK_REDIS_PORT ?? 6390}`,
    },
    role: 'all',
    configPath: '(embedded demo defaults)',
  },
  logger,
);
const driver = new SlackDriver(emulator, `http://127.0.0.1:${app.port}`, signingSecret);

console.log(
  `${c.bold}flightdeck demo${c.reset} — flightdeck on http://127.0.0.1:${app.port}, Slack emulator on ${emulator.url}`,
);
console.log(
  `${c.dim}users: @lena (U0LEAD, lead), @dev (U0DEV, production deployer), @guest (U0GUEST)${c.reset}`,
);

const settle = (ms = 600) => new Promise((r) => setTimeout(r, ms));
async function send(line: string): Promise<void> {
  const m = /^(?:as\s+(U[A-Z0-9]+)\s+)?(\/\w+)\s*(.*)$/.exec(line.trim());
  if (!m) {
    console.log(
      `${c.dim}Type a slash command, e.g. /deploy help, or "as U0GUEST /deploy api 1.1.0 to production"${c.reset}`,
    );
    return;
  }
  const sent = await driver.command(m[2] as string, m[3] ?? '', { user: m[1] ?? 'U0DEV' });
  if (sent.status !== 200)
    console.log(
      `  ${c.dim}(Slack: ${sent.timedOut ? 'operation_timeout' : `HTTP ${sent.status}`})${c.reset}`,
    );
  console.log(`  ${c.dim}(acked in ${sent.ms.toFixed(1)} ms)${c.reset}`);
}

for (const line of [
  '/deploy help',
  '/deploy api 1.1.0 to staging',
  '/traffic api 150',
  'as U0GUEST /deploy api 1.1.0 to production',
  '/traffic status',
  '/checklist status',
]) {
  await send(line);
  await settle();
}

async function shutdown(): Promise<void> {
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
