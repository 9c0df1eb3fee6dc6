/** Structured fields attached to a log line, in snake_case like the events. */
export type LogFields = Record<string, unknown>;

/**
 * Structured logger. Callers pass ids (tenant_id, correlation_id, conversation_id, message_id)
 * as fields, never inside the message, and never message text above debug level.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}
