import { randomUUID } from 'node:crypto';

import type { ProcessMessage, ProcessOutcome } from '../../application/process-message.js';
import { logIds } from '../../application/process-message.js';
import { recordAnsweredOutcome } from '../../application/record-outcome.js';
import { DeadLetterReason, type DeadLetter } from '../../domain/dead-letter.js';
import { decodeMessageReceived, type InboundLimits } from '../../domain/decode-message-received.js';
import { describeError, isServiceError } from '../../domain/errors.js';
import type { MessageReceivedEvent } from '../../domain/events.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { DeliveryContext, EventBus, InboundRecord } from '../../domain/ports/event-bus.js';
import type { Logger } from '../../domain/ports/logger.js';
import type { Metrics } from '../../domain/ports/metrics.js';

export interface RetryPolicy {
  /** First wait after a failed attempt, in milliseconds; it doubles up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Attempts for a failure that is not a retryable ServiceError before the record is dead-lettered. */
  maxUnexpectedAttempts: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialDelayMs: 200,
  maxDelayMs: 10_000,
  maxUnexpectedAttempts: 3,
};

export interface MessageReceivedHandlerDependencies {
  processMessage: ProcessMessage;
  bus: EventBus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  limits: InboundLimits;
  retry?: RetryPolicy;
}

/**
 * Turns inbound `conversation.message_received` records into replies or dead letters, for any
 * EventBus. A record is finished (and its offset may be committed) only once its reply or its
 * dead letter was acknowledged.
 *
 * Retries: a retryable ServiceError (a store or the bus is down, another worker has claimed the
 * message) is retried with backoff until it succeeds or the consumer stops, because the input
 * is fine. Any other error (a bug, a corrupt stored record) is retried `maxUnexpectedAttempts`
 * times, then dead-lettered with reason `processing_failed`, so one poison record cannot stop
 * its partition.
 */
export class MessageReceivedHandler {
  private readonly retry: RetryPolicy;

  constructor(private readonly deps: MessageReceivedHandlerDependencies) {
    this.retry = deps.retry ?? DEFAULT_RETRY_POLICY;
  }

  readonly handle = async (record: InboundRecord, context: DeliveryContext): Promise<void> => {
    const startedAt = this.deps.clock.now().getTime();
    const decoded = decodeMessageReceived(record.value ?? new Uint8Array(), this.deps.limits, randomUUID);

    if (!decoded.ok) {
      const { ok: _ok, reason, detail, issues: _issues, ...ids } = decoded;
      await this.deadLetter(record, { reason, detail, ...ids }, startedAt);
      return;
    }

    const event = decoded.event;
    if (decoded.correlationIdGenerated) {
      this.deps.logger.info('inbound event had no correlation_id; generated one', logIds(event));
    }

    const outcome = await this.processWithRetries(record, event, context);
    if (outcome === undefined) {
      return;
    }
    if (outcome.kind === 'rejected') {
      await this.deadLetter(
        record,
        { reason: outcome.reason, detail: outcome.detail, ...deadLetterIds(event) },
        startedAt,
      );
      return;
    }
    recordAnsweredOutcome(
      this.deps.logger,
      this.deps.metrics,
      event,
      outcome,
      this.deps.clock.now().getTime() - startedAt,
    );
  };

  /** Returns the outcome, or undefined when the record was dead-lettered after failures. */
  private async processWithRetries(
    record: InboundRecord,
    event: MessageReceivedEvent,
    context: DeliveryContext,
  ): Promise<ProcessOutcome | undefined> {
    let delayMs = this.retry.initialDelayMs;
    let unexpectedFailures = 0;
    // One token for every attempt at this delivery: a claim whose reply was lost in a Redis
    // outage is then this handler's own, and the next attempt takes it up at once.
    const claimToken = randomUUID();

    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.deps.processMessage.execute(event, claimToken);
      } catch (error) {
        if (!isServiceError(error) || !error.retryable) {
          unexpectedFailures += 1;
          if (unexpectedFailures >= this.retry.maxUnexpectedAttempts) {
            this.deps.logger.error('processing failed on every attempt; dead-lettering', {
              ...logIds(event),
              attempts: attempt,
              error: describeError(error),
            });
            await this.deadLetter(
              record,
              { reason: DeadLetterReason.ProcessingFailed, detail: describeError(error), ...deadLetterIds(event) },
              this.deps.clock.now().getTime(),
            );
            return undefined;
          }
        }
        if (context.signal.aborted) {
          throw error;
        }

        this.deps.metrics.recordRetry('process_message');
        this.deps.logger.warn('processing failed; will retry', {
          ...logIds(event),
          attempt,
          retry_in_ms: delayMs,
          error: describeError(error),
          error_code: isServiceError(error) ? error.code : undefined,
        });
        await sleep(delayMs, context.signal);
        await context.heartbeat();
        if (context.signal.aborted) {
          throw error;
        }
        delayMs = Math.min(delayMs * 2, this.retry.maxDelayMs);
      }
    }
  }

  private async deadLetter(
    record: InboundRecord,
    letter: Omit<DeadLetter, 'original'>,
    startedAt: number,
  ): Promise<void> {
    await this.deps.bus.publishDeadLetter({
      ...letter,
      original: {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        key: record.key,
        value: record.value,
        headers: record.headers,
      },
    });

    const durationMs = this.deps.clock.now().getTime() - startedAt;
    this.deps.metrics.recordMessage('dead_lettered', letter.reason, durationMs);
    this.deps.logger.warn('inbound event dead-lettered', {
      tenant_id: letter.tenantId,
      correlation_id: letter.correlationId,
      conversation_id: letter.conversationId,
      message_id: letter.messageId,
      outcome: 'dead_lettered',
      reason: letter.reason,
      detail: letter.detail,
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      processing_time_ms: durationMs,
    });
  }
}

function deadLetterIds(event: MessageReceivedEvent): Pick<DeadLetter, 'tenantId' | 'correlationId' | 'conversationId' | 'messageId'> {
  return {
    tenantId: event.tenant_id,
    correlationId: event.correlation_id,
    conversationId: event.data.conversation_id,
    messageId: event.data.message_id,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
