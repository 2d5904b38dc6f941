/**
 * The one base of flightdeck's own errors: a stable code for logs and metrics, a message a person
 * can act on, and whether trying again can help. A job that hits one that cannot throws BullMQ's
 * UnrecoverableError (see `unrecoverable`), so the queue does not retry it.
 */
export class FlightdeckError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** True for an error no retry can fix. */
export const isPermanent = (err: unknown): boolean => err instanceof FlightdeckError && !err.retryable;
