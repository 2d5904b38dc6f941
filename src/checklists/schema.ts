import { z } from 'zod';
import { METRIC_NAMES } from './metric-checks.js';

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
  /** A named metric of the environment (src/checklists/metric-checks.ts), its query overridable per environment. */
  z
    .strictObject({
      kind: z.literal('metric'),
      metric: z.enum(METRIC_NAMES),
      environment: z.string(),
      service: z.string().optional(),
      /** In the metric's unit: seconds for response times, percent (0–100) for the others. */
      max: z.number().optional(),
      min: z.number().optional(),
    })
    .refine((c) => c.max !== undefined || c.min !== undefined, 'needs a threshold: max or min'),
]);
export type ItemCheck = z.infer<typeof ItemCheck>;

/**
 * Who may tick: any entry that matches allows. `lead`; `owner` (the item's owner); `gate-deployers`
 * (a deployer of every environment in checklists.gateEnvironments: the default rule); `deployers:<env>`;
 * `group:S…` (a Slack user group); or a Slack user ID.
 */
export const TickRule = z.union(
  [
    z.enum(['lead', 'owner', 'gate-deployers']),
    z.string().regex(/^deployers:[a-z][a-z0-9-]{0,39}$/),
    z.string().regex(/^group:S[A-Z0-9]{2,}$/),
    z.string().regex(/^[UW][A-Z0-9]{2,}$/),
  ],
  {
    error:
      'must be lead, owner, gate-deployers, deployers:<environment>, group:<Slack user group ID S…> or a Slack user ID',
  },
);
export type TickRule = z.infer<typeof TickRule>;
const MayTick = z.array(TickRule).min(1, 'names nobody: leave it out for the default');

export const TemplateItem = z.strictObject({
  id: Id,
  text: z.string().min(1).max(150),
  owner: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,}$/, 'must be a Slack user ID')
    .optional(),
  check: ItemCheck.optional(),
  /** Who may tick this item (nearest wins: item, section, checklist; see may-tick.ts for the default). */
  mayTick: MayTick.optional(),
});
export type TemplateItem = z.infer<typeof TemplateItem>;

export const TemplateSection = z.strictObject({
  title: z.string().min(1),
  items: z.array(TemplateItem).min(1),
  mayTick: MayTick.optional(),
});
export type TemplateSection = z.infer<typeof TemplateSection>;

export const TemplateChecklist = z.strictObject({
  title: z.string().min(1),
  sections: z.array(TemplateSection).min(1),
  mayTick: MayTick.optional(),
});
export type TemplateChecklist = z.infer<typeof TemplateChecklist>;

export const Template = z
  .strictObject({
    name: z.string().min(1),
    phases: z
      .array(
        z.strictObject({
          phase: z.number().int().min(1).max(4),
          title: z.string().min(1),
          checklist: Id,
          /**
           * The phase passes once this share of its items is ticked (0 < passRate ≤ 1, e.g. 0.95 for the
           * seed's 95% rule of pre-production validation); without it, only a complete checklist passes.
           */
          passRate: z.number().gt(0).max(1).optional(),
        }),
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

/** The single rollout of versions before named rollouts (`…:data:rollout:<set>`); read only by the migration. */
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

/** A rollout's name: lower-case, starts with a letter (so it is never taken for a date), e.g. `teamflow-q1`. */
export const RolloutName = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,31}$/,
    'must start with a letter: lower-case letters, digits and dashes, at most 32',
  )
  .refine((n) => !n.startsWith('rel-'), 'must not start with rel- (release ids do)');

const Override = z.object({ by: z.string(), reason: z.string(), at: z.number() });

/** A rollout of its own: its calendar, template, where it is shown, what it covers, and how it ended. */
export const RolloutRecord = z.object({
  id: RolloutName,
  /** A shipped template's name or the configured template's path (what loadTemplate takes). */
  template: z.string().min(1),
  startDate: z.iso.date(),
  /** Channels whose `/checklist` shows this rollout (the one it was started in). */
  channels: z.array(z.string()).default([]),
  /** Services and environments it covers; absent: all. */
  services: z.array(z.string()).optional(),
  environments: z.array(z.string()).optional(),
  status: z.enum(['active', 'finished']),
  setBy: z.string(),
  setAt: z.number(),
  finishedAt: z.number().optional(),
  finishedBy: z.string().optional(),
  /** Leads' overrides: a phase allowed to advance, or the production gate opened, with why. */
  overrides: z.record(z.string(), Override).default({}),
});
export type RolloutRecord = z.infer<typeof RolloutRecord>;

/** One tick or untick, kept in the rollout's history (capped). */
export const TickEntry = z.object({
  at: z.number(),
  by: z.string(),
  name: z.string().optional(),
  checklist: z.string(),
  item: z.string(),
  text: z.string().optional(),
  ticked: z.boolean(),
  /** Set for a tick of a release's post-deployment checklist. */
  release: z.string().optional(),
});
export type TickEntry = z.infer<typeof TickEntry>;

/** The post-deployment checklist of one release: its own ticks, shown in the release's thread. */
export const ReleaseChecklist = z.object({
  releaseId: z.string(),
  environment: z.string(),
  service: z.string(),
  version: z.string(),
  template: z.string(),
  /** The active rollouts that covered the release when it completed. */
  rollouts: z.array(z.string()),
  channel: z.string(),
  threadTs: z.string().optional(),
  at: z.number(),
});
export type ReleaseChecklist = z.infer<typeof ReleaseChecklist>;
