import type { App } from '@slack/bolt';
import { type BlockActionDeps, blockActionListener } from './handle-block-action.js';

const KNOWN =
  '(release_(approve|reject|promote|pause|resume|abort)|rollback_confirm|alert_(ack|silence|rollback|group_ack)|checklist_(tick|recheck))';
const ACTION_IDS = new RegExp(`^${KNOWN}$`);
/** Everything else: a click we never rendered (a forged payload) is acked and audited, not left to time out. */
const OTHER_ACTION_IDS = new RegExp(`^(?!${KNOWN}$)`);

/** Wires the buttons and checkboxes of release, alert and checklist messages and of /rollback's confirmation. */
export function registerActions(app: App, deps: BlockActionDeps): void {
  app.action({ type: 'block_actions', action_id: ACTION_IDS }, blockActionListener(deps) as never);
  app.action({ type: 'block_actions', action_id: OTHER_ACTION_IDS }, blockActionListener(deps) as never);
}
