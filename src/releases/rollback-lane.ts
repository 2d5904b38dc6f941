import type { RollbackCommand } from '../commands/schema.js';
import type { FlightdeckConfig } from '../config/schema.js';
import type { RollbackJob } from './schema.js';

/** The `by` of a rollback flightdeck starts itself (an alert rule): not a Slack user to authorise. */
export const AUTOMATIC_ROLLBACK = 'flightdeck';

/** Who asked for a rollback, and where to answer them. */
export interface RollbackRequester {
  userId: string;
  /** The slash command's (or click's) request id: one rollback job per service per request. */
  requestId?: string;
  receivedAt: number;
  reply?: RollbackJob['reply'];
}

/**
 * The rollback jobs of a /rollback (or its confirm button), one per named service, or undefined
 * while the environment still asks for a confirmation (`requireApproval`): that /rollback first
 * posts a "Confirm rollback" button. The listener puts these jobs straight on the rollback queue,
 * where a worker already waits, so the fastest path back never queues behind other commands.
 */
export function rollbackJobs(
  cmd: Exclude<RollbackCommand, { action: 'help' }>,
  config: FlightdeckConfig,
  who: RollbackRequester,
): RollbackJob[] | undefined {
  const env = config.environments[cmd.environment];
  if (!env || (env.requireApproval && cmd.action !== 'confirm')) return undefined;
  const services = cmd.target === 'all' ? Object.keys(env.services) : [cmd.target];
  return services.map((service) => ({
    environment: cmd.environment,
    service,
    reason: `/rollback by <@${who.userId}>`,
    by: who.userId,
    trigger: 'command',
    requestedAt: who.receivedAt,
    ...(who.reply ? { reply: who.reply } : {}),
    ...(who.requestId ? { requestId: who.requestId } : {}),
  }));
}

/** A rollback job's id: the same request never rolls the same service back twice. */
export const rollbackJobId = (job: RollbackJob): string | undefined =>
  job.requestId ? `${job.requestId}-${job.service}` : undefined;
