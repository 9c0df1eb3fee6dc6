import kafkajs from 'kafkajs';
import type { Admin, Consumer, Message, Producer } from 'kafkajs';

import type { DeadLetter } from '../../../domain/dead-letter.js';
import { ErrorCode, ServiceError, describeError } from '../../../domain/errors.js';
import type { MessageGeneratedEvent } from '../../../domain/events.js';
import type { ComponentHealth, EventBus, InboundHandler } from '../../../domain/ports/event-bus.js';
import type { Logger } from '../../../domain/ports/logger.js';
import { KafkaRecordConsumer } from '../../inbound/kafka/kafka-record-consumer.js';

import { FETCH_MAX_WAIT_MS, clientConfig, type KafkaEventBusSettings } from './kafka-client-config.js';
import { createKafkaLogCreator, toKafkaLogLevel, type KafkaLogLevel } from './kafka-log.js';
import { deadLetterRecord, generatedRecord, withoutOriginalValue } from './kafka-records.js';
import { KafkaStartup } from './kafka-startup.js';
import { settleWithin } from './timeouts.js';

export type { KafkaEventBusSettings } from './kafka-client-config.js';

const { Kafka, Partitioners } = kafkajs;

/** Tuning that the service leaves at its defaults; tests shorten the delays. */
export interface KafkaEventBusOptions {
  /** Time stop() waits for records in hand before it leaves them uncommitted, in milliseconds. */
  stopTimeoutMs?: number;
  /** Wait before a record whose handler rejected is delivered again, in milliseconds; doubles per failure. */
  redeliveryDelayMs?: number;
  /** Upper bound of that wait, in milliseconds. */
  maxRedeliveryDelayMs?: number;
  /** Lowest level of kafkajs' own log lines that reach the logger. */
  libraryLogLevel?: KafkaLogLevel;
  /**
   * Called each time an inbound record is scheduled for redelivery, so that a record that keeps
   * failing shows in metrics and not only in logs.
   */
  onRedelivery?: () => void;
}

const DEFAULT_OPTIONS: Required<KafkaEventBusOptions> = {
  // Below the service's default 30 s shutdown deadline, which also covers HTTP and Redis.
  stopTimeoutMs: 20_000,
  redeliveryDelayMs: 500,
  maxRedeliveryDelayMs: 30_000,
  libraryLogLevel: 'warn',
  onRedelivery: () => {},
};

/**
 * EventBus on Kafka through kafkajs 2.2.4: an idempotent producer for replies and dead letters,
 * and a consumer group on the received topic that commits a record's offset only after its
 * handler resolved.
 *
 * Delivery: records with the same key, which is one conversation, are handled one at a time in
 * offset order. Records without a key share one key per partition. Records with different keys
 * are handled at the same time, in every partition. A record whose handler rejects is handled
 * again after a capped exponential backoff, before any later record of its key. Each partition
 * commits the lowest offset below which every record is finished (see PartitionTracker), and is
 * paused while `maxInFlightPerPartition` of its records are unfinished.
 *
 * KafkaStartup connects the clients and prepares the topics, KafkaRecordConsumer runs the
 * consumer side, and this class publishes, reports health and stops them in order.
 *
 * Lifecycle: `connect()` first (fails within `startupTimeoutMs`), then `consume()`, then `stop()`.
 */
export class KafkaEventBus implements EventBus {
  private readonly options: Required<KafkaEventBusOptions>;
  private readonly heartbeatIntervalMs: number;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly consumer: Consumer;
  private readonly startup: KafkaStartup;
  private readonly recordConsumer: KafkaRecordConsumer;

  private connection: Promise<void> | undefined;
  private consuming = false;
  private stopping: Promise<void> | undefined;
  private producerClosed = false;
  /** Set once connect() failed or stop() finished, when kafkajs' remaining retries are only noise. */
  private libraryLogsMuted = false;
  private readonly pendingSends = new Set<Promise<unknown>>();
  private readonly state = {
    producerConnected: false,
  };

