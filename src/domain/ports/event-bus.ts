import type { DeadLetter, OriginalRecord } from '../dead-letter.js';
import type { MessageGeneratedEvent } from '../events.js';

/** One record as it arrived from the transport, before any decoding; a dead letter keeps it whole. */
export type InboundRecord = OriginalRecord;

/** Delivery context that the transport passes to a handler with each record. */
export interface DeliveryContext {
  /** Aborted when the consumer is stopping: a handler that is waiting to retry gives up. */
  signal: AbortSignal;
  /** Tells the broker the consumer is alive during long work; a no-op where none is needed. */
  heartbeat(): Promise<void>;
}

/**
 * Handles one inbound record. Resolving means the record is finished (replied to or dead-lettered)
 * and its offset may be committed; rejecting means it must be delivered again.
 */
export type InboundHandler = (record: InboundRecord, context: DeliveryContext) => Promise<void>;

export interface ComponentHealth {
  ok: boolean;
  detail: string;
}

/**
 * Event transport: publishes replies and dead letters, and delivers inbound
 * `conversation.message_received` records.
 *
 * Promises: a publish resolves only once the transport has acknowledged the record. Records of
 * one conversation (one key) are published and delivered in order, one at a time. Records with
 * different keys are delivered concurrently, so a handler still running for one key does not
 * hold up the others. An inbound record is delivered again when its handler rejects (before any
 * later record of its key) or the process dies before it resolved.
 * Leaves out: decoding and validation (the inbound adapter's), deduplication (DedupStore's).
 * Errors: a ServiceError with code PUBLISH_FAILED (retryable) when a publish is not acknowledged.
 */
export interface EventBus {
  publishGenerated(event: MessageGeneratedEvent): Promise<void>;
  publishDeadLetter(letter: DeadLetter): Promise<void>;

  /** Starts delivering inbound records to `handler`; resolves once delivery has started. */
  consume(handler: InboundHandler): Promise<void>;

  /** Stops fetching, lets the handlers in hand finish, waits for pending publishes, disconnects. */
  stop(): Promise<void>;

  checkHealth(): Promise<ComponentHealth>;
}
