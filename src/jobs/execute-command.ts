import type { ParsedCommand } from '../commands/schema.js';
import type { SlackReply } from '../integrations/slack/respond.js';

/**
 * What each command does once a worker picks it up. The foundation validates, authorises,
 * enqueues, audits and answers; the release engine, checklists and alerts plug in here.
 * Until they land, the answer says plainly that nothing was changed.
 */
export type CommandExecutor = (
  cmd: ParsedCommand,
  ctx: { userId: string; requestId: string },
) => Promise<SlackReply>;

export const pendingExecutor: CommandExecutor = async (cmd, ctx) => {
  const what = describe(cmd);
  return {
    text: `:information_source: ${what} was accepted and reached a worker (request \`${ctx.requestId}\`), but this flightdeck has no engine for it yet, so nothing was changed.`,
  };
};

export function describe(cmd: ParsedCommand): string {
  switch (cmd.command) {
    case 'deploy':
      switch (cmd.action) {
        case 'release':
          return `Deploy of *${cmd.target}* \`${cmd.version}\` to *${cmd.environment}*`;
        case 'status':
          return 'Release status';
        case 'help':
          return 'Help';
        default:
          return `${cmd.action} of *${cmd.service}* in *${cmd.environment}*`;
      }
    case 'traffic':
      if (cmd.action === 'set') {
        return `Traffic change for *${cmd.service}* in *${cmd.environment}* (${cmd.percent}% to ${cmd.colour ?? 'the idle colour'})`;
      }
      return 'Traffic status';
    case 'rollback':
      return cmd.action === 'rollback' ? `Rollback of *${cmd.target}* in *${cmd.environment}*` : 'Help';
    case 'checklist':
      if (cmd.action === 'start') return `Rollout start on ${cmd.date}`;
      if (cmd.action === 'show')
        return `Checklist (${typeof cmd.which === 'string' ? cmd.which : `phase ${cmd.which.phase}`})`;
      return cmd.action === 'status' ? 'Checklist status' : 'Help';
  }
}
