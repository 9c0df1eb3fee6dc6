import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

import type { DeadLetter } from '../../../domain/dead-letter.js';
import type { MessageGeneratedEvent } from '../../../domain/events.js';
import type { InboundRecord } from '../../../domain/ports/event-bus.js';

/** Header names that the Kafka event bus writes on the records it publishes. */
export const KafkaHeader = {
  CorrelationId: 'correlation_id',
  TenantId: 'tenant_id',
  EventName: 'event_name',
  /** On a reply: the reply's own `data.message_id`. */
  MessageId: 'message_id',
  ContentType: 'content-type',
  DeadLetterReason: 'dlq_reason',
  DeadLetterDetail: 'dlq_detail',
  DeadLetterSourceTopic: 'dlq_source_topic',
  DeadLetterSourcePartition: 'dlq_source_partition',
  DeadLetterSourceOffset: 'dlq_source_offset',
  /** ISO-8601 time at which the record was dead-lettered. */
  DeadLetterFailedAt: 'dlq_failed_at',
  /** Set when the original value and headers were too large for the dead-letter topic. */
  DeadLetterValueOmitted: 'dlq_value_omitted',
} as const;

/** Largest `dlq_detail` header value, in UTF-8 bytes, so that a long validation report cannot bloat the record. */
export const MAX_DEAD_LETTER_DETAIL_BYTES = 1024;

/** Builds the `conversation.message_generated` record: keyed by conversation, so replies of one conversation stay in order. */
export function generatedRecord(event: MessageGeneratedEvent): Message {
  return {
    key: event.data.conversation_id,
    value: JSON.stringify(event),
    headers: {
      [KafkaHeader.CorrelationId]: event.correlation_id,
      [KafkaHeader.TenantId]: event.tenant_id,
      [KafkaHeader.EventName]: event.event_name,
      [KafkaHeader.MessageId]: event.data.message_id,
      [KafkaHeader.ContentType]: 'application/json',
    },
  };
}

/**
 * Builds the dead-letter record: the original key, value and headers byte for byte (a null value
 * stays null), plus `dlq_*` headers with the reason and the source position. `tenant_id` and
 * `correlation_id` are set when the envelope could be read that far, replacing original headers
 * of the same name.
 */
export function deadLetterRecord(letter: DeadLetter, failedAt: Date): Message {
  const { original } = letter;
  const headers: IHeaders = {
    ...original.headers,
    [KafkaHeader.DeadLetterReason]: letter.reason,
    [KafkaHeader.DeadLetterDetail]: truncateUtf8(letter.detail, MAX_DEAD_LETTER_DETAIL_BYTES),
    [KafkaHeader.DeadLetterSourceTopic]: original.topic,
    [KafkaHeader.DeadLetterSourcePartition]: String(original.partition),
    [KafkaHeader.DeadLetterSourceOffset]: original.offset,
    [KafkaHeader.DeadLetterFailedAt]: failedAt.toISOString(),
  };
  if (letter.tenantId !== undefined) {
    headers[KafkaHeader.TenantId] = letter.tenantId;
  }
  if (letter.correlationId !== undefined) {
    headers[KafkaHeader.CorrelationId] = letter.correlationId;
  }
  return { key: asBuffer(original.key), value: asBuffer(original.value), headers };
}

/**
 * Rebuilds a dead-letter record without the original value and headers, for a record the
 * dead-letter topic rejected as too large. The source topic, partition and offset stay, so the
 * original can still be read from the source topic while its retention lasts.
 */
export function withoutOriginalValue(letter: DeadLetter, failedAt: Date): Message {
  const full = deadLetterRecord({ ...letter, original: { ...letter.original, value: null, headers: {} } }, failedAt);
  const valueBytes = letter.original.value?.byteLength ?? 0;
  return {
    ...full,
    headers: {
      ...full.headers,
      [KafkaHeader.DeadLetterValueOmitted]: `the original value (${valueBytes} bytes) and headers were too large for the dead-letter topic; read them from the source topic at this partition and offset`,
    },
  };
}

/** Copies a consumed kafkajs message into the transport-neutral record that handlers get. */
export function toInboundRecord(topic: string, partition: number, message: KafkaMessage): InboundRecord {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key === null ? null : new Uint8Array(message.key),
    value: message.value === null ? null : new Uint8Array(message.value),
    headers: headerStrings(message.headers),
  };
}

/**
 * Decodes header values as UTF-8. Kafka allows a header name more than once, and kafkajs returns
 * those values as an array. The last one wins, as in the Java client's `lastHeader`.
 */
export function headerStrings(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) {
      decoded[name] = typeof last === 'string' ? last : last.toString('utf8');
    }
  }
  return decoded;
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes on a character boundary, ending with "…" when cut. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) {
    return text;
  }

  const ellipsis = '…';
  let end = maxBytes - Buffer.byteLength(ellipsis);
  // UTF-8 continuation bytes look like 0b10xxxxxx; cutting before one would split a character.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) {
    end -= 1;
  }
  return bytes.subarray(0, end).toString('utf8') + ellipsis;
}

function asBuffer(bytes: Uint8Array | null): Buffer | null {
  if (bytes === null) {
    return null;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
