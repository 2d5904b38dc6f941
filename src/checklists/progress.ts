import type { ItemState, Rollout, Template, TemplateChecklist, TemplateItem } from './schema.js';

export interface SectionProgress {
  title: string;
  done: number;
  total: number;
}

export interface ChecklistProgress {
  done: number;
  total: number;
  sections: SectionProgress[];
  open: Array<{ section: string; item: TemplateItem }>;
}

export function progressOf(cl: TemplateChecklist, states: Record<string, ItemState>): ChecklistProgress {
  const sections = cl.sections.map((s) => ({
    title: s.title,
    done: s.items.filter((i) => states[i.id]?.ticked).length,
    total: s.items.length,
  }));
  const open = cl.sections.flatMap((s) =>
    s.items.filter((i) => !states[i.id]?.ticked).map((item) => ({ section: s.title, item })),
  );
  return {
    done: sections.reduce((a, s) => a + s.done, 0),
    total: sections.reduce((a, s) => a + s.total, 0),
    sections,
    open,
  };
}

/**
 * Whether a phase has passed: its checklist is complete or, with the phase's `passRate`, at least
 * that share of its items is ticked (the seed's 95% rule), or a lead let it advance.
 */
export function phasePassed(
  phase: number,
  template: Template,
  states: Record<string, Record<string, ItemState>>,
  rollout: Pick<Rollout, 'overrides'>,
): { passed: boolean; done: number; total: number; needed: number; overridden: boolean } {
  const p = template.phases[phase - 1];
  const cl = p ? template.checklists[p.checklist] : undefined;
  if (!p || !cl) return { passed: true, done: 0, total: 0, needed: 0, overridden: false };
  const prog = progressOf(cl, states[p.checklist] ?? {});
  // Rounded up: 95% of 13 items is 13 (12.35 → 13), never a share below the rule.
  const needed = p.passRate === undefined ? prog.total : Math.ceil(prog.total * p.passRate - 1e-9);
  const overridden = Boolean(rollout.overrides[`phase-${phase}`]);
  return {
    passed: overridden || prog.done >= needed,
    done: prog.done,
    total: prog.total,
    needed,
    overridden,
  };
}

/**
 * The phase the rollout is really in: the calendar's, unless an earlier phase has not passed (see
 * phasePassed) and no lead let it advance.
 */
export function effectivePhase(
  calendarPhase: number,
  template: Template,
  states: Record<string, Record<string, ItemState>>,
  rollout: Pick<Rollout, 'overrides'>,
): { phase: number; heldBy?: number } {
  for (let k = 1; k < Math.min(calendarPhase, 5); k++) {
    if (!phasePassed(k, template, states, rollout).passed) return { phase: k, heldBy: k };
  }
  return { phase: calendarPhase };
}

/**
 * Why the phases hold a production deploy, or undefined: the calendar must have reached phase 3
 * and phases 1 and 2 must have passed (or been overridden by a lead).
 */
export function phaseRefusal(
  template: Template,
  states: Record<string, Record<string, ItemState>>,
  rollout: Pick<Rollout, 'overrides'>,
  calendar: { phase: number; day: number; phase3Starts: string },
): string | undefined {
  const reasons: string[] = [];
  if (calendar.phase < 3) {
    reasons.push(
      calendar.phase < 1
        ? `the rollout has not started yet (it reaches phase 3, production deployment, on ${calendar.phase3Starts})`
        : `the rollout is in phase ${calendar.phase} (day ${calendar.day} of 28); production deploys open in phase 3, on ${calendar.phase3Starts}`,
    );
  }
  for (const k of [1, 2]) {
    const pass = phasePassed(k, template, states, rollout);
    if (pass.passed) continue;
    const p = template.phases[k - 1];
    const rate = p?.passRate;
    const pct = pass.total === 0 ? 100 : Math.floor((pass.done / pass.total) * 100);
    reasons.push(
      `phase ${k} (${p?.title}) has not passed: ${pass.done}/${pass.total} ticked (${pct}%)${rate === undefined ? ', needs all' : `, needs ${Math.round(rate * 100)}% (${pass.needed})`}`,
    );
  }
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

/** Why a production deploy must wait, or undefined when the pre-deployment checklist allows it. */
export function gateRefusal(
  template: Template,
  pre: Record<string, ItemState>,
  rollout: Pick<Rollout, 'overrides'> | undefined,
  rolloutId?: string,
): string | undefined {
  const cl = template.checklists.pre;
  if (!cl || rollout?.overrides.pre) return undefined;
  const p = progressOf(cl, pre);
  if (p.open.length === 0) return undefined;
  const shown = p.open.slice(0, 8).map((o) => `• ${o.section}: ${o.item.text}`);
  const more = p.open.length > shown.length ? `\n…and ${p.open.length - shown.length} more` : '';
  const of = rolloutId ? ` of rollout *${rolloutId}*` : '';
  const name = rolloutId ? ` ${rolloutId}` : '';
  return `the pre-deployment checklist is not complete (${p.done}/${p.total})${of}; still open:\n${shown.join('\n')}${more}\nTick them with \`/checklist pre${name}\`, or a lead can override: \`/checklist override${name} pre <reason>\`.`;
}
