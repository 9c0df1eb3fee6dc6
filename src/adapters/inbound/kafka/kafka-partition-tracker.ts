import { describeError } from '../../../domain/errors.js';
import type { InboundRecord } from '../../../domain/ports/event-bus.js';
import type { LogFields, Logger } from '../../../domain/ports/logger.js';

/** Result of one handler run, 'abandoned' when stop() stopped waiting for it. */
export type HandlerOutcome = { kind: 'resolved' } | { kind: 'rejected'; error: unknown } | { kind: 'abandoned' };

/** Callbacks into the consumer that owns a tracker. */
export interface PartitionHooks {
  run(record: InboundRecord): Promise<HandlerOutcome>;
  /** Commits `offset`, the offset of the next record to read; rejects when the commit fails. */
  commit(offset: string): Promise<void>;
  pause(): void;
  resume(): void;
  /** True once the bus is stopping; from then on no handler starts. */
  isStopping(): boolean;
  /** Resolves after `ms` milliseconds, or earlier when the bus stops. */
  wait(ms: number): Promise<void>;
  /** Called each time a record is scheduled for redelivery, e.g. to count it in metrics. */
  onRedelivery(): void;
}

export interface PartitionTrackerOptions {
  /** Records accepted but not finished, above which the partition is paused. */
  maxInFlight: number;
  redeliveryDelayMs: number;
  maxRedeliveryDelayMs: number;
}

/**
 * Result of accept(). 'duplicate' means the tracker already had the record, because kafkajs
 * fetches again from the committed offset after every rebalance. 'full' means the partition is
 * at its in-flight bound, so the caller has to fetch the record again later.
 */
export type AcceptResult = 'accepted' | 'duplicate' | 'full';

interface TrackedRecord {
  record: InboundRecord;
  offset: bigint;
}

/**
 * Records of one Kafka partition from fetch to commit. Records with the same key run one at a
 * time in offset order, records with different keys run concurrently, and a record whose handler
 * rejects runs again after a capped backoff before any later record of its key. The committed
 * offset is the lowest offset not yet finished, so a restart never skips an unfinished record.
 */
