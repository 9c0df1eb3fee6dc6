import kafkajs from 'kafkajs';
import type { LogEntry, logCreator, logLevel as LibraryLogLevel } from 'kafkajs';

import type { LogFields, Logger } from '../../../domain/ports/logger.js';

const { logLevel } = kafkajs;

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

/** kafkajs' numeric level for each of our level names. */
export function toKafkaLogLevel(level: KafkaLogLevel): LibraryLogLevel {
  switch (level) {
    case 'error':
      return logLevel.ERROR;
    case 'warn':
      return logLevel.WARN;
    case 'info':
      return logLevel.INFO;
    case 'debug':
      return logLevel.DEBUG;
  }
}

/**
 * Routes kafkajs' own log lines into `logger`, at the same level, with kafkajs' fields renamed to
 * snake_case and its namespace (Consumer, Runner, Connection, …) as `kafkajs_namespace`. kafkajs
 * drops lines below the client's `logLevel` before they get here. Lines are dropped while
 * `isMuted()` returns true.
 */
export function createKafkaLogCreator(logger: Logger, isMuted: () => boolean = () => false): logCreator {
  return () => (entry: LogEntry) => {
    if (isMuted()) {
      return;
    }
    const { message, timestamp: _timestamp, ...extra } = entry.log;
    const fields: LogFields = { kafkajs_namespace: entry.namespace };
    for (const [name, value] of Object.entries(extra)) {
      fields[snakeCase(name)] = value instanceof Error ? value.message : value;
    }

    switch (entry.level) {
      case logLevel.ERROR:
        logger.error(message, fields);
        return;
      case logLevel.WARN:
        logger.warn(message, fields);
        return;
      case logLevel.INFO:
        logger.info(message, fields);
        return;
      default:
        logger.debug(message, fields);
    }
  };
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}
