import { TZDate } from '@date-fns/tz';
import { addDays, format, formatDistanceStrict, parseISO } from 'date-fns';
import type { Freeze } from '../config/pipeline-schema.js';

/** One occurrence of a freeze, as instants. */
export interface FreezeWindow {
  name: string;
  reason?: string;
  start: number;
  end: number;
}

export interface FreezeStatus {
  /** The freeze in force now, with the end of the whole run of windows that follow on from it. */
  active?: FreezeWindow;
  /** The next freeze to start. */
  next?: FreezeWindow;
}

const isoDate = (d: Date) => format(d, 'yyyy-MM-dd');

/** A wall-clock time in the team's zone as an instant; minute 1440 is the next day's midnight. */
function localInstant(date: string, minute: number, timezone: string): number {
  const day = addDays(parseISO(date), Math.floor(minute / 1440));
  const m = minute % 1440;
  return new TZDate(
    day.getFullYear(),
    day.getMonth(),
    day.getDate(),
    Math.floor(m / 60),
    m % 60,
    timezone,
  ).getTime();
}

const weekday = (date: string) => parseISO(date).getDay();

/**
 * Every occurrence of the freezes that apply to an environment from a week before `now` to five
 * weeks after. Wall-clock times are taken in the team's zone, so "fri 15:00" stays 15:00 across DST.
 */
export function freezeWindows(
  freezes: Freeze[],
  environment: string,
  now: Date,
  timezone: string,
): FreezeWindow[] {
  const today = format(new TZDate(now.getTime(), timezone), 'yyyy-MM-dd');
  const dates = Array.from({ length: 43 }, (_, i) => isoDate(addDays(parseISO(today), i - 8)));
  const out: FreezeWindow[] = [];
  for (const f of freezes) {
    if (f.environments && !f.environments.includes(environment)) continue;
    const base = { name: f.name, ...(f.reason ? { reason: f.reason } : {}) };
    if (f.kind === 'once') {
      out.push({
        ...base,
        start: localInstant(f.from.date, f.from.minute, timezone),
        end: f.until.dateOnly
          ? localInstant(f.until.date, 1440, timezone)
          : localInstant(f.until.date, f.until.minute, timezone),
      });
      continue;
    }
    for (const date of dates) {
      const wd = weekday(date);
      if (f.kind === 'weekly') {
        if (wd !== f.weekly.from.day) continue;
        let offset = (f.weekly.until.day - f.weekly.from.day + 7) % 7;
        if (offset === 0 && f.weekly.until.minute <= f.weekly.from.minute) offset = 7;
        out.push({
          ...base,
          start: localInstant(date, f.weekly.from.minute, timezone),
          end: localInstant(date, offset * 1440 + f.weekly.until.minute, timezone),
        });
      } else {
        if (!f.days.includes(wd)) continue;
        out.push({
          ...base,
          start: localInstant(date, f.from, timezone),
          end: localInstant(date, f.until > f.from ? f.until : 1440 + f.until, timezone),
        });
      }
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The freeze in force for an environment now (and when deploys are open again), and the next one. */
export function freezeStatus(
  freezes: Freeze[],
  environment: string,
  now: Date,
  timezone: string,
): FreezeStatus {
  const t = now.getTime();
  const windows = freezeWindows(freezes, environment, now, timezone);
  const inForce = windows.filter((w) => w.start <= t && t < w.end);
  const first = inForce[0];
  let active: FreezeWindow | undefined;
  if (first) {
    // Deploys open again only when no window covers the moment: follow overlapping windows to their end.
    let end = Math.max(...inForce.map((w) => w.end));
    for (let grew = true; grew; ) {
      grew = false;
      for (const w of windows)
        if (w.start <= end && w.end > end) {
          end = w.end;
          grew = true;
        }
    }
    active = { ...first, end };
  }
  const next = windows.find((w) => w.start > t && (!active || w.start > active.end));
  return { ...(active ? { active } : {}), ...(next ? { next } : {}) };
}

/** "Fri 4 Dec 15:00" in the team's zone. */
export function wallClock(at: number, timezone: string): string {
  return format(new TZDate(at, timezone), 'EEE d MMM HH:mm');
}

/** The refusal of a deploy in a freeze. */
export function freezeRefusal(environment: string, w: FreezeWindow, now: number, timezone: string): string {
  return `${environment} is frozen (${w.name}${w.reason ? `: ${w.reason}` : ''}) until ${wallClock(w.end, timezone)} ${timezone}, in ${formatDistanceStrict(w.end, now)}.`;
}

/** One line for status, help and App Home: the freeze now, and the next one. */
export function freezeLine(environment: string, s: FreezeStatus, now: number, timezone: string): string {
  const next = s.next
    ? `next freeze of ${environment}: ${s.next.name}, ${wallClock(s.next.start, timezone)} – ${wallClock(s.next.end, timezone)} ${timezone} (in ${formatDistanceStrict(s.next.start, now)})`
    : '';
  if (s.active)
    return `❄️ ${freezeRefusal(environment, s.active, now, timezone)}${next ? ` Then ${next}.` : ''}`;
  return next ? `❄️ ${next}` : '';
}

/** Per environment, the freeze in force or the next one (none when no freeze is configured). */
export function freezeLines(
  config: { freezes: Freeze[]; timezone: string; environments: Record<string, unknown> },
  now: number,
): string[] {
  if (config.freezes.length === 0) return [];
  return Object.keys(config.environments)
    .map((env) =>
      freezeLine(
        env,
        freezeStatus(config.freezes, env, new Date(now), config.timezone),
        now,
        config.timezone,
      ),
    )
    .filter((l) => l.length > 0);
}
