import type { KnownBlock } from '@slack/types';
import type { FlightdeckConfig } from '../config/schema.js';
import type { Swarm } from '../integrations/swarm.js';
import { textBar } from '../releases/weights.js';
import type { ChecklistStore } from './checklist-store.js';
import { effectivePhase, gateRefusal, phaseRefusal, progressOf } from './progress.js';
import { renderChecklist } from './render-checklist.js';
import { phaseDates, prettyDate, rolloutDay } from './rollout-calendar.js';
import { runCheck } from './run-check.js';
import type { ItemCheck, ItemState, ReleaseChecklist, RolloutRecord, Template, TickEntry } from './schema.js';

export type Which = 'current' | 'pre' | 'post' | { phase: number };

export interface CheckDeps {
  /** The Swarm of an environment's Docker endpoint. */
  swarmFor: (environment: string) => Swarm;
  /** A PromQL instant query; checklist queries name no environment, so they use the top-level Prometheus. */
  promQuery: (environment: string | undefined, q: string) => Promise<number[]>;
  /** The colour that carries the traffic of a service (the one that must be healthy). */
  liveColour: (environment: string, service: string) => Promise<'blue' | 'green'>;
}

/** Which instance of the checklists a view shows: a rollout's, or one release's post-deployment checklist. */
export interface ChecklistScope {
  /** The rollout's id or the release's id: what keys, messages and buttons carry. */
  id: string;
  /** The rollout (for a release: the first rollout that covered it, if any), as read for this view. */
  rollout?: RolloutRecord;
  release?: ReleaseChecklist;
  /** The post-deployment checklists of the rollout's releases, with their progress (phase 4, status). */
  releasePosts?: () => Promise<Array<{ release: ReleaseChecklist; done: number; total: number }>>;
  /** Keeps ticks and unticks in the history of the rollout(s). */
  recordTicks?: (entries: TickEntry[]) => Promise<void>;
}

/** One rollout's checklists (or a release's): which is current, ticking, auto-checks, gates, status and digests. */
export class Checklists {
  constructor(
    readonly template: Template,
    readonly store: ChecklistStore,
    readonly config: FlightdeckConfig,
    private readonly checks: CheckDeps,
    private readonly now: () => Date = () => new Date(),
    readonly scope: ChecklistScope = { id: store.scope },
  ) {}

  async rollout(): Promise<RolloutRecord | undefined> {
    return this.scope.rollout;
  }

  async states(): Promise<Record<string, Record<string, ItemState>>> {
    const ids = Object.keys(this.template.checklists);
    const all = await Promise.all(ids.map((id) => this.store.items(id)));
    return Object.fromEntries(ids.map((id, i) => [id, all[i] ?? {}]));
  }

  /** Where the rollout stands: calendar day and phase, and the phase it is really in. */
  async position() {
    const rollout = await this.rollout();
    if (!rollout) return undefined;
    const cal = rolloutDay(rollout.startDate, this.config.timezone, this.now());
    const eff = effectivePhase(cal.phase, this.template, await this.states(), rollout);
    return { rollout, ...cal, effective: eff.phase, heldBy: eff.heldBy };
  }

  async resolve(which: Which): Promise<{ id: string; phase?: number } | { error: string }> {
    if (this.scope.release) return { id: 'post', phase: 4 };
    if (which === 'pre' || which === 'post') return { id: which, phase: which === 'pre' ? 3 : 4 };
    if (typeof which === 'object')
      return { id: this.template.phases[which.phase - 1]?.checklist as string, phase: which.phase };
    const pos = await this.position();
    if (!pos) return { error: NO_ROLLOUT };
    const phase = Math.min(Math.max(pos.effective, 1), 4);
    return { id: this.template.phases[phase - 1]?.checklist as string, phase };
  }

