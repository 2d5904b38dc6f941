import { pino } from 'pino';

export type Logger = pino.Logger;

/** JSON logs to stdout; LOG_LEVEL picks the level (default info). */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { app: 'flightdeck' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/**
 * A `.catch` handler for a best-effort step whose failure must not stop the caller (an audit line,
 * an answer to a user who may be gone): the failure is logged, never hidden.
 */
export const logFailure =
  (logger: Logger, what: string, extra: Record<string, unknown> = {}) =>
  (err: unknown): void => {
    logger.warn({ ...extra, err: err instanceof Error ? err.message : String(err) }, what);
  };
