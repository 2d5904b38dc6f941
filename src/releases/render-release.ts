import type { KnownBlock } from '@slack/types';
import { gatesText } from './render-gates.js';
import type { Release, Step } from './schema.js';
import { describeSplit } from './weights.js';

const ICON: Record<Step['status'], string> = {
  done: '✅',
  running: '🔄',
  waiting: '⏳',
  failed: '❌',
  skipped: '⏭️',
  pending: '▫️',
};

const HEADLINE: Record<Release['status'], string> = {
  awaiting_approval: '🟡 Waiting for a lead’s approval',
  queued: '⏸️ Queued behind the rest of its batch',
  running: '🚀 Releasing',
  paused: '⏸️ Paused',
  rolling_back: '↩️ Rolling back',
  completed: '✅ Released',
  rolled_back: '↩️ Rolled back',
  failed: '🚨 Failed — needs a human',
  rejected: '🚫 Rejected',
  expired: '⌛ Approval expired',
  cancelled: '🚫 Cancelled',
};

export const ACTIONS = {
  approve: 'release_approve',
  reject: 'release_reject',
  promote: 'release_promote',
  pause: 'release_pause',
  resume: 'release_resume',
  abort: 'release_abort',
} as const;

const hhmmss = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** The live progress message of one release: every step, the split, what happens next, and buttons. */
export function renderRelease(r: Release): { text: string; blocks: KnownBlock[] } {
  const title = `${HEADLINE[r.status]}: *${r.service}* \`${r.version}\` to *${r.environment}* (${r.fromColour} → ${r.toColour})`;
  const steps = r.steps
    .map((s) => {
      const due =
        s.status === 'waiting' && s.due
          ? s.kind === 'soak'
            ? ` — until ${hhmmss(s.due)} UTC (Promote skips the rest)`
            : ` — ${s.detail ?? 'waiting'}, next check ${hhmmss(s.due)} UTC`
          : '';
      const detail = s.detail && s.status !== 'pending' ? ` — ${s.detail}` : '';
      return `${ICON[s.status]} ${s.label}${s.status === 'waiting' ? due || detail : detail}`;
    })
    .join('\n');
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: title } },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `Requested by <@${r.requestedBy.id}>${r.approvedBy ? ` · approved by <@${r.approvedBy.id}>` : ''} · \`${r.id}\` · ${r.image}`,
        },
      ],
    },
    ...(r.trail
      ? [{ type: 'context' as const, elements: [{ type: 'mrkdwn' as const, text: `Pipeline: ${r.trail}` }] }]
      : []),
    ...(r.override
      ? [
          {
            type: 'section' as const,
            text: {
              type: 'mrkdwn' as const,
              text: `🔓 *Overridden by <@${r.override.by}>*: ${r.override.reason}\n${r.override.overrode
                .map((o) => `• ${o}`)
                .join('\n')}`.slice(0, 2900),
            },
          },
        ]
      : []),
    { type: 'section', text: { type: 'mrkdwn', text: steps.slice(0, 2900) } },
    { type: 'section', text: { type: 'mrkdwn', text: `Traffic: ${describeSplit(r.weights)}` } },
  ];
  // Every gate of every step: canary, stable, test, samples, verdict (newest kept if it must be cut).
  if ((r.gateHistory ?? []).length > 0) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: gatesText(r, 2900) } });
  } else if (r.gateResults.length > 0) {
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `Last gate: ${r.gateResults.map((g) => `${g.ok ? '✓' : '✗'} ${g.name} ${g.value ?? 'no data'} (${g.limit})`).join(' · ')}`,
        },
      ],
    });
  }
  // A crash is not hidden: the latest takeover (worker died, command re-run) is shown.
  const resumed = r.events.findLast((e) => e.text.startsWith('↻ '));
  if (resumed) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: resumed.text }] });
  if (r.outcome) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: r.outcome.slice(0, 2900) } });
  if (r.status === 'awaiting_approval' && r.approvalDeadline) {
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `A lead other than <@${r.requestedBy.id}> must approve before ${hhmmss(r.approvalDeadline)} UTC; nothing changes until then.`,
        },
      ],
    });
  }
  const buttons = buttonsFor(r);
  if (buttons.length > 0) blocks.push({ type: 'actions', block_id: `release:${r.id}`, elements: buttons });
  return { text: `${HEADLINE[r.status]}: ${r.service} ${r.version} to ${r.environment}`, blocks };
}

function buttonsFor(r: Release) {
  const b = (text: string, action_id: string, style?: 'primary' | 'danger', confirm?: string) => ({
    type: 'button' as const,
    text: { type: 'plain_text' as const, text },
    action_id,
    value: r.id,
    ...(style ? { style } : {}),
    ...(confirm
      ? {
          confirm: {
            title: { type: 'plain_text' as const, text: 'Are you sure?' },
            text: { type: 'mrkdwn' as const, text: confirm },
            confirm: { type: 'plain_text' as const, text: 'Yes' },
            deny: { type: 'plain_text' as const, text: 'No' },
          },
        }
      : {}),
  });
  switch (r.status) {
    case 'awaiting_approval':
      return [b('Approve', ACTIONS.approve, 'primary'), b('Reject', ACTIONS.reject, 'danger')];
    case 'running':
      return [
        b('Promote', ACTIONS.promote),
        b('Pause', ACTIONS.pause),
        b('Abort & roll back', ACTIONS.abort, 'danger', `All traffic goes back to ${r.fromColour} at once.`),
      ];
    case 'paused':
      return [
        b('Resume', ACTIONS.resume, 'primary'),
        b('Abort & roll back', ACTIONS.abort, 'danger', `All traffic goes back to ${r.fromColour} at once.`),
      ];
    default:
      return [];
  }
}

/** One line per release for `/deploy status` and `history`. */
export function releaseLine(r: Release): string {
  const step = r.steps[r.stepIndex];
  const where = r.status === 'running' && step ? ` — ${step.label}` : '';
  const when = new Date(r.finishedAt ?? r.createdAt).toISOString().slice(0, 16).replace('T', ' ');
  return `${HEADLINE[r.status].split(' ')[0]} \`${r.id}\` *${r.service}* ${r.version} → ${r.environment} (${r.status.replace('_', ' ')}${where}) by <@${r.requestedBy.id}>, ${when} UTC`;
}
