import type { App } from '@slack/bolt';
import { type SlashCommandDeps, slashCommandListener } from './handle-slash-command.js';
import { CommandName } from './schema.js';

/** Wires the four slash commands; each listener only parses, validates, authorises, acks and enqueues. */
export function registerCommands(app: App, deps: SlashCommandDeps): void {
  for (const name of CommandName.options) {
    app.command(`/${name}`, slashCommandListener(name, deps));
  }
}
