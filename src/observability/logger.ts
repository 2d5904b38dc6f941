import { pino } from 'pino';

export type Logger = pino.Logger;

/** JSON logs to stdout; LOG_LEVEL picks the level (default info). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { app: 'flightdeck' }, timestamp: pino.stdTimeFunctions.isoTime });
}