  constructor(
    private readonly settings: KafkaEventBusSettings,
    private readonly logger: Logger,
    options: KafkaEventBusOptions = {},
  ) {
    this.options = {
      stopTimeoutMs: options.stopTimeoutMs ?? DEFAULT_OPTIONS.stopTimeoutMs,
      redeliveryDelayMs: options.redeliveryDelayMs ?? DEFAULT_OPTIONS.redeliveryDelayMs,
      maxRedeliveryDelayMs: options.maxRedeliveryDelayMs ?? DEFAULT_OPTIONS.maxRedeliveryDelayMs,
      libraryLogLevel: options.libraryLogLevel ?? DEFAULT_OPTIONS.libraryLogLevel,
      onRedelivery: options.onRedelivery ?? DEFAULT_OPTIONS.onRedelivery,
    };
    // kafkajs recommends about a third of the session timeout; its own default is 3 s. It
    // heartbeats between fetches, which go on while handlers run.
    this.heartbeatIntervalMs = Math.max(1, Math.min(3000, Math.floor(settings.sessionTimeoutMs / 3)));

    const kafka = new Kafka({
      ...clientConfig(settings),
      logLevel: toKafkaLogLevel(this.options.libraryLogLevel),
      logCreator: createKafkaLogCreator(logger, () => this.libraryLogsMuted),
    });
    // kafkajs warns at creation that an idempotent producer with limited retries may lose
    // exactly-once guarantees. Delivery here is at least once anyway, and limited retries let a
    // publish fail with PUBLISH_FAILED instead of hanging while the broker is away.
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    this.admin = kafka.admin();
    this.consumer = kafka.consumer({
      groupId: settings.consumerGroup,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      allowAutoTopicCreation: false,
    });
    this.startup = new KafkaStartup(settings, this.producer, this.admin, this.consumer, logger);
    this.recordConsumer = new KafkaRecordConsumer(
      this.consumer,
      {
        topic: settings.topics.received,
        groupId: settings.consumerGroup,
        maxInFlightPerPartition: settings.maxInFlightPerPartition,
        redeliveryDelayMs: this.options.redeliveryDelayMs,
        maxRedeliveryDelayMs: this.options.maxRedeliveryDelayMs,
        stopTimeoutMs: this.options.stopTimeoutMs,
        onRedelivery: this.options.onRedelivery,
      },
      logger,
    );
    this.observeProducer();
  }

  /**
   * Connects the producer, the admin client and the consumer, and creates the topics when
   * `createTopics` is set. Rejects within `startupTimeoutMs` with a message that names the
   * brokers, after disconnecting what it opened. Calling it again returns the same promise.
   */
  connect(): Promise<void> {
    if (this.stopping !== undefined) {
      return Promise.reject(new Error('the Kafka event bus is stopped; create a new one to connect again'));
    }
    this.connection ??= this.connectWithinStartupTimeout();
    return this.connection;
  }

  async publishGenerated(event: MessageGeneratedEvent): Promise<void> {
    await this.send(this.settings.topics.generated, generatedRecord(event));
  }

  /**
   * Publishes a dead letter with the original bytes. When the dead-letter topic rejects it as too
   * large, publishes it again without the original value and headers: retrying the same record
   * could never succeed and would hold up its partition for good.
   */
  async publishDeadLetter(letter: DeadLetter): Promise<void> {
    const topic = this.settings.topics.deadLetter;
    try {
      await this.send(topic, deadLetterRecord(letter, new Date()));
    } catch (error) {
      if (!isMessageTooLarge(error)) {
        throw error;
      }
      this.logger.warn('dead letter too large for its topic; publishing it without the original value', {
        topic,
        source_topic: letter.original.topic,
        source_partition: letter.original.partition,
        source_offset: letter.original.offset,
        value_bytes: letter.original.value?.byteLength ?? 0,
        reason: letter.reason,
        tenant_id: letter.tenantId,
        correlation_id: letter.correlationId,
      });
      await this.send(topic, withoutOriginalValue(letter, new Date()));
    }
  }

  /**
   * Joins the consumer group and starts delivering. Resolves once the consumer joined the group,
   * or once it crashed trying (checkHealth then reports the crash, and kafkajs restarts the
   * consumer when the error is retriable).
   */
  async consume(handler: InboundHandler): Promise<void> {
    if (this.stopping !== undefined) {
      throw new Error('the Kafka event bus is stopped; create a new one to consume again');
    }
    if (this.connection === undefined) {
      throw new Error('KafkaEventBus.consume() was called before connect()');
    }
    await this.connection;
    if (this.stopping !== undefined) {
      throw new Error('the Kafka event bus was stopped while consume() waited for connect()');
    }
    if (this.consuming) {
      throw new Error('KafkaEventBus.consume() was already called; one bus delivers to one handler');
    }
    this.consuming = true;
    await this.recordConsumer.start(handler);
  }

