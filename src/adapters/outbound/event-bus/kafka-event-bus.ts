import kafkajs from 'kafkajs';
import type {
  Admin,
  Consumer,
  EachMessagePayload,
  ITopicMetadata,
  KafkaConfig,
  Message,
  Producer,
  RetryOptions,
  SASLOptions,
} from 'kafkajs';

import type { DeadLetter } from '../../../domain/dead-letter.js';
import { ErrorCode, ServiceError, describeError } from '../../../domain/errors.js';
import type { MessageGeneratedEvent } from '../../../domain/events.js';
import type {
  ComponentHealth,
  EventBus,
  InboundHandler,
  InboundRecord,
} from '../../../domain/ports/event-bus.js';
import type { LogFields, Logger } from '../../../domain/ports/logger.js';

import { createKafkaLogCreator, toKafkaLogLevel, type KafkaLogLevel } from './kafka-log.js';
import { deadLetterRecord, generatedRecord, toInboundRecord } from './kafka-records.js';

const { Kafka, Partitioners } = kafkajs;

/** Connection, topic and consumer settings; the same shape as the service's `KafkaSettings`. */
export interface KafkaEventBusSettings {
  brokers: string[];
  clientId: string;
  consumerGroup: string;
  topics: { received: string; generated: string; deadLetter: string };
  /** Create missing topics at connect(); when false, connect() fails if one is missing. */
  createTopics: boolean;
  topicPartitions: number;
  topicReplicationFactor: number;
  /** Partitions whose records are handled at the same time; records of one partition never are. */
  partitionsConsumedConcurrently: number;
  connectionTimeoutMs: number;
  /** Time connect() may take, topic creation included, before it gives up. */
  startupTimeoutMs: number;
  sessionTimeoutMs: number;
  ssl: { enabled: boolean; rejectUnauthorized: boolean };
  sasl: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | undefined;
}

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
}

const DEFAULT_OPTIONS: Required<KafkaEventBusOptions> = {
  // Below the service's default 30 s shutdown deadline, which also covers HTTP and Redis.
  stopTimeoutMs: 20_000,
  redeliveryDelayMs: 500,
  maxRedeliveryDelayMs: 30_000,
  libraryLogLevel: 'warn',
};

/**
 * kafkajs 2.2.4's production retry defaults, written out because kafkajs switches to other
 * defaults (15 retries, 1 s cap) when NODE_ENV=test, which vitest sets.
 */
const CLIENT_RETRY: RetryOptions = {
  initialRetryTime: 300,
  maxRetryTime: 30_000,
  factor: 0.2,
  multiplier: 2,
  retries: 5,
};

/**
 * Maximum time the broker waits for new records before it returns an empty fetch response
 * (kafkajs' default is 5 s). kafkajs' consumer.disconnect() waits for the fetch in flight, so
 * this bounds part of stop().
 */
const FETCH_MAX_WAIT_MS = 500;

/** Pause between topic metadata checks while connect() waits for new topics to get leaders. */
const METADATA_POLL_MS = 200;

type HandlerOutcome = { kind: 'resolved' } | { kind: 'rejected'; error: unknown } | { kind: 'abandoned' };

interface RecordInHand {
  record: InboundRecord;
  /** Settles once the handler ended and the offset was committed (or left uncommitted). */
  done: Promise<void>;
}

/** Failures of the record a partition is stuck on, and the timer that resumes the partition. */
interface PartitionRedelivery {
  offset: string;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * EventBus on Kafka through kafkajs 2.2.4: an idempotent producer for replies and dead letters,
 * and a consumer group on the received topic that commits a record's offset only after its
 * handler resolved.
 *
 * Delivery: records of one partition are handled one at a time in offset order, and up to
 * `partitionsConsumedConcurrently` partitions at once. A record whose handler rejects is
 * delivered again after a capped exponential backoff, before any later record of its partition.
 * While a handler runs, the consumer heartbeats on a timer, because kafkajs heartbeats only
 * between records.
 *
 * Lifecycle: `connect()` first (fails within `startupTimeoutMs`), then `consume()`, then `stop()`.
 */
export class KafkaEventBus implements EventBus {
  private readonly options: Required<KafkaEventBusOptions>;
  private readonly heartbeatIntervalMs: number;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly consumer: Consumer;

