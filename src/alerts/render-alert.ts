import type { KnownBlock } from '@slack/types';
import { formatDistanceStrict } from 'date-fns';
import { severityKey } from './route-alert.js';
import type { AlertGroup, AlertRecord } from './schema.js';

export const ALERT_ACTIONS = {
  ack: 'alert_ack',
  silence: 'alert_silence', // value: `<fingerprint>|<1h|4h|24h>`
  rollback: 'alert_rollback',
  ackGroup: 'alert_group_ack',
} as const;

export const SILENCE_CHOICES = ['1h', '4h', '24h'] as const;

const SEVERITY_ICON: Record<string, string> = { critical: '🔴', warning: '🟠', info: '🔵' };
const HIDDEN_LABELS = new Set(['alertname', 'severity']);
const hhmm = (ms: number) => `${new Date(ms).toISOString().slice(11, 16)} UTC`;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/**
 * Slack mrkdwn needs &, < and > escaped in text that came from elsewhere: every alert-derived string
 * (labels, annotations, severity, URLs) goes through this before it reaches a message, a thread
 * reply, a release message or App Home, so `<!channel>`, `<@U…>` and `<url|text>` stay inert.
 */
export const escapeMrkdwn = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * `<url|source>` for an http(s) URL that cannot break out of the link: one with whitespace, `|`, `<`
 * or `>` (or any control character) is not linked at all. `&` is escaped, as Slack expects in links.
 */
export function sourceLink(url: string, label: string): string | undefined {
  if (!/^https?:\/\/[^\s|<>\p{Cc}]+$/u.test(url)) return undefined;
  return `<${url.replace(/&/g, '&amp;')}|${escapeMrkdwn(label)}>`;
}

const severityIcon = (sev: string) => (Object.hasOwn(SEVERITY_ICON, sev) ? SEVERITY_ICON[sev] : '⚪');

export function alertTitle(a: Pick<AlertRecord, 'labels' | 'status'>): string {
  const sev = (a.labels.severity ?? 'none').toLowerCase();
  const icon = a.status === 'resolved' ? '✅' : severityIcon(sev);
  // Upper-cased before escaping, so the entities stay lower-case (`&lt;`, not `&LT;`).
  return `${icon} ${escapeMrkdwn(sev.toUpperCase())} · ${escapeMrkdwn(a.labels.alertname ?? 'alert')}`;
}

