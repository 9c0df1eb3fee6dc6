import type { LogFields, Logger } from '../domain/ports/logger.js';
import type { Metrics } from '../domain/ports/metrics.js';
import type { MessageReceivedEvent } from '../domain/events.js';

import { logIds, type ProcessOutcome } from './process-message.js';

/**
 * Logs the one line and counts the one metric of a message that got a reply (processed or
 * duplicate), the same way for every inbound adapter. The message and reply text go to debug only.
 */
export function recordAnsweredOutcome(
  logger: Logger,
  metrics: Metrics,
  event: MessageReceivedEvent,
  outcome: Exclude<ProcessOutcome, { kind: 'rejected' }>,
  durationMs: number,
  extraFields: LogFields = {},
): void {
  if (outcome.kind === 'duplicate') {
    metrics.recordMessage('duplicate', '', durationMs);
    logger.info('duplicate message dropped', {
      ...logIds(event),
      outcome: 'duplicate',
      reply_stored: outcome.reply !== undefined,
      processing_time_ms: durationMs,
      ...extraFields,
    });
    return;
  }

  metrics.recordMessage('processed', outcome.replayed ? 'replayed' : '', durationMs);
  logger.info('message processed', {
    ...logIds(event),
    outcome: 'processed',
    replayed: outcome.replayed,
    reply_message_id: outcome.reply.data.message_id,
    model_name: outcome.reply.data.model_name,
    tokens_used: outcome.reply.data.tokens_used,
    reply_source: outcome.reply.data.meta.reply_source,
    has_historical_context: outcome.reply.data.has_historical_context,
    processing_time_ms: durationMs,
    ...extraFields,
  });
  logger.debug('message text', { ...logIds(event), text: event.data.text, reply_text: outcome.reply.data.text });
}
