/** Reason codes of dead letters: why an inbound event was not answered. */
export const DeadLetterReason = {
  /** The record value is not valid UTF-8 JSON. */
  InvalidJson: 'invalid_json',
  /** The JSON does not match the event schema (a missing or malformed field). */
  SchemaInvalid: 'schema_invalid',
  /** The envelope's major version is not one this service reads. */
  UnsupportedVersion: 'unsupported_version',
  /** The event name is not `conversation.message_received`. */
  UnsupportedEvent: 'unsupported_event',
  /** The record, the text or the meta object is larger than the configured limit. */
  LimitExceeded: 'limit_exceeded',
  /** No assistant configuration exists for the tenant. */
  UnknownTenant: 'unknown_tenant',
  /** The tenant exists but has no assistant with that id. */
  UnknownAssistant: 'unknown_assistant',
  /** Processing failed with an unexpected error on every attempt. */
  ProcessingFailed: 'processing_failed',
} as const;

export type DeadLetterReason = (typeof DeadLetterReason)[keyof typeof DeadLetterReason];

/** Position and content of the record that could not be processed, kept byte for byte. */
export interface OriginalRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
}

/** An inbound record routed to the dead-letter topic, with the reason and its origin. */
export interface DeadLetter {
  reason: DeadLetterReason;
  /** Human-readable detail, such as the invalid field paths; never the message text. */
  detail: string;
  original: OriginalRecord;
  /** Known when the envelope could be read that far. */
  tenantId?: string;
  correlationId?: string;
  conversationId?: string;
  messageId?: string;
}
