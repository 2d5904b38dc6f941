import type { KnownBlock } from '@slack/types';
import { alertTitle, escapeMrkdwn } from '../alerts/render-alert.js';
import type { AlertRecord } from '../alerts/schema.js';
import { releaseLine } from '../releases/render-release.js';
import type { Release } from '../releases/schema.js';

/** App Home: the rollout and its checklists, releases in flight, open alerts. */
export function renderHome(input: {
  rolloutStatus: string;
  inFlight: Release[];
  openAlerts: AlertRecord[];
  now: number;
}): { type: 'home'; blocks: KnownBlock[] } {
  const clip = (s: string) => (s.length > 2900 ? `${s.slice(0, 2899)}…` : s);
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: '🛫 flightdeck' } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(input.rolloutStatus) } },
    { type: 'divider' },
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