/** One alert's message: what, where, since when, who acknowledged, silences, and the buttons. */
export function renderAlert(
  a: AlertRecord,
  opts: { now: number; rollback?: { environment: string; service: string } },
): { text: string; blocks: KnownBlock[] } {
  const started = Date.parse(a.startsAt);
  const state =
    a.status === 'resolved'
      ? `resolved after ${formatDistanceStrict(a.resolvedAt ?? opts.now, Number.isNaN(started) ? a.firstSeen : started)}`
      : 'firing';
  const summary = a.annotations.summary ?? a.annotations.message ?? '';
  const description = a.annotations.description ?? '';
  const labels = Object.entries(a.labels)
    .filter(([k]) => !HIDDEN_LABELS.has(k))
    .slice(0, 10)
    .map(([k, v]) => `\`${escapeMrkdwn(k)}=${escapeMrkdwn(clip(v, 60))}\``)
    .join(' ');
  const link = sourceLink(a.generatorURL, 'source');
  const source = link ? ` · ${link}` : '';
  const blocks: KnownBlock[] = [
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          `*${alertTitle(a)}* — ${state}${summary ? `\n*${escapeMrkdwn(summary)}*` : ''}${description ? `\n${escapeMrkdwn(description)}` : ''}`,
          2900,
        ),
      },
    },
  ];
  if (labels) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(labels, 2900) }] });
  const seen = `Started ${Number.isNaN(started) ? hhmm(a.firstSeen) : hhmm(started)} · seen ${a.count}× · last ${hhmm(a.lastSeen)}${source} · \`${a.fingerprint}\``;
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: seen }] });
  const notes: string[] = [];
  if (a.ack) notes.push(`👀 Acknowledged by <@${a.ack.by}> at ${hhmm(a.ack.at)}`);
  for (const s of a.silences)
    if (s.until > opts.now) notes.push(`🔕 Silenced by <@${s.by}> until ${hhmm(s.until)}`);
  if (a.escalations > 0 && !a.ack) notes.push(`📣 Escalated ${a.escalations}×`);
  if (a.releaseAction) notes.push(a.releaseAction);
  if (a.status === 'resolved' && a.resolvedNote) notes.push(`ℹ️ Resolved: ${a.resolvedNote}`);
  if (notes.length > 0) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: notes.join('\n') } });
  if (a.status === 'firing') {
    const buttons: Array<Record<string, unknown>> = [];
    if (!a.ack) buttons.push(button('Acknowledge', ALERT_ACTIONS.ack, a.fingerprint, 'primary'));
    for (const d of SILENCE_CHOICES)
      buttons.push(button(`Silence ${d}`, ALERT_ACTIONS.silence, `${a.fingerprint}|${d}`));
    if (opts.rollback) {
      buttons.push({
        ...button(`Roll back ${opts.rollback.service}`, ALERT_ACTIONS.rollback, a.fingerprint, 'danger'),
        confirm: {
          title: { type: 'plain_text', text: 'Roll back?' },
          text: {
            type: 'mrkdwn',
            text: `All traffic of ${opts.rollback.service} in ${opts.rollback.environment} goes back to its last good colour.`,
          },
          confirm: { type: 'plain_text', text: 'Roll back' },
          deny: { type: 'plain_text', text: 'Cancel' },
        },
      });
    }
    blocks.push({ type: 'actions', block_id: `alert:${a.fingerprint}`, elements: buttons as never });
  }
  const plain = `${a.status === 'resolved' ? 'RESOLVED' : (a.labels.severity ?? '').toUpperCase()} ${a.labels.alertname ?? 'alert'}: ${summary}`;
  return { text: clip(escapeMrkdwn(plain), 3000), blocks };
}

/** Block Kit's limits for one message (50 blocks, 3,000 characters a section), with room to spare. */
const SECTION_CHARS = 2_900;
const NAME_SECTIONS = 40;
/** All names together: about Slack's limit for a message's text, so the summary stays one message. */
const NAMED_CHARS = 36_000;

/**
 * Names a storm's alerts in sections: firing first, then resolved, each in arrival order, as many as
 * fit; returns the blocks and how many alerts were left out (they are in the thread).
 */
function namedSections(g: AlertGroup): { blocks: KnownBlock[]; unnamed: number } {
  const mixed = Object.keys(g.bySeverity).length > 1;
  const token = (fp: string) => {
    const st = g.statuses[fp];
    // Backticks would end the code span early: shown as quotes.
    const name = st?.name ? escapeMrkdwn(st.name.replace(/`/g, "'")) : fp;
    const icon = mixed && st?.status === 'firing' ? `${severityIcon(severityKey(st.severity))}` : '';
    return `${icon}\`${name}\``;
  };
  const lists: Array<[string, string[]]> = [
    [`*🔥 Firing (${g.firing})*`, g.fingerprints.filter((fp) => g.statuses[fp]?.status !== 'resolved')],
    [`*✅ Resolved (${g.resolved})*`, g.fingerprints.filter((fp) => g.statuses[fp]?.status === 'resolved')],
  ];
  const blocks: KnownBlock[] = [];
  let budget = NAMED_CHARS;
  let unnamed = 0;
  for (const [heading, fps] of lists) {
    if (fps.length === 0) continue;
    let text = `${heading}:`;
    let i = 0;
    for (; i < fps.length; i++) {
      const t = ` ${token(fps[i] as string)}`;
      if (t.length > budget) break;
      if (text.length + t.length > SECTION_CHARS) {
        if (blocks.length + 1 >= NAME_SECTIONS) break;
        blocks.push({ type: 'section', text: { type: 'mrkdwn', text: text.trimStart() } });
        text = '';
      }
      text += t;
      budget -= t.length;
    }
    unnamed += fps.length - i;
    if (i > 0) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: text.trimStart() } });
    if (blocks.length >= NAME_SECTIONS) {
      // No room for the other list: it is counted among the unnamed.
      for (const [, rest] of lists.slice(lists.findIndex(([h]) => h === heading) + 1)) unnamed += rest.length;
      break;
    }
  }
  return { blocks, unnamed };
}

