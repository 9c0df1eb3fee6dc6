import type { DeadLetter } from '../../../domain/dead-letter.js';
import type { MessageGeneratedEvent } from '../../../domain/events.js';
import type { ComponentHealth, EventBus } from '../../../domain/ports/event-bus.js';
import type { Logger } from '../../../domain/ports/logger.js';

/**
 * EventBus for `ENABLE_KAFKA=false`: publishes nothing, consumes nothing and opens no
 * connection. Dropped events are logged at debug level with their ids.
 */
export class NoopEventBus implements EventBus {
  constructor(private readonly logger: Logger) {}

  async publishGenerated(event: MessageGeneratedEvent): Promise<void> {
    this.logger.debug('Kafka is disabled; message_generated not published', {
      tenant_id: event.tenant_id,
      correlation_id: event.correlation_id,
      conversation_id: event.data.conversation_id,
      message_id: event.data.message_id,
    });
  }

  async publishDeadLetter(letter: DeadLetter): Promise<void> {
    this.logger.debug('Kafka is disabled; dead letter not published', { reason: letter.reason });
  }

  async consume(): Promise<void> {}

  async stop(): Promise<void> {}

  async checkHealth(): Promise<ComponentHealth> {
    return { ok: true, detail: 'Kafka disabled (ENABLE_KAFKA=false)' };
  }
}
