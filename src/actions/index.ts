import type { App } from '@slack/bolt';
import { type BlockActionDeps, blockActionListener } from './handle-block-action.js';

/** Wires the buttons of release and alert messages and of the /rollback confirmation. */
export function registerActions(app: App, deps: BlockActionDeps): void {
  app.action(
    {
      type: 'block_actions',
      action_id:
        /^(release_(approve|reject|promote|pause|resume|abort)|rollback_confirm|alert_(ack|silence|rollback|group_ack))$/,
    },
    blockActionListener(deps) as never,
  );
}
