import type { KnownBlock } from '@slack/types';
import { escapeMrkdwn } from '../alerts/render-alert.js';
import type { Batch } from './batch-store.js';
import { type Release, type Step, TERMINAL } from './schema.js';

/** How a release of the batch stands, as the batch message counts it. */
export type MemberState =
  | 'running'
  | 'soaking'
  | 'awaiting_approval'
  | 'queued'
  | 'paused'
  | 'rolling_back'
  | 'completed'
  | 'rolled_back'
  | 'failed'
  | 'stopped';

/** Counted in this order; a count of 0 is left out (completed always shows, as n/total). */
const STATES: Array<{ state: MemberState; icon: string; label: string }> = [
  { state: 'running', icon: '🔄', label: 'running' },
  { state: 'soaking', icon: '⏳', label: 'soaking' },
  { state: 'awaiting_approval', icon: '🟡', label: 'awaiting approval' },
  { state: 'queued', icon: '⏸️', label: 'queued' },
  { state: 'paused', icon: '⏸️', label: 'paused' },
  { state: 'rolling_back', icon: '↩️', label: 'rolling back' },
  { state: 'completed', icon: '✅', label: 'completed' },
  { state: 'rolled_back', icon: '↩️', label: 'rolled back' },
  { state: 'failed', icon: '🚨', label: 'failed' },
  { state: 'stopped', icon: '🚫', label: 'not started' },
];
const ICON = Object.fromEntries(STATES.map((s) => [s.state, s.icon])) as Record<MemberState, string>;
const LABEL = Object.fromEntries(STATES.map((s) => [s.state, s.label])) as Record<MemberState, string>;
/** What a person may have to act on: named on the message's second line. */
const ATTENTION: ReadonlySet<MemberState> = new Set([
  'failed',
  'rolled_back',
  'rolling_back',
  'paused',
  'awaiting_approval',
]);

/** Lines beyond this are summed up (a section holds 3000 characters, a message 50 blocks). */
export const MAX_LINES = 120;
const SECTION_CHARS = 2_900;

export function memberState(r: Release): MemberState {
  switch (r.status) {
    case 'running': {
      const s = r.steps[r.stepIndex];
      return s?.kind === 'soak' && s.status === 'waiting' ? 'soaking' : 'running';
    }
    case 'rejected':
    case 'expired':
    case 'cancelled':
      return 'stopped';
    default:
      return r.status;
  }
}

/** A step in a few words: the batch message has one line per service. */
function stepWords(s: Step): string {
  switch (s.kind) {
    case 'update':
      return 'updating';
    case 'converge':
      return 'converging';
    case 'health':
      return 'health checks';
    case 'smoke':
      return 'smoke checks';
    case 'shift':
      return `shifting to ${s.percent}%`;
    case 'soak':
      return `soaking at ${s.percent}%`;
    case 'gate':
      return `gate at ${s.percent}%`;
    case 'task':
      return s.task ? `task ${s.task.name}` : 'task';
    case 'finalize':
      return 'finalizing';
  }
}

/** A link to a message in the batch thread (Slack's permalink form), or undefined without the workspace's address. */
export function threadLink(
  workspaceUrl: string | undefined,
  m: { channel: string; ts: string },
  threadTs: string,
): string | undefined {
  if (!workspaceUrl || !/^https?:\/\/[^\s|<>]+$/.test(workspaceUrl)) return undefined;
  const base = workspaceUrl.replace(/\/?$/, '/');
  // `&` is escaped in a Slack link's URL part.
  return `${base}archives/${m.channel}/p${m.ts.replace('.', '')}?thread_ts=${threadTs}&amp;cid=${m.channel}`;
}

function memberLine(
  service: string,
  r: Release | undefined,
  opts: { workspaceUrl?: string; threadTs?: string },
): string {
  const name = `*${escapeMrkdwn(service)}*`;
  if (!r) return `▫️ ${name} — record gone`;
  const url =
    r.message && opts.threadTs ? threadLink(opts.workspaceUrl, r.message, opts.threadTs) : undefined;
  const shown = url ? `<${url}|${escapeMrkdwn(service)}>` : name;
  const state = memberState(r);
  const step = r.steps[r.stepIndex];
  const where =
    (state === 'running' || state === 'soaking' || state === 'paused') && step
      ? `${stepWords(step)} (${r.stepIndex + 1}/${r.steps.length})`
      : LABEL[state];
  return `${ICON[state]} ${shown} — ${where} · ${r.weights[r.toColour]}% ${r.toColour}`;
}

