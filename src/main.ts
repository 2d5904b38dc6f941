#!/usr/bin/env node
import { startFlightdeck } from './app.js';
import { ConfigError, loadConfig } from './config/load-config.js';
import { createLogger } from './observability/logger.js';

const logger = createLogger();

async function main(): Promise<void> {
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
  const app = await startFlightdeck(loaded, logger);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'Shutting down');
    await app.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: Error) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
  logger.fatal({ err: err.message, stack: err.stack }, 'flightdeck failed to start');
  process.exit(1);
});
