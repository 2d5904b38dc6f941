import type { KnownBlock } from '@slack/types';
import type { FlightdeckConfig } from '../config/schema.js';
import { checkBackend } from '../integrations/http-check.js';
import type { Swarm } from '../integrations/swarm.js';
import { textBar } from '../releases/weights.js';
import type { ChecklistStore } from './checklist-store.js';
import { effectivePhase, gateRefusal, progressOf } from './progress.js';
import { renderChecklist } from './render-checklist.js';
import { phaseDates, prettyDate, rolloutDay } from './rollout-calendar.js';
import type { ItemCheck, ItemState, Rollout, Template } from './schema.js';

export type Which = 'current' | 'pre' | 'post' | { phase: number };

export interface CheckDeps {
  /** The Swarm of an environment's Docker endpoint. */
  swarmFor: (environment: string) => Swarm;
  /** A PromQL instant query; checklist queries name no environment, so they use the top-level Prometheus. */
  promQuery: (environment: string | undefined, q: string) => Promise<number[]>;
  /** The colour that carries the traffic of a service (the one that must be healthy). */
  liveColour: (environment: string, service: string) => Promise<'blue' | 'green'>;
}

/** The 28-day rollout: which checklist is current, ticking, auto-checks, gates, status and digests. */
export class Checklists {
  constructor(
    readonly template: Template,
    readonly store: ChecklistStore,
    readonly config: FlightdeckConfig,
    private readonly checks: CheckDeps,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async rollout(): Promise<Rollout | undefined> {
    const stored = await this.store.rollout();
    if (stored) return stored;
    const start = this.config.rollout.startDate;
    return start ? { startDate: start, setBy: 'config', setAt: 0, overrides: {} } : undefined;
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
    if (which === 'pre' || which === 'post') return { id: which, phase: which === 'pre' ? 3 : 4 };
    if (typeof which === 'object')
      return { id: this.template.phases[which.phase - 1]?.checklist as string, phase: which.phase };
    const pos = await this.position();
    if (!pos)
      return {
        error: 'No rollout has started: a lead sets its first day with `/checklist start YYYY-MM-DD`.',
      };
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
    const when = dates ? ` · ${prettyDate(dates.first)} – ${prettyDate(dates.last)}` : '';
    const context = `${phase ? `Phase ${phase.phase}: ${phase.title}` : this.template.name}${when}${id === 'pre' ? ' · gate of production deploys' : ''}`;
    return renderChecklist(id, cl, await this.store.items(id), context, phase?.phase);
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
    for (const c of changes) {
      const item = manual.get(c.itemId);
      if (!item) continue;
      await this.store.setItem(id, c.itemId, {
        ticked: c.ticked,
        by: by.id,
        name: by.name,
        at: this.now().getTime(),
      });
      applied.push({ itemId: c.itemId, text: item.text, ticked: c.ticked });
    }
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

  private async runCheck(check: ItemCheck): Promise<{ ok: boolean; evidence: string }> {
    if (check.kind === 'promql') {
      const values = await this.checks.promQuery(undefined, check.query);
      if (values.length === 0) return { ok: false, evidence: 'no data' };
      const worst = check.max !== undefined ? Math.max(...values) : Math.min(...values);
      const ok =
        (check.max === undefined || worst <= check.max) && (check.min === undefined || worst >= check.min);
      return {
        ok,
        evidence: `${worst.toPrecision(3)} (${check.max !== undefined ? `≤ ${check.max}` : `≥ ${check.min}`})`,
      };
    }
    const env = this.config.environments[check.environment];
    if (!env) return { ok: false, evidence: `no environment ${check.environment}` };
    const services = Object.entries(env.services).filter(
      ([name]) => !check.service || name === check.service,
    );
    const results = await Promise.all(
      services.map(async ([name, svc]) => {
        const colour = await this.checks.liveColour(check.environment, name);
        if (check.kind === 'health') {
          const r = await checkBackend(svc[colour].address, svc.healthPath, { timeoutMs: 2_000 });
          return { ok: r.ok, line: `${name}/${colour} ${r.ok ? 'healthy' : r.detail}` };
        }
        const swarm = this.checks.swarmFor(check.environment);
        const info = await swarm.inspect(svc[colour].swarmService);
        const c = await swarm.convergence(svc[colour].swarmService, info.image);
        return {
          ok: c.state === 'converged',
          line: `${svc[colour].swarmService} ${c.state === 'converged' ? `${c.running}/${c.desired} running` : c.detail}`,
        };
      }),
    );
    const ok = results.every((r) => r.ok);
    return {
      ok,
      evidence: `${results.filter((r) => r.ok).length}/${results.length}: ${results.map((r) => r.line).join(', ')}`,
    };
  }

  async gate(environment: string): Promise<string | undefined> {
    if (!this.config.checklists.gateEnvironments.includes(environment)) return undefined;
    return gateRefusal(this.template, await this.store.items('pre'), await this.rollout());
  }

  /** `/checklist status`: the 28-day timeline, progress per phase, overdue items, each as a text bar. */
  async status(): Promise<string> {
    const pos = await this.position();
    if (!pos) return 'No rollout has started: a lead sets its first day with `/checklist start YYYY-MM-DD`.';
    const states = await this.states();
    const dayShown = Math.min(Math.max(pos.day, 0), 28);
    const lines = [
      `*${this.template.name}* — started ${prettyDate(pos.rollout.startDate)} · ${pos.day < 1 ? `starts in ${1 - pos.day} day(s)` : pos.day > 28 ? 'finished' : `day ${pos.day} of 28`} · phase ${Math.min(pos.effective, 4) || 1} of 4`,
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
      lines.push(
        `Phase ${p.phase} ${p.title} · ${prettyDate(d.first)} – ${prettyDate(d.last)} \`${textBar(pct)}\` ${prog.done}/${prog.total}${here}${override}`,
      );
    }
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
    const lines: string[] = [`🗓️ *Rollout day ${pos.day} of 28* — phase ${pos.effective}`];
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
