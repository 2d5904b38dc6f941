import type { App } from '@slack/bolt';
import { type BlockActionDeps, blockActionListener } from './block-action.js';

/**
 * Wires the buttons and checkboxes of release, alert and checklist messages and of /rollback's confirmation.
 * One listener for every action id: a click we never rendered (a forged payload) is acked and audited by
 * the same listener, not left to time out. One, not two, because Bolt runs every listener's middleware on
 * every request, slash commands included.
 */
export function registerActions(app: App, deps: BlockActionDeps): void {
  app.action({ type: 'block_actions' }, blockActionListener(deps) as never);
}
