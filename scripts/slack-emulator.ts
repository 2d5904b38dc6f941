/**
 * The project's Slack emulator on its own, for an installed flightdeck with no real Slack
 * (docs/install.md, "One machine"): serves the Web API flightdeck calls on 127.0.0.1, sends signed
 * slash commands to flightdeck's web replicas (round-robin, as a load balancer would) and prints
 * what a Slack user would see. Commands come from the arguments, then from stdin.
 *
 *   npm run slack -- --signing-secret-file deploy/local/secrets/signing-secret '/traffic status'
 *   npm run slack -- --signing-secret-file f --wait 20 '/deploy api 1.1.0'   # send, print for 20 s, exit
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { SlackDriver } from '../tools/slack-emulator/driver.js';
import { SlackEmulator } from '../tools/slack-emulator/emulator.js';
import { c, printTranscript, sendLine } from './slack-transcript.js';

const NO_SECRET = "give --signing-secret-file or SLACK_SIGNING_SECRET (the app's signing secret)";
const Options = z.object({
  port: z.coerce.number().int().min(1).max(65535),
  app: z.array(z.url({ protocol: /^https?$/ })).min(1),
  signingSecret: z.string({ error: NO_SECRET }).min(1, NO_SECRET),
  botToken: z.string().startsWith('xoxb-', 'the bot token must start with xoxb-'),
  wait: z.coerce.number().min(0).optional(),
  user: z.string().regex(/^U[A-Z0-9]+$/, 'a user ID such as U0DEV'),
});

function fail(message: string): never {
  console.error(`slack-emulator: ${message}`);
  process.exit(2);
}

function readSecret(path: string | undefined, env: string | undefined): string | undefined {
  if (!path) return env;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    fail(`cannot read ${path}: ${(err as Error).message}`);
  }
}

let args: ReturnType<typeof parseArgs>;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string', default: process.env.SLACK_EMULATOR_PORT ?? '3090' },
      app: { type: 'string', multiple: true },
      'signing-secret-file': { type: 'string' },
      'bot-token-file': { type: 'string' },
      wait: { type: 'string' },
      user: { type: 'string', default: 'U0DEV' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  fail((err as Error).message);
}
if (args.values.help) {
  console.log(`npm run slack -- [options] ['/command text' …]
  --port N                   where the emulator listens on 127.0.0.1 (default 3090; flightdeck's slack.apiUrl / SLACK_API_URL: http://127.0.0.1:N/api/)
  --app URL                  a web replica, repeatable (default http://127.0.0.1:3001 and http://127.0.0.1:3002)
  --signing-secret-file F    the signing secret flightdeck verifies with (or SLACK_SIGNING_SECRET)
  --bot-token-file F         the bot token flightdeck was given (or SLACK_BOT_TOKEN; default xoxb-flightdeck-emulator)
  --user U…                  who types the commands (default U0DEV; a line "as U0LEAD /deploy …" overrides)
  --wait S                   after the commands, print for S seconds and exit (default: keep serving, read stdin)`);
  process.exit(0);
}
const parsed = Options.safeParse({
  port: args.values.port,
  app: args.values.app ?? ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'],
  signingSecret: readSecret(
    args.values['signing-secret-file'] as string | undefined,
    process.env.SLACK_SIGNING_SECRET,
  ),
  botToken:
    readSecret(args.values['bot-token-file'] as string | undefined, process.env.SLACK_BOT_TOKEN) ??
    'xoxb-flightdeck-emulator',
  wait: args.values.wait,
  user: args.values.user,
});
if (!parsed.success)
  fail(parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; '));
const opts = parsed.data;

// The emulator's listen() has no error path of its own: find a taken port first, with a clear message.
await new Promise<void>((resolve) => {
  const probe = createServer();
  probe.once('error', (err) =>
    fail(`cannot listen on 127.0.0.1:${opts.port}: ${err.message} (another emulator running? choose --port)`),
  );
  probe.listen(opts.port, '127.0.0.1', () => probe.close(() => resolve()));
});
const emulator = await new SlackEmulator({ botToken: opts.botToken }).start(opts.port);
printTranscript(emulator);
const drivers = opts.app.map((url) => new SlackDriver(emulator, url.replace(/\/$/, ''), opts.signingSecret));
let next = 0;
const send = (line: string) => {
  const driver = drivers[next++ % drivers.length] as SlackDriver;
  return sendLine(driver, line, opts.user);
};

console.log(`${c.bold}Slack emulator${c.reset} on ${emulator.url} (Web API ${emulator.apiUrl})`);
console.log(`${c.dim}commands go to ${opts.app.join(', ')}, signed with the signing secret given${c.reset}`);
console.log(
  `${c.dim}users: ${[...emulator.users.values()].map((u) => `${u.id} @${u.name}`).join(', ')}; channels: ${[...emulator.channels.values()].map((ch) => `${ch.id} #${ch.name}`).join(', ')}${c.reset}`,
);

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function shutdown(): Promise<void> {
  await emulator.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

for (const line of args.positionals) {
  await send(line);
  await settle(600);
}
if (opts.wait !== undefined) {
  await settle(opts.wait * 1000);
  await shutdown();
}
// Keep serving: flightdeck posts its messages here. Typed lines are more commands.
const rl = createInterface({
  input: process.stdin,
  output: process.stdout,
  prompt: '> ',
  terminal: process.stdin.isTTY,
});
if (process.stdin.isTTY) rl.prompt();
rl.on('line', async (line) => {
  if (line.trim()) await send(line);
  await settle(400);
  if (process.stdin.isTTY) rl.prompt();
});
