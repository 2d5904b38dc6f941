import type { FlightdeckConfig } from '../config/schema.js';

/** Every worker takes over a crashed replica's jobs after `jobs.lockDuration`. */
export function lockOptions(config: FlightdeckConfig) {
  const ms = config.jobs.lockDuration;
  return { lockDuration: ms, stalledInterval: ms, maxStalledCount: 10 };
}
