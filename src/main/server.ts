import { describeError } from '../domain/errors.js';
import { createWinstonLogger } from '../adapters/outbound/logging/winston-logger.js';

import { startApp } from './app.js';
import { ConfigurationError, loadConfig } from './config.js';

/** Entry point: validates the environment, starts the service and stops it on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigurationError) {
      process.stderr.write(`ia-conversational: ${error.message}\nSee .env.example for every setting.\n`);
      process.exit(1);
    }
    throw error;
  }

  const logger = createWinstonLogger(config.logLevel, config.eventSource);
  let app;
  try {
    app = await startApp(config, logger);
  } catch (error) {
    logger.error('service failed to start', { error: describeError(error) });
    exitSoon(1);
    return;
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      return;
    }
    stopping = true;
    logger.info('shutting down', { signal });
    const deadline = setTimeout(() => {
      logger.error('shutdown timed out; exiting', { timeout_ms: config.shutdownTimeoutMs });
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();

    app.stop().then(
      () => {
        logger.info('service stopped');
        exitSoon(0);
      },
      (error: unknown) => {
        logger.error('shutdown failed', { error: describeError(error) });
        exitSoon(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * Exits once stdout has drained. Client libraries can leave timers behind after they were closed
 * (kafkajs retries, a Redis reconnect), and those must not keep a stopped service alive.
 */
function exitSoon(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.exit(code));
}

await main();
