import type { AnyMiddlewareArgs, App, Middleware } from '@slack/bolt';
import type { BlockActionDeps } from './actions/block-action.js';
import { actionHandler } from './actions/index.js';
import { commandHandler } from './commands/index.js';
import type { SlashCommandDeps } from './commands/slash-command.js';
import { appHomeHandler } from './events/app-home.js';

type AppHomeDeps = Parameters<typeof appHomeHandler>[0];
type EventArgs = Parameters<ReturnType<typeof appHomeHandler>>[0];

/** The Events API events flightdeck handles, each with its handler: the manifest subscribes to exactly these. */
const EVENT_HANDLERS = { app_home_opened: appHomeHandler } as const;
export const SUBSCRIBED_EVENTS = Object.keys(EVENT_HANDLERS);

/**
 * Routes every request Bolt admits (after its own `ignoreSelf`) to flightdeck's handler for it: slash
 * commands, block actions, App Home. One global middleware instead of a listener per kind: Bolt runs
 * every listener's middleware chain on every request, each step with its own copy of the arguments,
 * so each slash command paid for the action and event chains that only said "not mine". A request
 * none of them takes goes on to Bolt's listeners (there are none), as an unmatched one did before.
 */
export function routeSlackRequests(
  app: App,
  deps: { command: SlashCommandDeps; action: BlockActionDeps; appHome: AppHomeDeps },
): void {
  const command = commandHandler(deps.command);
  const action = actionHandler(deps.action);
  const events = new Map(Object.entries(EVENT_HANDLERS).map(([type, make]) => [type, make(deps.appHome)]));
  const route: Middleware<AnyMiddlewareArgs> = async (args) => {
    const taken =
      'command' in args
        ? await command(args as Parameters<typeof command>[0])
        : 'action' in args
          ? await action(args as Parameters<typeof action>[0])
          : 'event' in args
            ? ((await events.get(args.event.type)?.(args as EventArgs)) ?? false)
            : false;
    if (!taken) await args.next();
  };
  app.use(route);
}
