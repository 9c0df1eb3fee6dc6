import winston from 'winston';

import type { LogFields, Logger } from '../../../domain/ports/logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Field names whose values are never written, at any level. */
const SECRET_FIELDS = new Set(['api_key', 'apiKey', 'password', 'sasl_password', 'authorization']);

/** Creates a JSON-lines logger on stdout; every line carries `service` and a timestamp. */
export function createWinstonLogger(level: LogLevel, service: string): Logger {
  const base = winston.createLogger({
    level,
    defaultMeta: { service },
    format: winston.format.combine(
      winston.format.timestamp(),
      redactSecrets(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console()],
  });
  return new WinstonLogger(base);
}

class WinstonLogger implements Logger {
  constructor(private readonly target: winston.Logger) {}

  debug(message: string, fields?: LogFields): void {
    this.target.debug(message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.target.info(message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.target.warn(message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.target.error(message, fields);
  }

  child(fields: LogFields): Logger {
    return new WinstonLogger(this.target.child(fields));
  }
}

const redactSecrets = winston.format((info) => {
  for (const field of Object.keys(info)) {
    if (SECRET_FIELDS.has(field)) {
      info[field] = '[redacted]';
    }
  }
  return info;
});
