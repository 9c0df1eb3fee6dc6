import type { Consumer, EachMessagePayload } from 'kafkajs';

import { describeError } from '../../../domain/errors.js';
import type { InboundHandler, InboundRecord } from '../../../domain/ports/event-bus.js';
import type { Logger } from '../../../domain/ports/logger.js';
import { toInboundRecord } from '../../outbound/event-bus/kafka-records.js';
import { settleWithin } from '../../outbound/event-bus/timeouts.js';

import { PartitionTracker, type HandlerOutcome, type PartitionHooks } from './kafka-partition-tracker.js';

/** Settings of the consumer side, taken from the event bus's settings and options. */
export interface KafkaRecordConsumerOptions {
  /** Topic to consume: the bus's received topic. */
  topic: string;
  groupId: string;
  /** Records of one partition fetched but not finished, above which that partition is paused. */
  maxInFlightPerPartition: number;
  /** Wait before a record whose handler rejected is delivered again, in milliseconds; doubles per failure. */
  redeliveryDelayMs: number;
  /** Upper bound of that wait, in milliseconds. */
  maxRedeliveryDelayMs: number;
  /** Time drain() waits for records in hand before it leaves them uncommitted, in milliseconds. */
  stopTimeoutMs: number;
  /** Called each time a record whose handler rejected is scheduled for redelivery. */
  onRedelivery: () => void;
}

/**
 * kafkajs' consumer loop heartbeats after every fetch, and eachMessage returns at once here, so a
 * long handler needs no heartbeat of its own.
 */
const heartbeatNotNeeded = async (): Promise<void> => {};

/** Error types (kafkajs 2.2.4 protocol errors) that mean this member's group generation is over. */
const GROUP_GENERATION_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/**
 * Consumer side of the Kafka event bus. It runs the kafkajs consumer loop on the received topic
 * and owns the per-partition trackers, the handler runs and their redelivery, and the offset
 * commits. It also handles rebalances, pauses a partition at its in-flight bound, and finishes the
 * records in hand at stop. The bus connects and disconnects the kafkajs consumer, so this class
 * only observes its events.
 *
 * Lifecycle: `start()` once, then `beginStop()`, then `drain()`.
 */
export class KafkaRecordConsumer {
  /** Partitions this consumer owns and has fetched from, by partitionKey(). */
  private readonly trackers = new Map<string, PartitionTracker>();
  /** Per partition, settles when the handlers of its revoked trackers have ended. */
  private readonly retiredHandlers = new Map<string, Promise<void>>();
  /** Aborted when stop() stops waiting for the records in hand. */
  private readonly abandonController = new AbortController();
  /** Aborted by beginStop(). Its signal is the one passed to every handler. */
  private readonly stopController = new AbortController();
  private readonly state = {
    consumerConnected: false,
    consumerCrash: undefined as string | undefined,
  };

  constructor(
    private readonly consumer: Consumer,
    private readonly options: KafkaRecordConsumerOptions,
    private readonly logger: Logger,
  ) {
    this.observeConsumer();
  }

  /** True while the kafkajs consumer is connected, tracked from its CONNECT, DISCONNECT and GROUP_JOIN events. */
  get connected(): boolean {
    return this.state.consumerConnected;
  }

  /** Description of the last crash, or undefined when the consumer joined its group since. */
  get crash(): string | undefined {
    return this.state.consumerCrash;
  }

  /** Subscribes to the topic and starts kafkajs' consumer loop, which delivers to `handler`. */
  async start(handler: InboundHandler): Promise<void> {
    const topic = this.options.topic;
    await this.consumer.subscribe({ topic, fromBeginning: true });
    // eachMessage returns at once, so kafkajs' partitionsConsumedConcurrently (workers that run
    // eachMessage) is left at its default of 1.
    await this.consumer.run({
      autoCommit: false,
      eachMessage: (payload) => this.acceptRecord(payload, handler),
    });
    this.logger.info('consuming Kafka topic', {
      topic,
      group_id: this.options.groupId,
      max_in_flight_per_partition: this.options.maxInFlightPerPartition,
    });
  }

  /**
   * Aborts the signal passed to the handlers and ends redelivery waits. From then on no handler
   * starts and fetched records stay uncommitted. Call it when the bus begins to stop.
   */
  beginStop(): void {
    this.stopController.abort();
  }

  /**
   * Pauses fetching and finishes the records in hand (see finishRecordsInHand). Call it after
   * beginStop() and before the kafkajs consumer disconnects.
   */
  async drain(): Promise<void> {
    this.pauseConsumption();
    await this.finishRecordsInHand();
  }

  /**
   * Hands one record to its partition's tracker for kafkajs' eachMessage and returns without
   * waiting for the handler. kafkajs 2.2.4 fetches again only after eachMessage returned for every
   * record of the last fetch, so waiting here would let one slow handler hold up every partition.
   */
  private acceptRecord(payload: EachMessagePayload, handler: InboundHandler): Promise<void> {
    if (this.stopController.signal.aborted) {
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
      isStopping: () => this.stopController.signal.aborted,
      wait: (ms) => this.waitUnlessStopping(ms),
      onRedelivery: this.options.onRedelivery,
    };
    const tracker = new PartitionTracker(
      topic,
      partition,
      {
        maxInFlight: this.options.maxInFlightPerPartition,
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
        // The group moved on. A commit with the next generation could cover a partition that is
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
    if (this.stopController.signal.aborted) {
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

  /** Records fetched and not finished yet, over every partition this consumer owns. */
  recordsInFlight(): number {
    let count = 0;
    for (const tracker of this.trackers.values()) {
      count += tracker.inFlight;
    }
    return count;
  }

  private pauseConsumption(): void {
    try {
      this.consumer.pause([{ topic: this.options.topic }]);
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
    const finished = await settleWithin(
      handlerChains,
      this.options.stopTimeoutMs,
      'handlers still running at shutdown',
      this.logger,
    );
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

    await settleWithin(
      trackers.map((tracker) => tracker.settleCommits()),
      this.options.stopTimeoutMs,
      'offset commits at shutdown',
      this.logger,
    );
  }

  // --- group events ---

  private observeConsumer(): void {
    const { consumer } = this;

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