  async render(id: string): Promise<{ text: string; blocks: KnownBlock[] }> {
    const cl = this.template.checklists[id];
    if (!cl) return { text: `Unknown checklist ${id}`, blocks: [] };
    const phase = this.template.phases.find((p) => p.checklist === id);
    // Only the start date is needed here: every tick re-renders, so do not read every checklist.
    const rollout = await this.rollout();
    const dates = phase && rollout ? phaseDates(rollout.startDate, phase.phase) : undefined;
    const when =
      dates && !this.scope.release ? ` · ${prettyDate(dates.first)} – ${prettyDate(dates.last)}` : '';
    const rel = this.scope.release;
    const whose = rel
      ? ` · release of *${rel.service}* \`${rel.version}\` to *${rel.environment}*${rollout ? ` · rollout *${rollout.id}*` : ''}`
      : rollout
        ? ` · rollout *${rollout.id}*${rollout.status === 'finished' ? ' (finished)' : ''}`
        : '';
    const context = `${phase ? `Phase ${phase.phase}: ${phase.title}` : this.template.name}${when}${whose}${id === 'pre' ? ' · gate of production deploys' : ''}`;
    const view = renderChecklist(
      id,
      cl,
      await this.store.items(id),
      context,
      phase?.phase,
      this.scope.id,
      Boolean(rel),
    );
    // Phase 4 of a rollout shows the post-deployment checklists of its releases.
    if (!rel && phase?.phase === 4 && this.scope.releasePosts) {
      const posts = await this.scope.releasePosts();
      if (posts.length > 0) {
        const lines = posts.slice(0, 15).map((p) => releasePostLine(p));
        view.blocks.splice(2, 0, {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text: `*Releases of this rollout (${posts.length})*, each with its own checklist in its thread:\n${lines.join('\n')}`.slice(
                0,
                2900,
              ),
            },
          ],
        });
      }
    }
    return view;
  }

  /** Applies one person's ticks and unticks; unknown or automatic items are ignored. Returns what changed. */
  async tick(
    id: string,
    changes: Array<{ itemId: string; ticked: boolean }>,
    by: { id: string; name: string },
  ) {
    const cl = this.template.checklists[id];
    if (!cl) return [];
    const manual = new Map(
      cl.sections.flatMap((s) => s.items.filter((i) => !i.check).map((i) => [i.id, i] as const)),
    );
    const applied: Array<{ itemId: string; text: string; ticked: boolean }> = [];
    const at = this.now().getTime();
    for (const c of changes) {
      const item = manual.get(c.itemId);
      if (!item) continue;
      await this.store.setItem(id, c.itemId, { ticked: c.ticked, by: by.id, name: by.name, at });
      applied.push({ itemId: c.itemId, text: item.text, ticked: c.ticked });
    }
    await this.scope.recordTicks?.(
      applied.map((a) => ({
        at,
        by: by.id,
        name: by.name,
        checklist: id,
        item: a.itemId,
        text: a.text,
        ticked: a.ticked,
        ...(this.scope.release ? { release: this.scope.release.releaseId } : {}),
      })),
    );
    return applied;
  }

  /** Runs every automatic item of a checklist and records the evidence. */
  async autoCheck(id: string): Promise<number> {
    const cl = this.template.checklists[id];
    if (!cl) return 0;
    const items = cl.sections.flatMap((s) => s.items.filter((i) => i.check));
    await Promise.all(
      items.map(async (i) => {
        const r = await this.runCheck(i.check as ItemCheck).catch((err: Error) => ({
          ok: false,
          evidence: err.message,
        }));
        await this.store.setItem(id, i.id, {
          ticked: r.ok,
          by: 'flightdeck',
          name: 'flightdeck',
          at: this.now().getTime(),
          evidence: r.evidence,
        });
      }),
    );
    return items.length;
  }

  private runCheck(check: ItemCheck) {
    return runCheck(check, this.config, this.checks);
  }

  /**
   * Why this rollout holds a production deploy, or undefined: the pre-deployment checklist, then the
   * phases (phase 3 reached on the calendar, phases 1 and 2 passed).
   */
  async gate(): Promise<string | undefined> {
    const rollout = await this.rollout();
    if (!rollout) return undefined;
    const states = await this.states();
    const cal = rolloutDay(rollout.startDate, this.config.timezone, this.now());
    const reasons = [
      gateRefusal(this.template, states.pre ?? {}, rollout, rollout.id),
      phaseRefusal(this.template, states, rollout, {
        ...cal,
        phase3Starts: prettyDate(phaseDates(rollout.startDate, 3).first),
      }),
    ].filter((r): r is string => Boolean(r));
    return reasons.length > 0 ? reasons.join('\n') : undefined;
  }

  /** `/checklist status`: the 28-day timeline, progress per phase, overdue items, each as a text bar. */
  async status(): Promise<string> {
    const pos = await this.position();
    if (!pos) return NO_ROLLOUT;
    const states = await this.states();
    const dayShown = Math.min(Math.max(pos.day, 0), 28);
    const r = pos.rollout;
    const finished = r.status === 'finished' || pos.day > 28;
    const covers = `${r.services ? r.services.join(', ') : 'every service'} in ${r.environments ? r.environments.join(', ') : 'every environment'}`;
    const lines = [
      `*${r.id}* · ${this.template.name} — started ${prettyDate(r.startDate)} · ${pos.day < 1 ? `starts in ${1 - pos.day} day(s)` : finished ? 'finished' : `day ${pos.day} of 28`} · phase ${Math.min(pos.effective, 4) || 1} of 4`,
      `Covers ${covers}${r.channels.length > 0 ? ` · shown in ${r.channels.map((c) => `<#${c}>`).join(', ')}` : ''}${r.status === 'finished' ? ` · finished${r.finishedBy ? ` by ${r.finishedBy === 'flightdeck' ? 'the calendar' : `<@${r.finishedBy}>`}` : ''}${r.finishedAt ? ` on ${new Date(r.finishedAt).toISOString().slice(0, 10)}` : ''}` : ''}`,
      `\`${'█'.repeat(dayShown)}${'░'.repeat(28 - dayShown)}\``,
    ];
    for (const p of this.template.phases) {
      const cl = this.template.checklists[p.checklist];
      if (!cl) continue;
      const prog = progressOf(cl, states[p.checklist] ?? {});
      const pct = Math.round((prog.done / prog.total) * 100);
      const d = phaseDates(pos.rollout.startDate, p.phase);
      const here = p.phase === pos.effective ? ' ◀ now' : '';
      const override = pos.rollout.overrides[`phase-${p.phase}`] ? ' (advanced by a lead)' : '';
      const rate = p.passRate !== undefined ? ` · passes at ${Math.round(p.passRate * 100)}%` : '';
      lines.push(
        `Phase ${p.phase} ${p.title} · ${prettyDate(d.first)} – ${prettyDate(d.last)} \`${textBar(pct)}\` ${prog.done}/${prog.total}${rate}${here}${override}`,
      );
    }
    const posts = (await this.scope.releasePosts?.()) ?? [];
    if (posts.length > 0)
      lines.push(
        `*Post-deployment checklists of its releases (${posts.length})*`,
        ...posts.slice(0, 10).map((p) => releasePostLine(p)),
      );
    if (pos.heldBy) {
      lines.push(
        `⏸️ The calendar says phase ${pos.phase}, but phase ${pos.heldBy}'s checklist is not complete; a lead can move on with \`/checklist override phase ${pos.heldBy} <reason>\`.`,
      );
    }
    const overdue = this.overdue(pos.rollout.startDate, pos.today, states);
    if (overdue.length > 0) {
      lines.push(
        `*Overdue (${overdue.length})*`,
        ...overdue.slice(0, 10).map((o) => `• phase ${o.phase} · ${o.section}: ${o.text}`),
      );
      if (overdue.length > 10) lines.push(`…and ${overdue.length - 10} more`);
    }
    if (pos.rollout.overrides.pre)
      lines.push(
        `🔓 Production gate overridden by <@${pos.rollout.overrides.pre.by}>: ${pos.rollout.overrides.pre.reason}`,
      );
    return lines.join('\n');
  }

  /** Items of phases whose last day has passed, still open and not overridden. */
  overdue(startDate: string, today: string, states: Record<string, Record<string, ItemState>>) {
    const out: Array<{ phase: number; section: string; text: string; owner?: string }> = [];
    for (const p of this.template.phases) {
      if (phaseDates(startDate, p.phase).last >= today) continue;
      const cl = this.template.checklists[p.checklist];
      if (!cl) continue;
      for (const o of progressOf(cl, states[p.checklist] ?? {}).open)
        out.push({ phase: p.phase, section: o.section, text: o.item.text, owner: o.item.owner });
    }
    return out;
  }

  /** The daily digest: phase announcements, overdue items and open items nobody owns. */
  async digest(): Promise<string | undefined> {
    const pos = await this.position();
    if (!pos || pos.day < 1 || pos.day > 28) return undefined;
    const states = await this.states();
    const lines: string[] = [
      `🗓️ *Rollout day ${pos.day} of 28* — phase ${pos.effective} · *${pos.rollout.id}*`,
    ];
    for (const p of this.template.phases) {
      const d = phaseDates(pos.rollout.startDate, p.phase);
      if (d.first === pos.today) lines.push(`▶️ Phase ${p.phase} (${p.title}) starts today.`);
      if (d.last === pos.today) lines.push(`⏹️ Phase ${p.phase} (${p.title}) ends today.`);
    }
    const overdue = this.overdue(pos.rollout.startDate, pos.today, states);
    if (overdue.length > 0)
      lines.push(
        `*Overdue (${overdue.length})*`,
        ...overdue
          .slice(0, 15)
          .map((o) => `• phase ${o.phase} · ${o.text}${o.owner ? ` (<@${o.owner}>)` : ''}`),
      );
    const current = this.template.phases[Math.min(pos.effective, 4) - 1];
    const cl = current ? this.template.checklists[current.checklist] : undefined;
    if (cl) {
      const unowned = progressOf(cl, states[current?.checklist as string] ?? {}).open.filter(
        (o) => !o.item.owner && !o.item.check,
      );
      if (unowned.length > 0)
        lines.push(
          `*Open and unowned in phase ${current?.phase} (${unowned.length})*`,
          ...unowned.slice(0, 15).map((o) => `• ${o.section}: ${o.item.text}`),
        );
    }
    return lines.join('\n');
  }
}

export const NO_ROLLOUT =
  // &lt; &gt;: Slack would read a bare <name> as a link.
  'No rollout has started: a lead sets its first day with `/checklist start YYYY-MM-DD`, or starts a named one with `/checklist start &lt;name&gt; [YYYY-MM-DD] [template]`.';

function releasePostLine(p: { release: ReleaseChecklist; done: number; total: number }): string {
  const r = p.release;
  const mark = p.done === p.total ? '✅' : '⏳';
  return `• ${mark} ${r.service} \`${r.version}\` → ${r.environment} · ${p.done}/${p.total} · ${new Date(r.at).toISOString().slice(0, 10)}`;
}
