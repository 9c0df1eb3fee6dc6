import kafkajs from 'kafkajs';
import type { IHeaders, KafkaMessage } from 'kafkajs';

import type { KafkaEventBusSettings } from '../../src/adapters/outbound/event-bus/kafka-event-bus.js';
import { waitUntil } from '../contract/event-bus.contract.js';
import { TEST_KAFKA_BROKERS } from '../support/environment.js';

const { Kafka, Partitioners, logLevel } = kafkajs;

/** Settings for a KafkaEventBus on the test broker, with topics and group named after `suffix`. */
export function testKafkaSettings(suffix: string, overrides: Partial<KafkaEventBusSettings> = {}): KafkaEventBusSettings {
  return {
    brokers: TEST_KAFKA_BROKERS,
    clientId: `test-${suffix}`,
    consumerGroup: `test-group-${suffix}`,
    topics: {
      received: `test-${suffix}.received`,
      generated: `test-${suffix}.generated`,
      deadLetter: `test-${suffix}.dlq`,
    },
    createTopics: true,
    topicPartitions: 3,
    topicReplicationFactor: 1,
    maxInFlightPerPartition: 100,
    connectionTimeoutMs: 3000,
    startupTimeoutMs: 15_000,
    sessionTimeoutMs: 10_000,
    ssl: { enabled: false, rejectUnauthorized: true },
    sasl: undefined,
    ...overrides,
  };
}

export function allTopics(settings: KafkaEventBusSettings): string[] {
  return [settings.topics.received, settings.topics.generated, settings.topics.deadLetter];
}

/** Decodes kafkajs header values to strings, keeping the last value of a repeated header. */
export function decodeHeaders(headers: IHeaders | undefined): Record<string, string> {
  const decoded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const last = Array.isArray(value) ? value.at(-1) : value;
    if (last !== undefined) {
      decoded[name] = last.toString();
    }
  }
  return decoded;
}

export interface TestRecord {
  key: string | null;
  value: Uint8Array | string | null;
  headers?: Record<string, string>;
  partition?: number;
}

/**
 * Plain kafkajs clients for tests: writes records as an upstream producer would, reads topics
 * back, and deletes the topics and consumer groups that tests created.
 */
export class KafkaTestClient {
  private readonly kafka = new Kafka({ clientId: 'kafka-test-client', brokers: TEST_KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  private readonly producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  readonly admin = this.kafka.admin();
  private readonly readerGroups: string[] = [];
  private readonly topicsToDelete: string[] = [];

  async connect(): Promise<void> {
    await Promise.all([this.producer.connect(), this.admin.connect()]);
  }

  async disconnect(): Promise<void> {
    await this.deleteGroups(this.readerGroups.splice(0));
    const topics = this.topicsToDelete.splice(0);
    if (topics.length > 0) {
      await this.admin.deleteTopics({ topics }).catch(() => undefined);
    }
    await Promise.all([this.producer.disconnect(), this.admin.disconnect()]);
  }

  /** Writes one record. Without `partition`, the Java client's murmur2 hash of the key picks it. */
  async send(topic: string, record: TestRecord): Promise<void> {
    const value = record.value === null || typeof record.value === 'string' ? record.value : Buffer.from(record.value);
    await this.producer.send({
      topic,
      acks: -1,
      messages: [{ key: record.key, value, headers: record.headers ?? {}, partition: record.partition }],
    });
  }

  /**
   * Reads every record of `topic` with a fresh consumer group. The record count comes from the
   * partitions' offsets first, so a topic with more records than expected shows them all.
   */
  async readAll(topic: string, timeoutMs = 15_000): Promise<KafkaMessage[]> {
    const offsets = await this.topicOffsets(topic, timeoutMs);
    const total = offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0);
    if (total === 0) {
      return [];
    }

    const groupId = `test-reader-${topic}`.slice(0, 200) + `-${this.readerGroups.length}`;
    this.readerGroups.push(groupId);
    const consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
    const messages: KafkaMessage[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          messages.push(message);
        },
      });
      await waitUntil(() => messages.length >= total, timeoutMs, `${total} records on ${topic}`);
    } finally {
      await consumer.disconnect();
    }
    return messages;
  }

  /** Committed offset of `groupId` per partition of `topic`; -1 where nothing was committed. */
  /**
   * Fetches a topic's offsets, retrying while the broker reports a passing error such as
   * NOT_LEADER_OR_FOLLOWER, which a broker that was just started returns for new topics.
   */
  private async topicOffsets(topic: string, timeoutMs: number): Promise<Array<{ partition: number; high: string; low: string }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await this.admin.fetchTopicOffsets(topic);
      } catch (error) {
        const retriable = (error as { retriable?: unknown }).retriable === true;
        if (!retriable || Date.now() > deadline) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  async committedOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
    const [topicOffsets] = await this.admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((topicOffsets?.partitions ?? []).map(({ partition, offset }) => [partition, offset]));
  }

  /**
   * Deletes `topics` in disconnect(). kafkajs keeps every topic a client ever produced to in its
   * metadata requests and fails the whole request when one of them is unknown to the broker, so
   * deleting them earlier would break this client's later sends.
   */
  deleteTopicsLater(topics: string[]): void {
    this.topicsToDelete.push(...topics);
  }

  /** Deletes consumer groups; a group that still has members or never existed is left alone. */
  async deleteGroups(groupIds: string[]): Promise<void> {
    if (groupIds.length > 0) {
      await this.admin.deleteGroups(groupIds).catch(() => undefined);
    }
  }
}
