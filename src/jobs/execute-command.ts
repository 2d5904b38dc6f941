import { type AlertContext, alertAction } from '../alerts/alert-commands.js';
import { type ChecklistContext, checklistCommand } from '../checklists/checklist-commands.js';
import { authorise } from '../commands/authorise.js';
import { type CommandExecutor, refused } from '../commands/execution.js';
import { usage } from '../commands/usage.js';
import { deployCommand, releaseAction, rollbackCommand } from '../releases/release-commands.js';
import type { ReleaseContext } from '../releases/release-context.js';
import { trafficCommand } from '../releases/traffic-commands.js';

/**
 * The worker side of every command: who asked is checked again against the current config (a job
 * comes from Redis, and the config may have changed since the ack), then the command goes to its
 * domain's handler.
 */
export function createExecutor(
  ctx: ReleaseContext,
  actx: AlertContext,
  cctx: ChecklistContext,
): CommandExecutor {
  return async (cmd, ec) => {
    const decision = authorise(cmd, ec.userId, ctx.config);
    if (!decision.allowed) return refused(decision.reason);
    // Help is answered in the ack; one that reaches a worker (an older replica's job) gets the same text.
    if (cmd.action === 'help') return { text: usage(cmd.command, ctx.config) };
    switch (cmd.command) {
      case 'deploy':
        return deployCommand(ctx, cmd, ec);
      case 'traffic':
        return trafficCommand(ctx, cmd);
      case 'rollback':
        return rollbackCommand(ctx, cmd, ec);
      case 'release':
        return releaseAction(ctx, cmd, ec);
      case 'alert':
        return alertAction(ctx, actx, cmd, ec);
      case 'checklist':
        return checklistCommand(cctx, cmd, ec);
    }
  };
}