  /**
   * Stops fetching, lets the running handlers finish for up to `stopTimeoutMs` (then leaves their
   * records uncommitted), commits what finished, waits for pending publishes and disconnects
   * every client. Fetched records whose handler has not started stay uncommitted. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  async checkHealth(): Promise<ComponentHealth> {
    if (this.stopping !== undefined) {
      return { ok: false, detail: 'stopped' };
    }

    const problems: string[] = [];
    if (!this.state.producerConnected) {
      problems.push('producer not connected');
    }
    if (!this.recordConsumer.connected) {
      problems.push('consumer not connected');
    } else if (!this.consuming) {
      problems.push('consumer connected but not consuming yet');
    }
    if (this.recordConsumer.crash !== undefined) {
      problems.push(`consumer crashed: ${this.recordConsumer.crash}`);
    }

    const brokers = this.settings.brokers.join(',');
    if (problems.length > 0) {
      return { ok: false, detail: `${problems.join('; ')} (brokers ${brokers})` };
    }
    return {
      ok: true,
      detail: `producer and consumer connected to ${brokers}; consuming ${this.settings.topics.received} in group ${this.settings.consumerGroup}`,
    };
  }

  // --- start-up ---

  private async connectWithinStartupTimeout(): Promise<void> {
    try {
      await this.startup.connectWithinStartupTimeout();
    } catch (error) {
      this.libraryLogsMuted = true;
      throw error;
    }
  }

  // --- publishing ---

  private async send(topic: string, message: Message): Promise<void> {
    if (this.producerClosed) {
      throw new ServiceError(ErrorCode.PublishFailed, `cannot publish to Kafka topic ${topic}: the event bus is stopped`, {
        retryable: true,
      });
    }

    const sending = this.producer.send({ topic, acks: -1, messages: [message] });
    this.pendingSends.add(sending);
    try {
      await sending;
    } catch (error) {
      throw new ServiceError(ErrorCode.PublishFailed, `publishing to Kafka topic ${topic} failed: ${describeError(error)}`, {
        retryable: true,
        cause: error,
      });
    } finally {
      this.pendingSends.delete(sending);
    }
  }

  // --- shutdown ---

  private async shutdown(): Promise<void> {
    this.recordConsumer.beginStop();
    if (this.connection === undefined) {
      this.producerClosed = true;
      return;
    }

    this.logger.info('stopping the Kafka event bus', { records_in_flight: this.recordConsumer.recordsInFlight() });
    await this.connection.catch(() => undefined);
    if (this.consuming) {
      await this.recordConsumer.drain();
    }

    await settleWithin([...this.pendingSends], this.options.stopTimeoutMs, 'publishes still pending at shutdown', this.logger);
    this.producerClosed = true;

    await this.disconnect('consumer', () => this.consumer.disconnect());
    await this.disconnect('producer', () => this.producer.disconnect());
    await this.disconnect('admin client', () => this.admin.disconnect());
    this.libraryLogsMuted = true;
    this.logger.info('Kafka event bus stopped');
  }

  private async disconnect(client: string, close: () => Promise<void>): Promise<void> {
    try {
      await close();
    } catch (error) {
      this.logger.warn('failed to disconnect a Kafka client', { client, error: describeError(error) });
    }
  }

  // --- health ---

  private observeProducer(): void {
    const { producer } = this;

    producer.on(producer.events.CONNECT, () => {
      this.state.producerConnected = true;
    });
    producer.on(producer.events.DISCONNECT, () => {
      this.state.producerConnected = false;
    });
  }
}

/** Tells whether the broker rejected a record as larger than the topic's max.message.bytes. */
function isMessageTooLarge(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    if ((current as Error & { type?: unknown }).type === 'MESSAGE_TOO_LARGE') {
      return true;
    }
    current = current.cause;
  }
  return false;
}
