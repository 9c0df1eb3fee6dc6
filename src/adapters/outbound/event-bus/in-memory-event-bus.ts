import type { DeadLetter } from '../../../domain/dead-letter.js';
import type { MessageGeneratedEvent } from '../../../domain/events.js';
import type {
  ComponentHealth,
  EventBus,
  InboundHandler,
  InboundRecord,
} from '../../../domain/ports/event-bus.js';

export interface InMemoryEventBusOptions {
  /** Topic name reported on delivered records. */
  receivedTopic: string;
  /** Delay before a record whose handler rejected is delivered again, in milliseconds. */
  redeliveryDelayMs: number;
}

/**
 * EventBus inside one process, for tests and demos without a broker. Records with the same key
 * are delivered one at a time in publish order. A record whose handler rejects is delivered again
 * after a delay, before any later record of the same key. Nothing survives a restart.
 */
export class InMemoryEventBus implements EventBus {
  readonly generated: MessageGeneratedEvent[] = [];
  readonly deadLetters: DeadLetter[] = [];

  private handler: InboundHandler | undefined;
  private readonly queues = new Map<string, InboundRecord[]>();
  private readonly running = new Map<string, Promise<void>>();
  private nextOffset = 0;
  private stopped = false;
  private readonly stopping = new AbortController();

  constructor(private readonly options: InMemoryEventBusOptions) {}

  async publishGenerated(event: MessageGeneratedEvent): Promise<void> {
    this.generated.push(structuredClone(event));
  }

  async publishDeadLetter(letter: DeadLetter): Promise<void> {
    this.deadLetters.push(structuredClone(letter));
  }

  async consume(handler: InboundHandler): Promise<void> {
    this.handler = handler;
    for (const key of this.queues.keys()) {
      this.drain(key);
    }
  }

  /** Queues an inbound record as a producer would; `key` orders records like a Kafka key. */
  deliver(value: string | Uint8Array, key: string | null = null, headers: Record<string, string> = {}): void {
    if (this.stopped) {
      throw new Error('the in-memory event bus is stopped');
    }
    const queueKey = key ?? '';
    const record: InboundRecord = {
      topic: this.options.receivedTopic,
      partition: 0,
      offset: String(this.nextOffset++),
      key: key === null ? null : new TextEncoder().encode(key),
      value: typeof value === 'string' ? new TextEncoder().encode(value) : value,
      headers,
    };
    const queue = this.queues.get(queueKey) ?? [];
    queue.push(record);
    this.queues.set(queueKey, queue);
    this.drain(queueKey);
  }

  /** Resolves once every delivered record has been handled. */
  async idle(): Promise<void> {
    while (this.running.size > 0) {
      await Promise.all(this.running.values());
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.idle();
  }

  async checkHealth(): Promise<ComponentHealth> {
    return { ok: !this.stopped, detail: this.stopped ? 'stopped' : 'in-memory event bus' };
  }

  private drain(queueKey: string): void {
    if (this.handler === undefined || this.running.has(queueKey)) {
      return;
    }
    const run = this.drainQueue(queueKey, this.handler).finally(() => {
      this.running.delete(queueKey);
    });
    this.running.set(queueKey, run);
  }

  private async drainQueue(queueKey: string, handler: InboundHandler): Promise<void> {
    const queue = this.queues.get(queueKey) ?? [];
    while (queue.length > 0) {
      const record = queue[0]!;
      try {
        await handler(record, { signal: this.stopping.signal, heartbeat: async () => {} });
        queue.shift();
      } catch {
        if (this.stopped) {
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, this.options.redeliveryDelayMs));
      }
    }
  }
}
