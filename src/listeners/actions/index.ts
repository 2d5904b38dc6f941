import type { AllMiddlewareArgs, SlackActionMiddlewareArgs } from '@slack/bolt';
import { type BlockActionDeps, blockActionListener } from './block-action.js';

/**
 * The buttons and checkboxes of release, alert and checklist messages and of /rollback's confirmation.
 * One handler for every action id: a click we never rendered (a forged payload) is acked and audited by
 * the same handler, not left to time out. Returns false for an interaction that is not a block action.
 */
export function actionHandler(
  deps: BlockActionDeps,
): (args: SlackActionMiddlewareArgs & AllMiddlewareArgs) => Promise<boolean> {
  const listener = blockActionListener(deps);
  return async (args) => {
    if (args.body.type !== 'block_actions') return false;
    await listener(args as Parameters<typeof listener>[0]);
    return true;
  };
}
