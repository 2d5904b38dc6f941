import type { KnownBlock } from '@slack/types';
import { textBar } from '../releases/weights.js';
import { progressOf } from './progress.js';
import type { ItemState, TemplateChecklist } from './schema.js';

export const CHECKLIST_ACTIONS = { tick: 'checklist_tick', recheck: 'checklist_recheck' } as const;

const hhmm = (ms: number) => `${new Date(ms).toISOString().slice(5, 16).replace('T', ' ')} UTC`;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * block_id of a checkbox group: which instance (rollout or release id), which checklist and which
 * items it holds (for the diff on a tick). Messages from before named rollouts carry no scope.
 */
export const tickBlockId = (checklistId: string, section: number, chunk: number, scope?: string) =>
  `cl|${scope ? `${scope}/` : ''}${checklistId}|${section}|${chunk}`;

/**
 * A checklist as Block Kit: per section its progress and checkboxes (ten at most per group, Slack's
 * limit); auto-verified items show their evidence instead of a checkbox.
 */
export function renderChecklist(
  id: string,
  cl: TemplateChecklist,
  states: Record<string, ItemState>,
  context: string,
  phase?: number,
  /** The rollout's or release's id, carried by the checkboxes and the re-check button. */
  scope?: string,
  /** A release's own checklist: its re-check button names the checklist, not a phase. */
  release = false,
): { text: string; blocks: KnownBlock[] } {
  const p = progressOf(cl, states);
  const pct = p.total === 0 ? 100 : Math.round((p.done / p.total) * 100);
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`📋 ${cl.title}`, 150) } },
    {
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `${context} · ${p.done}/${p.total} \`${textBar(pct)}\`` }],
    },
  ];
  let hasAuto = false;
  cl.sections.forEach((section, si) => {
    const sp = p.sections[si] as { done: number; total: number };
    const spct = Math.round((sp.done / sp.total) * 100);
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*${section.title}* ${sp.done}/${sp.total} \`${textBar(spct)}\`` },
    });
    const auto = section.items.filter((i) => i.check);
    if (auto.length > 0) {
      hasAuto = true;
      const lines = auto.map((i) => {
        const st = states[i.id];
        const mark = !st ? '⏳' : st.ticked ? '✅' : '❌';
        return `🤖 ${mark} ${i.text}${st?.evidence ? ` — ${st.evidence}` : ' — not checked yet'}${st ? ` (${hhmm(st.at)})` : ''}`;
      });
      blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(lines.join('\n'), 2900) }] });
    }
    const manual = section.items.filter((i) => !i.check);
    for (let c = 0; c * 10 < manual.length; c++) {
      const chunk = manual.slice(c * 10, c * 10 + 10);
      const options = chunk.map((i) => {
        const st = states[i.id];
        // Descriptions are plain text in Slack: names, not mentions.
        const description = st?.ticked
          ? `ticked by ${st.name ?? st.by} ${hhmm(st.at)}`
          : st
            ? `unticked by ${st.name ?? st.by} ${hhmm(st.at)}`
            : i.owner
              ? `owner ${i.owner}`
              : 'no owner';
        return {
          text: { type: 'mrkdwn' as const, text: clip(i.text, 75) },
          description: { type: 'plain_text' as const, text: clip(description, 75) },
          value: i.id,
        };
      });
      const initial = options.filter((o) => states[o.value]?.ticked);
      blocks.push({
        type: 'actions',
        block_id: tickBlockId(id, si, c, scope),
        elements: [
          {
            type: 'checkboxes',
            action_id: CHECKLIST_ACTIONS.tick,
            options,
            ...(initial.length > 0 ? { initial_options: initial } : {}),
          },
        ],
      });
    }
  });
  if (hasAuto && phase) {
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Re-check automatic items' },
          action_id: CHECKLIST_ACTIONS.recheck,
          value: `${scope ? `${scope}|` : ''}${release ? id : phase}`,
        },
      ],
    });
  }
  return { text: `${cl.title}: ${p.done}/${p.total}`, blocks };
}

/**
 * What an older message of a checklist becomes once newer ones show it (the refreshed set is capped):
 * a short pointer to the newest, linked when the workspace's address is known.
 */
export function renderMoved(
  newest: { channel: string; ts: string },
  workspaceUrl?: string,
): { text: string; blocks: KnownBlock[] } {
  const link = workspaceUrl
    ? `<${workspaceUrl.replace(/\/?$/, '/')}archives/${newest.channel}/p${newest.ts.replace('.', '')}|its newest message>`
    : 'its newest message';
  const text = `📋 This checklist moved: ${link} in <#${newest.channel}> is kept up to date.`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
}