export class PartitionTracker {
  /** Accepted records whose handler has not resolved, in offset order (Map keeps insertion order). */
  private readonly unfinished = new Map<bigint, TrackedRecord>();
  /** Per key, the records waiting; the first one is the one running. */
  private readonly queues = new Map<string, TrackedRecord[]>();
  private readonly chains = new Set<Promise<void>>();
  private highestAccepted: bigint | undefined;
  private committed: bigint | undefined;
  private committing: Promise<void> | undefined;
  private commitAgain = false;
  private commitsHeld = false;
  private paused = false;
  private revoked = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly options: PartitionTrackerOptions,
    private readonly hooks: PartitionHooks,
    private readonly logger: Logger,
    /** Settles when the handlers of an earlier tracker of this partition ended, before a handler here starts. */
    private readonly startAfter: Promise<void> = Promise.resolve(),
  ) {}

  /** Records accepted and not finished yet. */
  get inFlight(): number {
    return this.unfinished.size;
  }

  accept(record: InboundRecord): AcceptResult {
    const offset = BigInt(record.offset);
    if (this.highestAccepted !== undefined && offset <= this.highestAccepted) {
      return 'duplicate';
    }
    if (this.unfinished.size >= this.options.maxInFlight) {
      this.pause();
      return 'full';
    }

    const tracked: TrackedRecord = { record, offset };
    this.unfinished.set(offset, tracked);
    this.highestAccepted = offset;

    const key = queueKey(record.key);
    const queue = this.queues.get(key);
    if (queue === undefined) {
      this.queues.set(key, [tracked]);
      this.startChain(key);
    } else {
      queue.push(tracked);
    }

    if (this.unfinished.size >= this.options.maxInFlight) {
      this.pause();
    }
    return 'accepted';
  }

  /** Stops committing while the group rebalances, because the broker rejects commits then. */
  holdCommits(): void {
    this.commitsHeld = true;
  }

  /** Commits again after a rebalance that left this partition with this consumer. */
  releaseCommits(): void {
    this.commitsHeld = false;
    this.commitProgress();
  }

  /**
   * Drops the partition after the group gave it to another member: nothing is committed or
   * started from here on, and handlers already running may finish.
   */
  revoke(): void {
    this.revoked = true;
    if (this.paused) {
      // The pause would otherwise outlive the assignment and block the partition if it comes back.
      this.paused = false;
      this.hooks.resume();
    }
  }

  /** Settles once every handler chain running now has ended. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.chains]);
  }

  /** Settles once no commit is in flight and none is due. */
  async settleCommits(): Promise<void> {
    while (this.committing !== undefined) {
      await this.committing;
    }
  }

  private startChain(key: string): void {
    const chain: Promise<void> = this.drain(key)
      .catch((error: unknown) => {
        this.logger.error('unexpected error while delivering inbound records', {
          topic: this.topic,
          partition: this.partition,
          error: describeError(error),
        });
      })
      .finally(() => this.chains.delete(chain));
    this.chains.add(chain);
  }

  /** Runs the records of one key in order until its queue is empty, the bus stops or the partition is revoked. */
  private async drain(key: string): Promise<void> {
    await this.startAfter;
    const queue = this.queues.get(key) ?? [];
    let failures = 0;

    while (queue.length > 0) {
      // Records that do not start stay uncommitted; the next owner of the partition gets them.
      if (this.revoked || this.hooks.isStopping()) {
        return;
      }

      const tracked = queue[0]!;
      const outcome = await this.hooks.run(tracked.record);
      if (outcome.kind === 'abandoned') {
        return;
      }
      if (outcome.kind === 'resolved') {
        queue.shift();
        failures = 0;
        this.finish(tracked);
        continue;
      }

      failures += 1;
      if (this.revoked || this.hooks.isStopping()) {
        this.logger.warn('inbound record handler failed while stopping or after a rebalance; the record stays uncommitted', {
          ...recordFields(tracked.record),
          failures,
          error: describeError(outcome.error),
        });
        return;
      }
      const delayMs = Math.min(this.options.redeliveryDelayMs * 2 ** (failures - 1), this.options.maxRedeliveryDelayMs);
      this.logger.warn('inbound record handler failed; the record will be delivered again', {
        ...recordFields(tracked.record),
        failures,
        retry_in_ms: delayMs,
        error: describeError(outcome.error),
      });
      this.hooks.onRedelivery();
      await this.hooks.wait(delayMs);
    }
    this.queues.delete(key);
  }

  private finish(tracked: TrackedRecord): void {
    this.unfinished.delete(tracked.offset);
    if (this.paused && !this.revoked && this.unfinished.size < this.options.maxInFlight) {
      this.paused = false;
      this.hooks.resume();
    }
    this.commitProgress();
  }

  private pause(): void {
    // A crashed and restarted kafkajs consumer loses its pauses, so a 'full' partition pauses again.
    this.paused = true;
    this.hooks.pause();
  }

  /** Offset of the next record to read: the lowest unfinished one, or the one after the last accepted. */
  private commitPosition(): bigint | undefined {
    const lowest = this.unfinished.values().next();
    if (lowest.done !== true) {
      return lowest.value.offset;
    }
    return this.highestAccepted === undefined ? undefined : this.highestAccepted + 1n;
  }

  /** Commits the current position, keeping at most one commit of this partition in flight. */
  private commitProgress(): void {
    if (this.revoked || this.commitsHeld) {
      return;
    }
    if (this.committing !== undefined) {
      this.commitAgain = true;
      return;
    }
    const position = this.commitPosition();
    if (position === undefined || (this.committed !== undefined && position <= this.committed)) {
      return;
    }

    this.committing = this.commitOnce(position).finally(() => {
      this.committing = undefined;
      if (this.commitAgain) {
        this.commitAgain = false;
        this.commitProgress();
      }
    });
  }

  private async commitOnce(position: bigint): Promise<void> {
    const fields: LogFields = { topic: this.topic, partition: this.partition, commit_offset: position.toString() };
    try {
      await this.hooks.commit(position.toString());
    } catch (error) {
      this.logger.warn('offset commit failed; the next finished record or rebalance commits again, and a restart before that delivers these records again', {
        ...fields,
        revoked: this.revoked,
        error: describeError(error),
      });
      return;
    }
    this.committed = position;
    this.logger.debug('offset committed', fields);
  }
}

/** Queue of one key. All records without a key share one queue. */
function queueKey(key: Uint8Array | null): string {
  return key === null ? 'null' : `key:${Buffer.from(key).toString('hex')}`;
}

/** Log fields of an inbound record: its position, its key and the ids a producer put in its headers. */
export function recordFields(record: InboundRecord): LogFields {
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