/**
 * The one message of a `/deploy all`: counts by state at a glance, a line per service (state,
 * step, share of traffic on the new colour) linking to that release's own message in this
 * message's thread, where its steps and buttons are.
 */
export function renderBatch(
  b: Batch,
  members: ReadonlyMap<string, Release | undefined>,
  opts: { workspaceUrl?: string } = {},
): { text: string; blocks: KnownBlock[] } {
  const started = b.services.filter((s) => b.members[s] !== undefined);
  const states = started.map((s) => {
    const r = members.get(s);
    return r ? memberState(r) : undefined;
  });
  const count = (st: MemberState) => states.filter((x) => x === st).length;
  const total = started.length;
  const completed = count('completed');
  const finished = started.every((s) => {
    const r = members.get(s);
    return !r || TERMINAL.has(r.status);
  });
  const what = `*${total} service${total === 1 ? '' : 's'}* \`${escapeMrkdwn(b.version)}\` to *${escapeMrkdwn(b.environment)}*`;
  const headline =
    total === 0 && b.refused.length === 0
      ? `🚀 Starting a release of ${b.services.length} services \`${escapeMrkdwn(b.version)}\` to *${escapeMrkdwn(b.environment)}*…`
      : !finished
        ? `🚀 Releasing ${what}: ${completed}/${total} completed`
        : completed === total && total > 0
          ? `✅ Released ${what}: ${completed}/${total} completed`
          : `⚠️ Batch finished: ${completed}/${total} completed of ${what}`;
  const counts = STATES.filter((s) => s.state === 'completed' || count(s.state) > 0)
    .map((s) => `${s.icon} ${s.state === 'completed' ? `${completed}/${total}` : count(s.state)} ${s.label}`)
    .join(' · ');
  const attention = started
    .map((s) => ({ s, st: states[started.indexOf(s)] }))
    .filter((x) => x.st !== undefined && ATTENTION.has(x.st));
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: headline } },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `${counts}${b.refused.length > 0 ? ` · ⛔ ${b.refused.length} refused` : ''}`,
        },
      ],
    },
  ];
  if (attention.length > 0) {
    const named = attention
      .slice(0, 10)
      .map((x) => `${escapeMrkdwn(x.s)} (${LABEL[x.st as MemberState]})`)
      .join(', ');
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*Needs attention:* ${named}${attention.length > 10 ? ` and ${attention.length - 10} more` : ''}`,
      },
    });
  }
  const threadTs = b.message?.ts;
  const lines = started
    .slice(0, MAX_LINES)
    .map((s) => memberLine(s, members.get(s), { workspaceUrl: opts.workspaceUrl, threadTs }));
  if (started.length > MAX_LINES)
    lines.push(`…and ${started.length - MAX_LINES} more: \`/deploy status\` lists every release in flight`);
  // A refusal is flightdeck's own sentence, already mrkdwn (mentions, code), as the command's answer shows it.
  for (const x of b.refused.slice(0, 20))
    lines.push(`⛔ *${escapeMrkdwn(x.service)}* — ${(x.reason.split('\n')[0] ?? '').slice(0, 300)}`);
  if (b.refused.length > 20) lines.push(`⛔ …and ${b.refused.length - 20} more refused`);
  for (const chunk of chunkLines(lines, SECTION_CHARS))
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: chunk } });
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: `Requested by <@${b.requestedBy.id}> · \`${b.id}\` · ${b.sequential ? 'one after the other' : 'in parallel'} · each release's steps and buttons are in this thread`,
      },
    ],
  });
  const plain = headline.replace(/[*`]/g, '');
  return { text: plain, blocks };
}

/** Lines joined into chunks of at most `max` characters, never splitting a line (one too long is cut). */
export function chunkLines(lines: string[], max: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of lines) {
    const line = raw.length > max ? `${raw.slice(0, max - 1)}…` : raw;
    if (cur && cur.length + 1 + line.length > max) {
      out.push(cur);
      cur = line;
    } else cur = cur ? `${cur}\n${line}` : line;
  }
  if (cur) out.push(cur);
  return out;
}
