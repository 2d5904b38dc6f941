import { TZDate } from '@date-fns/tz';
import { addDays, differenceInCalendarDays, format, parseISO } from 'date-fns';

export const PHASE_DAYS = 7;
export const ROLLOUT_DAYS = 28;

export interface RolloutDay {
  /** 1…28 during the rollout; ≤ 0 before it, > 28 after. */
  day: number;
  /** 1…4 during the rollout; 0 before, 5 after. */
  phase: number;
  today: string;
}

/** Today's calendar date in the team's time zone. */
export function todayIn(timezone: string, now: Date): string {
  return format(new TZDate(now.getTime(), timezone), 'yyyy-MM-dd');
}

/**
 * Day N of 28 and the phase, by calendar dates in the team's time zone: month ends, leap days and
 * DST changes do not shift a day, because only dates are compared, never durations.
 */
export function rolloutDay(startDate: string, timezone: string, now: Date): RolloutDay {
  const today = todayIn(timezone, now);
  const day = differenceInCalendarDays(parseISO(today), parseISO(startDate)) + 1;
  const phase = day < 1 ? 0 : day > ROLLOUT_DAYS ? 5 : Math.ceil(day / PHASE_DAYS);
  return { day, phase, today };
}

/** First and last calendar date of a phase (1…4). */
export function phaseDates(startDate: string, phase: number): { first: string; last: string } {
  const start = parseISO(startDate);
  return {
    first: format(addDays(start, (phase - 1) * PHASE_DAYS), 'yyyy-MM-dd'),
    last: format(addDays(start, phase * PHASE_DAYS - 1), 'yyyy-MM-dd'),
  };
}

export const prettyDate = (iso: string) => format(parseISO(iso), 'EEE d MMM yyyy');
