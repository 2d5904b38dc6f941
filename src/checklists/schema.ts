import { z } from 'zod';

const Id = z.string().regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'must be lower-case letters, digits and dashes');

/** An item flightdeck verifies itself, with the evidence shown. */
export const ItemCheck = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('swarm-converged'),
    environment: z.string(),
    service: z.string().optional(),
  }),
  z.strictObject({ kind: z.literal('health'), environment: z.string(), service: z.string().optional() }),
  z.strictObject({
    kind: z.literal('promql'),
    query: z.string().min(1),
    max: z.number().optional(),
    min: z.number().optional(),
  }),
]);
export type ItemCheck = z.infer<typeof ItemCheck>;

export const TemplateItem = z.strictObject({
  id: Id,
  text: z.string().min(1).max(150),
  owner: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,}$/, 'must be a Slack user ID')
    .optional(),
  check: ItemCheck.optional(),
});
export type TemplateItem = z.infer<typeof TemplateItem>;

export const TemplateSection = z.strictObject({
  title: z.string().min(1),
  items: z.array(TemplateItem).min(1),
});

export const TemplateChecklist = z.strictObject({
  title: z.string().min(1),
  sections: z.array(TemplateSection).min(1),
});
export type TemplateChecklist = z.infer<typeof TemplateChecklist>;

export const Template = z
  .strictObject({
    name: z.string().min(1),
    phases: z
      .array(
        z.strictObject({ phase: z.number().int().min(1).max(4), title: z.string().min(1), checklist: Id }),
      )
      .length(4, 'needs the four phases'),
    checklists: z.record(Id, TemplateChecklist),
  })
  .superRefine((t, ctx) => {
    t.phases.forEach((p, i) => {
      if (p.phase !== i + 1)
        ctx.addIssue({ code: 'custom', path: ['phases', i, 'phase'], message: `must be ${i + 1}` });
      if (!t.checklists[p.checklist]) {
        ctx.addIssue({
          code: 'custom',
          path: ['phases', i, 'checklist'],
          message: `names no checklist (have: ${Object.keys(t.checklists).join(', ')})`,
        });
      }
    });
    if (!t.checklists.pre)
      ctx.addIssue({
        code: 'custom',
        path: ['checklists'],
        message: 'needs a "pre" checklist (the production gate)',
      });
    if (!t.checklists.post)
      ctx.addIssue({ code: 'custom', path: ['checklists'], message: 'needs a "post" checklist' });
    for (const [name, cl] of Object.entries(t.checklists)) {
      const ids = cl.sections.flatMap((s) => s.items.map((i) => i.id));
      const dup = ids.find((id, i) => ids.indexOf(id) !== i);
      if (dup)
        ctx.addIssue({
          code: 'custom',
          path: ['checklists', name],
          message: `item id "${dup}" is used twice`,
        });
    }
  });
export type Template = z.infer<typeof Template>;

/** One item's state in Redis (a hash field per item, so concurrent ticks never overwrite each other). */
export const ItemState = z.object({
  ticked: z.boolean(),
  by: z.string(),
  name: z.string().optional(),
  at: z.number(),
  /** For auto-verified items: what the check saw. */
  evidence: z.string().optional(),
});
export type ItemState = z.infer<typeof ItemState>;

export const Rollout = z.object({
  startDate: z.iso.date(),
  setBy: z.string(),
  setAt: z.number(),
  /** Leads' overrides: a phase allowed to advance, or the production gate opened, with why. */
  overrides: z
    .record(z.string(), z.object({ by: z.string(), reason: z.string(), at: z.number() }))
    .default({}),
});
export type Rollout = z.infer<typeof Rollout>;