  private connection: Promise<void> | undefined;
  private consuming = false;
  private stopping: Promise<void> | undefined;
  private producerClosed = false;
  /** Set once connect() failed or stop() finished, when kafkajs' remaining retries are only noise. */
  private libraryLogsMuted = false;
  private readonly stopController = new AbortController();
  private readonly recordsInHand = new Set<RecordInHand>();
  private readonly pendingSends = new Set<Promise<unknown>>();
  private readonly redeliveries = new Map<string, PartitionRedelivery>();
  /** Aborted when stop() stops waiting for the records in hand. */
  private readonly abandonController = new AbortController();
  private readonly state = {
    producerConnected: false,
    consumerConnected: false,
    consumerCrash: undefined as string | undefined,
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
    };
    // kafkajs recommends about a third of the session timeout; its own default is 3 s.
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
    this.observeClients();
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

  async publishDeadLetter(letter: DeadLetter): Promise<void> {
    await this.send(this.settings.topics.deadLetter, deadLetterRecord(letter, new Date()));
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

    const topic = this.settings.topics.received;
    await this.consumer.subscribe({ topic, fromBeginning: true });
    // NOTE: records of one partition are handled one at a time, so one slow conversation holds up
    // the other conversations of its partition. kafkajs 2.2.4 also fetches again only after every
    // batch of the last fetch was handled. Per-key concurrency would replace deliverRecord here:
    // queue records per key, return from eachMessage at once (pausing the partition while its
    // queues are full), and commit the lowest offset below which every record is finished.
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: this.settings.partitionsConsumedConcurrently,
      eachMessage: (payload) => this.deliverRecord(payload, handler),
    });
    this.logger.info('consuming Kafka topic', {
      topic,
      group_id: this.settings.consumerGroup,
      partitions_consumed_concurrently: this.settings.partitionsConsumedConcurrently,
    });
  }

  /**
   * Stops fetching, lets the records in hand finish for up to `stopTimeoutMs` (then leaves them
   * uncommitted), waits for pending publishes and disconnects every client. Idempotent.
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
    if (!this.state.consumerConnected) {
      problems.push('consumer not connected');
    } else if (!this.consuming) {
      problems.push('consumer connected but not consuming yet');
    }
    if (this.state.consumerCrash !== undefined) {
      problems.push(`consumer crashed: ${this.state.consumerCrash}`);
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
    const startedAt = Date.now();
    const deadline = startedAt + this.settings.startupTimeoutMs;
    const clients = [this.producer, this.admin, this.consumer];
    const attempts = clients.map((client) => client.connect());
    const progress = { phase: 'connect' as 'connect' | 'topics' };

    const work = (async () => {
      await Promise.all(attempts);
      progress.phase = 'topics';
      await this.prepareTopics(deadline);
    })();

    try {
      await withTimeout(work, this.settings.startupTimeoutMs);
    } catch (error) {
      work.catch(() => undefined);
      // kafkajs keeps retrying after the timeout; a connection it opens later is closed at once.
      attempts.forEach((attempt, index) => {
        attempt.then(() => clients[index]?.disconnect()).catch(() => undefined);
      });
      await Promise.allSettled(clients.map((client) => client.disconnect()));
      this.libraryLogsMuted = true;
      throw this.startupError(progress.phase, error);
    }

    this.logger.info('connected to Kafka', {
      brokers: this.settings.brokers.join(','),
      client_id: this.settings.clientId,
      duration_ms: Date.now() - startedAt,
    });
  }

  private async prepareTopics(deadline: number): Promise<void> {
    const { received, generated, deadLetter } = this.settings.topics;
    const names = [...new Set([received, generated, deadLetter])];
    const existing = new Set(await this.admin.listTopics());
    const missing = names.filter((name) => !existing.has(name));

    if (missing.length > 0 && !this.settings.createTopics) {
      throw new MissingTopicsError(missing);
    }
    if (missing.length > 0) {
      // Another instance may create the same topics at the same time; kafkajs then returns false.
      await this.admin.createTopics({
        topics: missing.map((topic) => ({
          topic,
          numPartitions: this.settings.topicPartitions,
          replicationFactor: this.settings.topicReplicationFactor,
        })),
        waitForLeaders: true,
      });
      this.logger.info('created Kafka topics', {
        topics: missing,
        partitions: this.settings.topicPartitions,
        replication_factor: this.settings.topicReplicationFactor,
      });
    }

    const metadata = await this.waitForLeaders(names, deadline);
    for (const topic of metadata) {
      if (!missing.includes(topic.name) && topic.partitions.length !== this.settings.topicPartitions) {
        this.logger.warn('existing Kafka topic has another partition count than configured; it is used as it is', {
          topic: topic.name,
          partitions: topic.partitions.length,
          configured_partitions: this.settings.topicPartitions,
        });
      }
    }
  }

  /** Polls topic metadata until every partition of every topic has a leader, or the deadline passes. */
  private async waitForLeaders(names: string[], deadline: number): Promise<ITopicMetadata[]> {
    let lastProblem = 'no metadata yet';
    while (Date.now() < deadline) {
      try {
        const { topics } = await this.admin.fetchTopicMetadata({ topics: names });
        const ready = names.every((name) => {
          const topic = topics.find((candidate) => candidate.name === name);
          return topic !== undefined && topic.partitions.length > 0 && topic.partitions.every((partition) => partition.leader >= 0);
        });
        if (ready) {
          return topics;
        }
        lastProblem = 'a partition has no leader yet';
      } catch (error) {
        lastProblem = describeError(error);
      }
      await delay(METADATA_POLL_MS);
    }
    throw new Error(`topic metadata incomplete: ${lastProblem}`);
  }

  private startupError(phase: 'connect' | 'topics', error: unknown): Error {
    const brokers = this.settings.brokers.join(',');
    const timeoutMs = this.settings.startupTimeoutMs;
    if (error instanceof MissingTopicsError) {
      return new Error(
        `Kafka topics ${error.topics.join(', ')} do not exist at ${brokers}. Create them, or set KAFKA_CREATE_TOPICS=true`,
        { cause: error },
      );
    }
    if (phase === 'connect') {
      return new Error(
        `could not connect to Kafka at ${brokers} within ${timeoutMs} ms: ${describeError(error)}. ` +
          'Check that the broker is running and that KAFKA_BROKER lists it as host:port, and check KAFKA_SSL and KAFKA_SASL_*; ' +
          'KAFKA_STARTUP_TIMEOUT_MS sets the wait',
        { cause: error },
      );
    }
    const { received, generated, deadLetter } = this.settings.topics;
    return new Error(
      `could not prepare Kafka topics ${received}, ${generated}, ${deadLetter} at ${brokers} within ${timeoutMs} ms: ${describeError(error)}. ` +
        'Check KAFKA_TOPIC_PARTITIONS, KAFKA_TOPIC_REPLICATION_FACTOR (at most the number of brokers) and the ACLs of the client, ' +
        'or create the topics beforehand and set KAFKA_CREATE_TOPICS=false',
      { cause: error },
    );
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

  // --- consuming ---

  /**
   * Handles one record for kafkajs' eachMessage. Never rejects, because kafkajs reacts to a
   * rejection by halting every partition of the broker (see redeliverLater).
   */
  private deliverRecord(payload: EachMessagePayload, handler: InboundHandler): Promise<void> {
    if (this.stopping !== undefined) {
      // stop() paused the topic, but kafkajs may still pass on the rest of a fetched batch. Such a
      // record is not handled and stays uncommitted.
      return Promise.resolve();
    }

    const record = toInboundRecord(payload.topic, payload.partition, payload.message);
    const entry: RecordInHand = { record, done: this.processRecord(record, payload, handler) };
    this.recordsInHand.add(entry);
    return entry.done.finally(() => this.recordsInHand.delete(entry));
  }

  private async processRecord(record: InboundRecord, payload: EachMessagePayload, handler: InboundHandler): Promise<void> {
    try {
      const outcome = await this.runHandler(record, payload, handler);
      switch (outcome.kind) {
        case 'resolved':
          await this.commit(record);
          return;
        case 'rejected':
          this.redeliverLater(record, outcome.error);
          return;
        case 'abandoned':
          return;
      }
    } catch (error) {
      this.logger.error('unexpected error while delivering an inbound record', {
        ...recordFields(record),
        error: describeError(error),
      });
    }
  }

  /** Runs the handler with a heartbeat timer; settles early with 'abandoned' when stop() gives up on it. */
  private async runHandler(record: InboundRecord, payload: EachMessagePayload, handler: InboundHandler): Promise<HandlerOutcome> {
    let heartbeatFailed = false;
    const heartbeat = async (): Promise<void> => {
      try {
        await payload.heartbeat();
      } catch (error) {
        // kafkajs rejoins the group once eachMessage returns; one line per record is enough.
        if (!heartbeatFailed) {
          heartbeatFailed = true;
          this.logger.warn('heartbeat failed while a record was in hand; the group may rebalance', {
            ...recordFields(record),
            error: describeError(error),
          });
        }
      }
    };
    // Without this, a handler longer than the session timeout gets this member evicted.
    // payload.heartbeat() sends at most one request per heartbeatIntervalMs.
    const timer = setInterval(() => void heartbeat(), this.heartbeatIntervalMs);

    // A listener per record, removed afterwards: racing every record against one long-lived
    // promise would keep a reaction per record on it until shutdown.
    const abandonSignal = this.abandonController.signal;
    let onAbandon = (): void => {};
    const abandoned = new Promise<HandlerOutcome>((resolve) => {
      onAbandon = () => resolve({ kind: 'abandoned' });
    });
    if (abandonSignal.aborted) {
      onAbandon();
    }
    abandonSignal.addEventListener('abort', onAbandon, { once: true });

    try {
      const handled = Promise.resolve()
        .then(() => handler(record, { signal: this.stopController.signal, heartbeat }))
        .then(
          (): HandlerOutcome => ({ kind: 'resolved' }),
          (error: unknown): HandlerOutcome => ({ kind: 'rejected', error }),
        );
      return await Promise.race([handled, abandoned]);
    } finally {
      clearInterval(timer);
      abandonSignal.removeEventListener('abort', onAbandon);
    }
  }

  private async commit(record: InboundRecord): Promise<void> {
    const nextOffset = (BigInt(record.offset) + 1n).toString();
    try {
      await this.consumer.commitOffsets([{ topic: record.topic, partition: record.partition, offset: nextOffset }]);
    } catch (error) {
      this.logger.error('offset commit failed; the record is delivered again unless a later commit of its partition succeeds', {
        ...recordFields(record),
        commit_offset: nextOffset,
        error: describeError(error),
      });
      return;
    }

    const key = partitionKey(record.topic, record.partition);
    if (this.redeliveries.get(key)?.offset === record.offset) {
      this.redeliveries.delete(key);
    }
    this.logger.debug('offset committed', { ...recordFields(record), commit_offset: nextOffset });
  }

  /**
   * Makes the failed record the next one its partition delivers, after a backoff. kafkajs 2.2.4
   * treats a record as consumed once eachMessage returns. When eachMessage throws instead, kafkajs
   * halts every partition of that broker and, after `retries` failures, crashes and restarts
   * the consumer. So this seeks back to the failed offset and pauses the partition until
   * the backoff ends, while the other partitions go on.
   */
  private redeliverLater(record: InboundRecord, error: unknown): void {
    const { topic, partition, offset } = record;
    if (this.stopping !== undefined) {
      this.logger.warn('inbound record handler failed during shutdown; the record stays uncommitted', {
        ...recordFields(record),
        error: describeError(error),
      });
      return;
    }

    const key = partitionKey(topic, partition);
    const previous = this.redeliveries.get(key);
    const failures = previous?.offset === offset ? previous.failures + 1 : 1;
    const delayMs = Math.min(this.options.redeliveryDelayMs * 2 ** (failures - 1), this.options.maxRedeliveryDelayMs);
    this.logger.warn('inbound record handler failed; the record will be delivered again', {
      ...recordFields(record),
      failures,
      retry_in_ms: delayMs,
      error: describeError(error),
    });

    this.consumer.pause([{ topic, partitions: [partition] }]);
    this.consumer.seek({ topic, partition, offset });
    const timer = setTimeout(() => this.resumeAfterBackoff(topic, partition), delayMs);
    this.redeliveries.set(key, { offset, failures, timer });
  }

  private resumeAfterBackoff(topic: string, partition: number): void {
    const redelivery = this.redeliveries.get(partitionKey(topic, partition));
    if (redelivery !== undefined) {
      redelivery.timer = undefined;
    }
    if (this.stopping !== undefined) {
      return;
    }
    try {
      this.consumer.resume([{ topic, partitions: [partition] }]);
    } catch (error) {
      // A crashed consumer restarts with no partition paused, so nothing is left to resume.
      this.logger.warn('could not resume a partition after the redelivery backoff', {
        topic,
        partition,
        error: describeError(error),
      });
    }
  }

  // --- shutdown ---

  private async shutdown(): Promise<void> {
    this.stopController.abort();
    for (const redelivery of this.redeliveries.values()) {
      clearTimeout(redelivery.timer);
    }
    if (this.connection === undefined) {
      this.producerClosed = true;
      return;
    }

    this.logger.info('stopping the Kafka event bus', { records_in_hand: this.recordsInHand.size });
    await this.connection.catch(() => undefined);
    if (this.consuming) {
      this.pauseConsumption();
      await this.finishRecordsInHand();
    }

    await this.settleWithin([...this.pendingSends], this.options.stopTimeoutMs, 'publishes still pending at shutdown');
    this.producerClosed = true;

    await this.disconnect('consumer', () => this.consumer.disconnect());
    await this.disconnect('producer', () => this.producer.disconnect());
    await this.disconnect('admin client', () => this.admin.disconnect());
    this.libraryLogsMuted = true;
    this.logger.info('Kafka event bus stopped');
  }

  private pauseConsumption(): void {
    try {
      this.consumer.pause([{ topic: this.settings.topics.received }]);
    } catch (error) {
      this.logger.debug('could not pause the received topic at shutdown', { error: describeError(error) });
    }
  }

  /**
   * Waits for the records in hand, so that their offsets are committed while kafkajs still
   * commits: its commitOffsets() does nothing once consumer.stop() or disconnect() has begun.
   */
  private async finishRecordsInHand(): Promise<void> {
    const inHand = [...this.recordsInHand];
    const finished = await this.settleWithin(
      inHand.map((entry) => entry.done),
      this.options.stopTimeoutMs,
      'records still in hand at shutdown',
    );
    if (finished) {
      return;
    }

    for (const entry of this.recordsInHand) {
      this.logger.warn('record still in hand at shutdown is left uncommitted and will be delivered again', {
        ...recordFields(entry.record),
        timeout_ms: this.options.stopTimeoutMs,
      });
    }
    this.abandonController.abort();
    await Promise.allSettled([...this.recordsInHand].map((entry) => entry.done));
  }

  /** Returns true when every promise settled within `timeoutMs`. */
  private async settleWithin(promises: Array<Promise<unknown>>, timeoutMs: number, description: string): Promise<boolean> {
    if (promises.length === 0) {
      return true;
    }
    try {
      await withTimeout(Promise.allSettled(promises), timeoutMs);
      return true;
    } catch {
      this.logger.warn(`gave up waiting for ${description}`, { count: promises.length, timeout_ms: timeoutMs });
      return false;
    }
  }

  private async disconnect(client: string, close: () => Promise<void>): Promise<void> {
    try {
      await close();
    } catch (error) {
      this.logger.warn('failed to disconnect a Kafka client', { client, error: describeError(error) });
    }
  }

  // --- health and group events ---

  private observeClients(): void {
    const { producer, consumer } = this;

    producer.on(producer.events.CONNECT, () => {
      this.state.producerConnected = true;
    });
    producer.on(producer.events.DISCONNECT, () => {
      this.state.producerConnected = false;
    });

    consumer.on(consumer.events.CONNECT, () => {
      this.state.consumerConnected = true;
    });
    consumer.on(consumer.events.DISCONNECT, () => {
      this.state.consumerConnected = false;
    });
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      // kafkajs emits no CONNECT when it restarts a crashed consumer, but it joins the group again.
      this.state.consumerConnected = true;
      this.state.consumerCrash = undefined;
      this.logger.info('consumer joined group', {
        group_id: event.payload.groupId,
        member_id: event.payload.memberId,
        is_leader: event.payload.isLeader,
        assignment: event.payload.memberAssignment,
        duration_ms: event.payload.duration,
      });
    });
    consumer.on(consumer.events.REBALANCING, (event) => {
      this.logger.info('consumer group is rebalancing', {
        group_id: event.payload.groupId,
        member_id: event.payload.memberId,
      });
    });
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, groupId, restart } = event.payload;
      this.state.consumerCrash = `${describeError(error)}${restart ? ' (kafkajs restarts it)' : ' (not restarted)'}`;
      this.logger.error('Kafka consumer crashed', {
        group_id: groupId,
        restart,
        error: describeError(error),
        error_name: error.name,
      });
    });
  }
}

