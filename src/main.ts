#!/usr/bin/env node
import { startFlightdeck } from './app.js';
import { edgeConfigCommand } from './cli/edge-config.js';
import { ConfigError, loadConfig } from './config/load-config.js';
import { Duration } from './config/schema.js';
import { createLogger } from './observability/logger.js';

const logger = createLogger();

async function main(): Promise<void> {
  if (process.argv[2] === 'edge-config') {
    const code = edgeConfigCommand(
      process.argv.slice(3),
      process.env,
      (s) => process.stdout.write(s),
      (s) => process.stderr.write(s),
    );
    process.exitCode = code;
    return;
  }
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // Plain text on stderr: a person reads this, not a log pipeline.
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const timeoutMs = shutdownTimeout(process.env.FLIGHTDECK_SHUTDOWN_TIMEOUT);
  const app = await startFlightdeck(loaded, logger);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      // A second Ctrl-C means "now".
      if (signal === 'SIGINT') process.exit(130);
      return;
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, 'Shutting down');
    // Closing itself must not hang either (e.g. Redis gone): exit before the orchestrator's SIGKILL.
    setTimeout(() => {
      logger.error('Shutdown did not finish in time; exiting');
      process.exit(1);
    }, timeoutMs + 5_000).unref();
    await app.stop({ timeoutMs });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** FLIGHTDECK_SHUTDOWN_TIMEOUT ("25s" by default): how long active jobs may run on after SIGTERM. */
function shutdownTimeout(value: string | undefined): number {
  const parsed = Duration.safeParse(value ?? '25s');
  if (!parsed.success || parsed.data < 0 || parsed.data > 3_600_000) {
    throw new ConfigError('environment', [
      `FLIGHTDECK_SHUTDOWN_TIMEOUT: must be a duration like 25s or 2m (at most 1h), got "${value}"`,
    ]);
  }
  return parsed.data;
}

main().catch((err: Error) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  logger.fatal({ err: err.message, stack: err.stack }, 'flightdeck failed to start');
  process.exit(1);
});
