/**
 * What a Slack user would see, printed from the emulator's transcript, and the one-line command
 * syntax (`/deploy help`, `as U0GUEST /deploy api 1.1.0`) typed at a prompt. Shared by the demo
 * (scripts/demo.ts) and the standalone emulator (scripts/slack-emulator.ts).
 */
import type { SlackDriver } from '../tools/slack-emulator/driver.js';
import type { SlackEmulator } from '../tools/slack-emulator/emulator.js';

export const c = { dim: '\x1b[2m', bold: '\x1b[1m', cyan: '\x1b[36m', yellow: '\x1b[33m', reset: '\x1b[0m' };

export function printTranscript(emulator: SlackEmulator): void {
  const name = (id: string) => emulator.users.get(id)?.name ?? id;
  const chan = (id: string) => `#${emulator.channels.get(id)?.name ?? id}`;
  const lastText = new Map<string, string>();
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
      // Show only what changed, as a user's eye would catch it.
      const before = new Set((lastText.get(e.ts ?? '') ?? '').split('\n'));
      const changed = (e.text ?? '').split('\n').filter((l) => !before.has(l) && !l.startsWith('['));
      if (changed.length > 0) {
        console.log(
          `  ${chan(e.channel ?? '')} ${c.yellow}flightdeck${c.reset} ${c.dim}(edited)${c.reset}: ${changed.join('\n      ')}`,
        );
      }
    }
    if (e.kind === 'message' || e.kind === 'update') lastText.set(e.ts ?? '', e.text ?? '');
  });
}

/** Sends one typed line as a slash command; false when the line is not one. */
export async function sendLine(driver: SlackDriver, line: string, defaultUser = 'U0DEV'): Promise<boolean> {
  const m = /^(?:as\s+(U[A-Z0-9]+)\s+)?(\/\w+)\s*(.*)$/.exec(line.trim());
  if (!m) {
    console.log(
      `${c.dim}Type a slash command, e.g. /deploy help, or "as U0GUEST /deploy api 1.1.0 to production"${c.reset}`,
    );
    return false;
  }
  const sent = await driver.command(m[2] as string, m[3] ?? '', { user: m[1] ?? defaultUser });
  if (sent.status !== 200)
    console.log(
      `  ${c.dim}(Slack: ${sent.timedOut ? 'operation_timeout' : sent.status === 0 ? `could not reach the app: ${sent.body?.error}` : `HTTP ${sent.status}`})${c.reset}`,
    );
  else console.log(`  ${c.dim}(acked in ${sent.ms.toFixed(1)} ms)${c.reset}`);
  return true;
}
