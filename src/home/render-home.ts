import type { KnownBlock } from '@slack/types';
import { formatDistanceStrict } from 'date-fns';
import { alertTitle, escapeMrkdwn } from '../alerts/render-alert.js';
import type { AlertRecord } from '../alerts/schema.js';
import { releaseLine } from '../releases/render-release.js';
import type { Release } from '../releases/schema.js';

/** What runs where: per service, per environment in pipeline order, the version and since when. */
export interface BoardRow {
  service: string;
  cells: Array<{ environment: string; version?: string; since?: number; inFlight?: string }>;
}

const clip = (s: string) => (s.length > 2900 ? `${s.slice(0, 2899)}…` : s);

/** Rows as text sections of at most ~2900 characters each (Slack's section limit is 3000). */
export function boardSections(rows: BoardRow[], now: number, maxSections = 20): KnownBlock[] {
  const lines = rows.map(
    (r) =>
      `*${r.service}*  ${r.cells
        .map(
          (c) =>
            `${c.environment} ${c.version ? `\`${c.version}\`${c.since ? ` ${formatDistanceStrict(c.since, now)}` : ''}` : '—'}${c.inFlight ? ` (🚀 ${c.inFlight})` : ''}`,
        )
        .join(' → ')}`,
  );
  const sections: string[] = [];
  for (const line of lines) {
    const last = sections.at(-1);
    if (last !== undefined && last.length + line.length + 1 <= 2900)
      sections[sections.length - 1] = `${last}\n${line}`;
    else sections.push(clip(line));
  }
  const shown = sections.slice(0, maxSections);
  if (sections.length > maxSections)
    shown.push(`…and more services than App Home can show: see \`/deploy history\``);
  return shown.map((text) => ({ type: 'section', text: { type: 'mrkdwn', text } }));
}

/** App Home, the pipeline board: what runs where, rollouts, freezes, releases in flight, open alerts. */
export function renderHome(input: {
  rolloutStatus: string;
  board?: BoardRow[];
  freezes?: string[];
  /** DORA figures, a line per environment (src/releases/dora-stats.ts doraHomeLines). */
  dora?: { days: number; lines: string[] };
  inFlight: Release[];
  openAlerts: AlertRecord[];
  now: number;
}): { type: 'home'; blocks: KnownBlock[] } {
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: '🛫 flightdeck' } },
    ...(input.board && input.board.length > 0
      ? [
          {
            type: 'section' as const,
            text: { type: 'mrkdwn' as const, text: '*Pipeline: what runs where*' },
          },
          ...boardSections(input.board, input.now),
          { type: 'divider' as const },
        ]
      : []),
    ...(input.freezes && input.freezes.length > 0
      ? [
          {
            type: 'section' as const,
            text: { type: 'mrkdwn' as const, text: clip(`*Freezes*\n${input.freezes.join('\n')}`) },
          },
          { type: 'divider' as const },
        ]
      : []),
    { type: 'section', text: { type: 'mrkdwn', text: clip(input.rolloutStatus) } },
    { type: 'divider' },
    ...(input.dora && input.dora.lines.length > 0
      ? [
          {
            type: 'section' as const,
            text: {
              type: 'mrkdwn' as const,
              text: clip(
                `*DORA, last ${input.dora.days} days* (\`/deploy stats\` per service)\n${input.dora.lines.join('\n')}`,
              ),
            },
          },
          { type: 'divider' as const },
        ]
      : []),
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          `*Releases in flight (${input.inFlight.length})*\n${input.inFlight.map(releaseLine).join('\n') || 'none'}`,
        ),
      },
    },
    { type: 'divider' },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          `*Open alerts (${input.openAlerts.length})*\n${
            input.openAlerts
              .slice(0, 15)
              .map(
                (a) =>
                  `${alertTitle(a)} ${escapeMrkdwn(a.annotations.summary ?? '')}${a.ack ? ` · 👀 <@${a.ack.by}>` : ''}`,
              )
              .join('\n') || 'none'
          }`,
        ),
      },
    },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `Updated ${new Date(input.now).toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        },
      ],
    },
  ];
  return { type: 'home', blocks };
}