/** Raised inside connect() when a topic is missing and `createTopics` is off. */
class MissingTopicsError extends Error {
  constructor(readonly topics: string[]) {
    super(`missing topics: ${topics.join(', ')}`);
    this.name = 'MissingTopicsError';
  }
}

class TimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

function clientConfig(settings: KafkaEventBusSettings): KafkaConfig {
  return {
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs,
    ssl: settings.ssl.enabled ? { rejectUnauthorized: settings.ssl.rejectUnauthorized } : false,
    sasl: saslOptions(settings.sasl),
    retry: CLIENT_RETRY,
  };
}

function saslOptions(sasl: KafkaEventBusSettings['sasl']): SASLOptions | undefined {
  if (sasl === undefined) {
    return undefined;
  }
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
  }
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(timeoutMs)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

/** Log fields of an inbound record: its position, its key and the ids a producer put in its headers. */
function recordFields(record: InboundRecord): LogFields {
  const fields: LogFields = { topic: record.topic, partition: record.partition, offset: record.offset };
  if (record.key !== null) {
    fields['record_key'] = Buffer.from(record.key).toString('utf8');
  }
  for (const id of ['tenant_id', 'correlation_id'] as const) {
    if (record.headers[id] !== undefined) {
      fields[id] = record.headers[id];
    }
  }
  return fields;
}