/**
 * A storm's summary, edited in place as the storm goes on: counts by state and severity, the alerts
 * named by what tells them apart (firing first), "+M more" when they do not all fit, one
 * Acknowledge all button; every alert is listed with its labels in the thread.
 */
export function renderGroup(g: AlertGroup, now: number): { text: string; blocks: KnownBlock[] } {
  const labels = Object.entries(g.groupLabels)
    .map(([k, v]) => `\`${escapeMrkdwn(k)}=${escapeMrkdwn(clip(v, 60))}\``)
    .join(' ');
  const sev = Object.entries(g.bySeverity)
    .map(([k, v]) => `${severityIcon(k)} ${v} ${escapeMrkdwn(k)}`)
    .join(' · ');
  const head = `*🌩️ Alert storm: ${g.fingerprints.length} alerts* ${labels} — ${g.firing} firing, ${g.resolved} resolved`;
  const named = namedSections(g);
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: clip(head, 2900) } },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          // Severities are whatever the alerts carry: as many as there are alerts, so clipped.
          text: `${clip(sev, 2000) || 'no severity'} · updated ${hhmm(now)} · every alert with its labels is in the thread`,
        },
      ],
    },
    ...named.blocks,
  ];
  if (named.unnamed > 0)
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `+${named.unnamed} more in the thread` }],
    });
  if (g.escalations > 0 && !g.ack)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `📣 Escalated ${g.escalations}×` }] });
  if (g.ack)
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `👀 Acknowledged by <@${g.ack.by}> at ${hhmm(g.ack.at)}` },
    });
  else if (g.firing > 0) {
    blocks.push({
      type: 'actions',
      block_id: `alert-group:${g.id}`,
      elements: [button('Acknowledge all', ALERT_ACTIONS.ackGroup, g.id, 'primary') as never],
    });
  }
  return { text: `Alert storm: ${g.fingerprints.length} alerts (${g.firing} firing)`, blocks };
}

/** One thread line per alert of a storm. */
export function alertLine(a: AlertRecord): string {
  const labels = Object.entries(a.labels)
    .filter(([k]) => !HIDDEN_LABELS.has(k))
    .slice(0, 4)
    .map(([k, v]) => `${k}=${clip(v, 30)}`)
    .join(' ');
  return `${alertTitle(a)} ${escapeMrkdwn(labels)} \`${a.fingerprint}\``;
}

/** A storm's thread lists its alerts with their labels, this many a reply at most… */
export const THREAD_LINES = 250;
/** …and within this many characters (Slack takes 40,000 in a message's text). */
const THREAD_CHARS = 20_000;

/** The lines of one thread reply of a storm: the first alerts, as many as fit (at least one). */
export function threadReply(records: AlertRecord[]): string[] {
  const lines: string[] = [];
  let chars = 0;
  for (const r of records.slice(0, THREAD_LINES)) {
    const line = alertLine(r);
    if (lines.length > 0 && chars + line.length + 1 > THREAD_CHARS) break;
    lines.push(line);
    chars += line.length + 1;
  }
  return lines;
}

function button(text: string, action_id: string, value: string, style?: 'primary' | 'danger') {
  return {
    type: 'button',
    text: { type: 'plain_text', text },
    action_id,
    value,
    ...(style ? { style } : {}),
  };
}
