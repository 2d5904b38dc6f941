import { type ParsedCommand, ParsedCommand as ParsedCommandSchema } from './schema.js';

/** The parts of a Slack block action that say what was clicked. */
export interface ActionLike {
  action_id: string;
  block_id?: string;
  value?: string;
  selected_options?: Array<{ value: string }>;
}

/**
 * A checkbox click carries the whole new selection of its group; the change this person made is
 * the difference from what their message showed, so two people ticking different items at the same
 * moment never undo each other.
 */
export function parseChecklistTick(
  action: ActionLike,
  message: { blocks?: unknown[] } | undefined,
): ParsedCommand | undefined {
  // `cl|<scope>/<checklist>|…` (scope: a rollout's name or a release's id); `cl|<checklist>|…` before.
  const m = /^cl\|(?:([a-z][a-z0-9-]{0,127})\/)?([a-z0-9-]{1,48})\|\d+\|\d+$/.exec(action.block_id ?? '');
  if (!m) return undefined;
  const block = (message?.blocks ?? []).find(
    (b) => (b as { block_id?: string }).block_id === action.block_id,
  ) as
    | { elements?: Array<{ options?: Array<{ value: string }>; initial_options?: Array<{ value: string }> }> }
    | undefined;
  const element = block?.elements?.[0];
  const shown = new Set((element?.initial_options ?? []).map((o) => o.value));
  const selected = new Set((action.selected_options ?? []).map((o) => o.value));
  const all = (element?.options ?? []).map((o) => o.value);
  const changes = all
    .filter((v) => shown.has(v) !== selected.has(v))
    .map((itemId) => ({ itemId, ticked: selected.has(itemId) }));
  const parsed = ParsedCommandSchema.safeParse({
    command: 'checklist',
    action: 'tick',
    checklistId: m[2],
    changes,
    ...scopeOf(m[1]),
  });
  return parsed.success ? parsed.data : undefined;
}

/** What a button's action_id and value mean, or undefined for a value we did not produce. */
export function parseButton(actionId: string, value: string): ParsedCommand | undefined {
  if (actionId === 'checklist_recheck') {
    // The button's value is `<scope>|<phase 1-4>` (a rollout's), `<release id>|post`, or only the
    // phase on messages from before named rollouts.
    const m = /^(?:([a-z][a-z0-9-]{0,127})\|)?([1-4]|post)$/.exec(value);
    const r = m
      ? ParsedCommandSchema.safeParse({
          command: 'checklist',
          action: 'recheck',
          which: m[2] === 'post' ? 'post' : { phase: Number(m[2]) },
          ...scopeOf(m[1]),
        })
      : undefined;
    if (r?.success) return r.data;
  }
  const release = /^release_(approve|reject|promote|pause|resume|abort)$/.exec(actionId);
  const alert = /^alert_(ack|silence|rollback|group_ack)$/.exec(actionId);
  const parsed = release
    ? ParsedCommandSchema.safeParse({ command: 'release', action: release[1], releaseId: value })
    : alert
      ? ParsedCommandSchema.safeParse({
          command: 'alert',
          action: alert[1] === 'group_ack' ? 'ack-group' : alert[1],
          target: value.split('|')[0],
          ...(alert[1] === 'silence' ? { duration: value.split('|')[1] } : {}),
        })
      : actionId === 'rollback_confirm'
        ? ParsedCommandSchema.safeParse({
            command: 'rollback',
            action: 'confirm',
            environment: value.split('|')[0],
            target: value.split('|')[1],
          })
        : undefined;
  return parsed?.success ? parsed.data : undefined;
}

/** A scope carried by a checklist message: a release's id (`rel-…`) or a rollout's name. */
function scopeOf(scope: string | undefined): { rollout?: string; release?: string } {
  if (!scope) return {};
  return scope.startsWith('rel-') ? { release: scope } : { rollout: scope };
}
