import type { App } from '@slack/bolt';
import { CommandName } from '../../commands/schema.js';
import { type SlashCommandDeps, slashCommandListener } from './slash-command.js';

/** Exactly the four command names, so Bolt hands us nothing else (e.g. `/deployx`). */
const COMMANDS = new RegExp(`^/(${CommandName.options.join('|')})$`);

/**
 * Wires the four slash commands; each listener only parses, validates, authorises, acks and enqueues.
 * One Bolt listener for all four: Bolt runs every registered listener's middleware chain on every
 * request, so four listeners cost each command three extra chains.
 */
export function registerCommands(app: App, deps: SlashCommandDeps): void {
  const listeners = new Map(
    CommandName.options.map((name) => [`/${name}`, slashCommandListener(name, deps)]),
  );
  app.command(COMMANDS, async (args) => {
    await listeners.get(args.command.command)?.(args);
  });
}
