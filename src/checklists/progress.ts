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
 * The phase the rollout is really in: the calendar's, unless an earlier phase's checklist is still
 * incomplete and no lead let it advance.
 */
export function effectivePhase(
  calendarPhase: number,
  template: Template,
  states: Record<string, Record<string, ItemState>>,
  rollout: Pick<Rollout, 'overrides'>,
): { phase: number; heldBy?: number } {
  for (let k = 1; k < Math.min(calendarPhase, 5); k++) {
    const id = template.phases[k - 1]?.checklist as string;
    const cl = template.checklists[id];
    if (!cl) continue;
    const complete = progressOf(cl, states[id] ?? {}).open.length === 0;
    if (!complete && !rollout.overrides[`phase-${k}`]) return { phase: k, heldBy: k };
  }
  return { phase: calendarPhase };
}

/** Why a production deploy must wait, or undefined when the pre-deployment checklist allows it. */
export function gateRefusal(
  template: Template,
  pre: Record<string, ItemState>,
  rollout: Pick<Rollout, 'overrides'> | undefined,
): string | undefined {
  const cl = template.checklists.pre;
  if (!cl || rollout?.overrides.pre) return undefined;
  const p = progressOf(cl, pre);
  if (p.open.length === 0) return undefined;
  const shown = p.open.slice(0, 8).map((o) => `• ${o.section}: ${o.item.text}`);
  const more = p.open.length > shown.length ? `\n…and ${p.open.length - shown.length} more` : '';
  return `the pre-deployment checklist is not complete (${p.done}/${p.total}); still open:\n${shown.join('\n')}${more}\nTick them with \`/checklist pre\`, or a lead can override: \`/checklist override pre <reason>\`.`;
}
