import { isValid, parseISO } from 'date-fns';
import { z } from 'zod';
import { Duration } from './duration.js';

/**
 * What a version must have done in the environment before this one (the pipeline's previous
 * stage) to enter it. Completing there, not rolled back since, is always required.
 */
export const PromotionRule = z.strictObject({
  /** Live there at least this long (e.g. 24h). */
  minTimeLive: Duration.optional(),
  /** No critical alert for the service in the previous environment since the version went live. */
  noCriticalAlerts: z.boolean().default(false),
  /** The post-deployment checklist of the release that put it there is complete. */
  postChecklist: z.boolean().default(false),
});
export type PromotionRule = z.infer<typeof PromotionRule>;

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const DAY_ALIASES: Record<string, number> = Object.fromEntries(
  [
    ['sunday', 0],
    ['monday', 1],
    ['tuesday', 2],
    ['wednesday', 3],
    ['thursday', 4],
    ['friday', 5],
    ['saturday', 6],
  ].flatMap(([long, n]) => [
    [long as string, n as number],
    [(long as string).slice(0, 3), n as number],
  ]),
);

/** "15:00" → minutes since midnight; "24:00" is the end of the day. */
function minutesOf(hhmm: string): number | undefined {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && min > 0)) return undefined;
  return h * 60 + min;
}

/** A point in a week: "fri 15:00" → day 5, minute 900. */
export interface WeekPoint {
  day: number;
  minute: number;
}

const WeekPointText = z.string().transform((v, ctx): WeekPoint => {
  const [dayWord, time, ...rest] = v.trim().toLowerCase().split(/\s+/);
  const day = dayWord !== undefined ? DAY_ALIASES[dayWord] : undefined;
  const minute = time !== undefined ? minutesOf(time) : undefined;
  if (day === undefined || minute === undefined || rest.length > 0) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a day and time like "fri 15:00"` });
    return z.NEVER;
  }
  return { day, minute };
});

/** A local date or date and time, "2026-12-20" or "2026-12-20 18:00", in the team's time zone. */
export interface LocalTime {
  date: string;
  minute: number;
  /** Only a date was written. */
  dateOnly: boolean;
}

const LocalTimeText = z.union([z.string(), z.date()]).transform((v, ctx): LocalTime => {
  // YAML reads an unquoted 2026-12-20 as a Date (UTC midnight): that is the date written.
  if (v instanceof Date) return { date: v.toISOString().slice(0, 10), minute: 0, dateOnly: true };
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}))?$/.exec(v.trim());
  const minute = m?.[2] === undefined ? 0 : minutesOf(m[2]);
  if (!m || !isValid(parseISO(m[1] as string)) || minute === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a date like 2026-12-20 or 2026-12-20 18:00` });
    return z.NEVER;
  }
  return { date: m[1] as string, minute, dateOnly: m[2] === undefined };
});

const FreezeCommon = {
  /** Shown in refusals and status, e.g. "Friday afternoons". */
  name: z.string().min(1).max(60),
  /** Why, shown with the refusal. */
  reason: z.string().max(200).optional(),
  /** The environments it freezes; all when absent. */
  environments: z.array(z.string()).min(1).optional(),
};

/**
 * A deploy freeze in the team's time zone: a one-off range (`from`/`until` dates or date-times;
 * an `until` date alone is the end of that day), or a weekly window (`weekly: {from: "fri 15:00",
 * until: "mon 08:00"}`), or a window on given days (`days: [fri], from: "15:00", until: "24:00"`).
 */
const FreezeKinds = [
  z
    .strictObject({ ...FreezeCommon, from: LocalTimeText, until: LocalTimeText })
    .superRefine((f, ctx) => {
      // An `until` date alone is the end of that day, so "from: 2026-12-24, until: 2026-12-24" is a day.
      const end = f.until.dateOnly ? `${f.until.date} 24:00` : `${f.until.date} ${hhmm(f.until.minute)}`;
      const start = `${f.from.date} ${hhmm(f.from.minute)}`;
      if (end <= start)
        ctx.addIssue({
          code: 'custom',
          path: ['until'],
          message: `ends (${end}) before it starts (${start})`,
        });
    })
    .transform((f) => ({ kind: 'once' as const, ...f })),
  z
    .strictObject({ ...FreezeCommon, weekly: z.strictObject({ from: WeekPointText, until: WeekPointText }) })
    .refine(
      (f) => f.weekly.from.day !== f.weekly.until.day || f.weekly.from.minute !== f.weekly.until.minute,
      { path: ['weekly', 'until'], message: 'is the same moment as from: the window would be empty' },
    )
    .transform((f) => ({ kind: 'weekly' as const, ...f })),
  z
    .strictObject({
      ...FreezeCommon,
      days: z
        .array(
          z
            .string()
            .transform((d) => d.toLowerCase())
            .refine((d) => DAY_ALIASES[d] !== undefined, 'must be a day like fri or friday'),
        )
        .min(1),
      from: z.string().refine((t) => minutesOf(t) !== undefined, 'must be a time like 15:00'),
      until: z.string().refine((t) => minutesOf(t) !== undefined, 'must be a time like 18:00 or 24:00'),
    })
    .refine((f) => minutesOf(f.from) !== minutesOf(f.until), {
      path: ['until'],
      message:
        'is the same time as from: the window would be empty (an until before from runs past midnight)',
    })
    .transform((f) => ({
      kind: 'days' as const,
      name: f.name,
      reason: f.reason,
      environments: f.environments,
      days: f.days.map((d) => DAY_ALIASES[d] as number),
      from: minutesOf(f.from) as number,
      until: minutesOf(f.until) as number,
    })),
] as const;

type FreezeOf = z.output<(typeof FreezeKinds)[number]>;

/** Picked by shape (`weekly`, `days`, else a one-off range), so an error names the key that is wrong. */
export const Freeze = z.unknown().transform((v, ctx): FreezeOf => {
  const o = typeof v === 'object' && v !== null ? v : {};
  const schema = 'weekly' in o ? FreezeKinds[1] : 'days' in o ? FreezeKinds[2] : FreezeKinds[0];
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message });
  return z.NEVER;
});
export type Freeze = z.infer<typeof Freeze>;

export const hhmm = (minute: number) =>
  `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;

export const dayName = (d: number) => DAYS[d] ?? '?';
