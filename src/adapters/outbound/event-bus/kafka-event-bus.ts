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
import type { Logger } from '../../../domain/ports/logger.js';

import { createKafkaLogCreator, toKafkaLogLevel, type KafkaLogLevel } from './kafka-log.js';
import { PartitionTracker, type HandlerOutcome, type PartitionHooks } from './kafka-partition-tracker.js';
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
  /** Records of one partition fetched but not finished, above which that partition is paused. */
  maxInFlightPerPartition: number;
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

/**
 * kafkajs' consumer loop heartbeats after every fetch, and eachMessage returns at once here, so a
 * long handler needs no heartbeat of its own.
 */
const heartbeatNotNeeded = async (): Promise<void> => {};

/** Error types (kafkajs 2.2.4 protocol errors) that mean this member's group generation is over. */
const GROUP_GENERATION_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

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
  /** Partitions this consumer owns and has fetched from, by partitionKey(). */
  private readonly trackers = new Map<string, PartitionTracker>();
  /** Per partition, settles when the handlers of its revoked trackers have ended. */
  private readonly retiredHandlers = new Map<string, Promise<void>>();
  private readonly pendingSends = new Set<Promise<unknown>>();
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
    // eachMessage returns at once, so kafkajs' partitionsConsumedConcurrently (workers that run
    // eachMessage) is left at its default of 1.
    await this.consumer.run({
      autoCommit: false,
      eachMessage: (payload) => this.acceptRecord(payload, handler),
    });
    this.logger.info('consuming Kafka topic', {
      topic,
      group_id: this.settings.consumerGroup,
      max_in_flight_per_partition: this.settings.maxInFlightPerPartition,
    });
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
   * Hands one record to its partition's tracker for kafkajs' eachMessage and returns without
   * waiting for the handler. kafkajs 2.2.4 fetches again only after eachMessage returned for every
   * record of the last fetch, so waiting here would let one slow handler hold up every partition.
   */
  private acceptRecord(payload: EachMessagePayload, handler: InboundHandler): Promise<void> {
    if (this.stopping !== undefined) {
      // stop() paused the topic, but kafkajs may still pass on the rest of a fetched batch. Such a
      // record is not handled and stays uncommitted.
      return Promise.resolve();
    }

    const { topic, partition, message } = payload;
    const tracker = this.trackerOf(topic, partition, handler);
    if (tracker.accept(toInboundRecord(topic, partition, message)) === 'full') {
      // kafkajs counts the record as consumed once eachMessage returns; the seek makes the fetch
      // after the resume start from it again. The tracker paused the partition.
      this.consumer.seek({ topic, partition, offset: message.offset });
    }
    return Promise.resolve();
  }

  private trackerOf(topic: string, partition: number, handler: InboundHandler): PartitionTracker {
    const id = partitionKey(topic, partition);
    const existing = this.trackers.get(id);
    if (existing !== undefined) {
      return existing;
    }

    const hooks: PartitionHooks = {
      run: (record) => this.runHandler(record, handler),
      commit: (offset) => this.commit(topic, partition, offset),
      pause: () => this.pausePartition(topic, partition),
      resume: () => this.resumePartition(topic, partition),
      isStopping: () => this.stopping !== undefined,
      wait: (ms) => this.waitUnlessStopping(ms),
    };
    const tracker = new PartitionTracker(
      topic,
      partition,
      {
        maxInFlight: this.settings.maxInFlightPerPartition,
        redeliveryDelayMs: this.options.redeliveryDelayMs,
        maxRedeliveryDelayMs: this.options.maxRedeliveryDelayMs,
      },
      hooks,
      this.logger,
      // When this consumer had the partition before, its old handlers end before new ones start,
      // so that one key never runs twice at once here.
      this.retiredHandlers.get(id),
    );
    this.trackers.set(id, tracker);
    return tracker;
  }

  /** Runs the handler; settles early with 'abandoned' when stop() gives up on it. */
  private async runHandler(record: InboundRecord, handler: InboundHandler): Promise<HandlerOutcome> {
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
        .then(() => handler(record, { signal: this.stopController.signal, heartbeat: heartbeatNotNeeded }))
        .then(
          (): HandlerOutcome => ({ kind: 'resolved' }),
          (error: unknown): HandlerOutcome => ({ kind: 'rejected', error }),
        );
      return await Promise.race([handled, abandoned]);
    } finally {
      abandonSignal.removeEventListener('abort', onAbandon);
    }
  }

  private async commit(topic: string, partition: number, offset: string): Promise<void> {
    // NOTE: kafkajs retries a commit that failed with a retriable error (a dropped connection, for
    // example) and reads the group generation again for each attempt. A retry that lands after a
    // rebalance could commit a partition this consumer just lost; nothing here prevents that.
    try {
      await this.consumer.commitOffsets([{ topic, partition, offset }]);
    } catch (error) {
      if (isGroupGenerationError(error)) {
        // The group moved on; a commit with the next generation could cover a partition that is
        // no longer this consumer's, so every commit waits for the new assignment (GROUP_JOIN).
        this.holdCommits();
      }
      throw error;
    }
  }

  private holdCommits(): void {
    for (const tracker of this.trackers.values()) {
      tracker.holdCommits();
    }
  }

  /**
   * Applies a new assignment: drops the trackers of partitions the group gave to other members,
   * so their records are never committed here again, and commits the progress of the others.
   */
  private applyAssignment(assignment: Record<string, number[]>): void {
    for (const [id, tracker] of this.trackers) {
      if (assignment[tracker.topic]?.includes(tracker.partition) === true) {
        tracker.releaseCommits();
        continue;
      }

      tracker.revoke();
      this.trackers.delete(id);
      const earlier = this.retiredHandlers.get(id);
      this.retiredHandlers.set(
        id,
        Promise.all([earlier, tracker.idle()]).then(() => undefined),
      );
      this.logger.info('partition revoked; records in hand may finish but are not committed by this consumer', {
        topic: tracker.topic,
        partition: tracker.partition,
        records_in_flight: tracker.inFlight,
      });
    }
  }

  private pausePartition(topic: string, partition: number): void {
    try {
      this.consumer.pause([{ topic, partitions: [partition] }]);
    } catch (error) {
      this.logger.warn('could not pause a partition at its in-flight bound', { topic, partition, error: describeError(error) });
    }
  }

  private resumePartition(topic: string, partition: number): void {
    if (this.stopping !== undefined) {
      return;
    }
    try {
      this.consumer.resume([{ topic, partitions: [partition] }]);
    } catch (error) {
      // A crashed consumer restarts with no partition paused, so nothing is left to resume.
      this.logger.warn('could not resume a partition', { topic, partition, error: describeError(error) });
    }
  }

  private waitUnlessStopping(ms: number): Promise<void> {
    const signal = this.stopController.signal;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      if (signal.aborted) {
        done();
      }
    });
  }

  // --- shutdown ---

  private async shutdown(): Promise<void> {
    this.stopController.abort();
    if (this.connection === undefined) {
      this.producerClosed = true;
      return;
    }

    this.logger.info('stopping the Kafka event bus', { records_in_flight: this.recordsInFlight() });
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

  private recordsInFlight(): number {
    let count = 0;
    for (const tracker of this.trackers.values()) {
      count += tracker.inFlight;
    }
    return count;
  }

  private pauseConsumption(): void {
    try {
      this.consumer.pause([{ topic: this.settings.topics.received }]);
    } catch (error) {
      this.logger.debug('could not pause the received topic at shutdown', { error: describeError(error) });
    }
  }

  /**
   * Waits for the handlers running now (no new one starts once stop() began) and then for the
   * commits of what they finished, because kafkajs' commitOffsets() does nothing once
   * consumer.stop() or disconnect() has begun.
   */
  private async finishRecordsInHand(): Promise<void> {
    const trackers = [...this.trackers.values()];
    const handlerChains = [...trackers.map((tracker) => tracker.idle()), ...this.retiredHandlers.values()];
    const finished = await this.settleWithin(handlerChains, this.options.stopTimeoutMs, 'handlers still running at shutdown');
    if (!finished) {
      for (const tracker of trackers) {
        this.logger.warn('records still in hand at shutdown are left uncommitted and will be delivered again', {
          topic: tracker.topic,
          partition: tracker.partition,
          records_in_flight: tracker.inFlight,
          timeout_ms: this.options.stopTimeoutMs,
        });
      }
      this.abandonController.abort();
      await Promise.allSettled(handlerChains);
    }

    await this.settleWithin(
      trackers.map((tracker) => tracker.settleCommits()),
      this.options.stopTimeoutMs,
      'offset commits at shutdown',
    );
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
      this.applyAssignment(event.payload.memberAssignment);
    });
    consumer.on(consumer.events.REBALANCING, (event) => {
      // Emitted before kafkajs joins again; until the new assignment arrives, nothing is committed.
      this.holdCommits();
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

/** True when `error` or one of its causes is a group error that ends this member's generation. */
function isGroupGenerationError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string' && GROUP_GENERATION_ERRORS.has(type)) {
      return true;
    }
    current = current.cause;
  }
  return false;
}
