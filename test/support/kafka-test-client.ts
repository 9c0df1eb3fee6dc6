import kafkajs, { type Consumer, type IHeaders, type Producer } from 'kafkajs';

import { TEST_KAFKA_BROKERS, TEST_REDIS_URL, uniqueSuffix } from './environment.js';

const { Kafka, logLevel } = kafkajs;

export interface CollectedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** Per-test topic names, unique so that test files never see each other's records. */
export function uniqueTopics(prefix: string): { received: string; generated: string; deadLetter: string } {
  const suffix = `${prefix}-${uniqueSuffix()}`;
  return {
    received: `${suffix}.conversation.message_received`,
    generated: `${suffix}.conversation.message_generated`,
    deadLetter: `${suffix}.conversation.message_received.dlq`,
  };
}

/**
 * Environment of a service on the test broker and Redis, with its own topics, consumer group
 * and Redis key prefix. `group` names the consumer group; a worker restarted with the same
 * group and `redisKeyPrefix` continues where the earlier one stopped.
 */
export function serviceEnvironment(
  topics: { received: string; generated: string; deadLetter: string },
  options: { group?: string; redisKeyPrefix?: string; redisUrl?: string } = {},
): Record<string, string> {
  return {
    ENABLE_KAFKA: 'true',
    KAFKA_BROKER: TEST_KAFKA_BROKERS.join(','),
    KAFKA_CONSUMER_GROUP: options.group ?? `group-${uniqueSuffix()}`,
    KAFKA_MESSAGE_RECEIVED_TOPIC: topics.received,
    KAFKA_MESSAGE_GENERATED_TOPIC: topics.generated,
    KAFKA_DEAD_LETTER_TOPIC: topics.deadLetter,
    REDIS_URL: options.redisUrl ?? TEST_REDIS_URL,
    REDIS_KEY_PREFIX: options.redisKeyPrefix ?? `test:${uniqueSuffix()}:`,
    HTTP_HOST: '127.0.0.1',
  };
}

/**
 * A plain kafkajs producer and consumer for tests: publishes raw inbound records and collects
 * what the service publishes, independent of the adapter under test.
 */
export class KafkaTestClient {
  private readonly kafka = new Kafka({ clientId: `test-${uniqueSuffix()}`, brokers: TEST_KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  private producer: Producer | undefined;
  private readonly consumers: Consumer[] = [];
  readonly collected: CollectedRecord[] = [];

  /** Creates topics and waits until every partition has a leader (a fresh broker can lag). */
  async createTopics(topics: string[], partitions = 3): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
        waitForLeaders: false,
      });
      const deadline = Date.now() + 15_000;
      for (;;) {
        const ready = await admin
          .fetchTopicMetadata({ topics })
          .then((metadata) => metadata.topics.every((topic) => topic.partitions.every((partition) => partition.leader >= 0)))
          .catch(() => false);
        if (ready) break;
        if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after 15 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await admin.disconnect();
    }
  }

  async produce(topic: string, records: Array<{ key: string | null; value: string | Buffer | null; headers?: IHeaders }>): Promise<void> {
    if (this.producer === undefined) {
      this.producer = this.kafka.producer({ allowAutoTopicCreation: false });
      await this.producer.connect();
    }
    await this.producer.send({ topic, acks: -1, messages: records });
  }

  /** Starts collecting every record of `topics` from the beginning into `collected`. */
  async collect(topics: string[]): Promise<void> {
    const consumer = this.kafka.consumer({ groupId: `collector-${uniqueSuffix()}`, maxWaitTimeInMs: 200 });
    this.consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.map(String).join(',') : value.toString();
        }
        this.collected.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key === null ? null : message.key.toString('utf8'),
          value: message.value,
          headers,
        });
      },
    });
  }

  recordsOf(topic: string): CollectedRecord[] {
    return this.collected.filter((record) => record.topic === topic);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.consumers.map((consumer) => consumer.disconnect()));
    await this.producer?.disconnect().catch(() => {});
  }
}

/** Polls `condition` every 50 ms until it is true or `timeoutMs` passes, then throws `message`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms: ${message()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
