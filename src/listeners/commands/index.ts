import { CommandName } from '../../commands/schema.js';
import { type SlashCommandArgs, type SlashCommandDeps, slashCommandListener } from './slash-command.js';

/** Exactly the four command names, so nothing else (e.g. `/deployx`) is taken for one of them. */
const COMMANDS = new RegExp(`^/(${CommandName.options.join('|')})$`);

/**
 * The slash commands' handler; each command only parses, validates, authorises, acks and enqueues.
 * Returns false for a command that is not one of ours (left unanswered, as Bolt leaves a request no
 * listener matches).
 */
export function commandHandler(deps: SlashCommandDeps): (args: SlashCommandArgs) => Promise<boolean> {
  const listeners = new Map(
    CommandName.options.map((name) => [`/${name}`, slashCommandListener(name, deps)]),
  );
  return async (args) => {
    const listener = COMMANDS.test(args.command.command) ? listeners.get(args.command.command) : undefined;
    if (!listener) return false;
    await listener(args);
    return true;
  };
}
