import type { Admin, Consumer, ITopicMetadata, Producer } from 'kafkajs';

import { describeError } from '../../../domain/errors.js';
import type { Logger } from '../../../domain/ports/logger.js';

import type { KafkaEventBusSettings } from './kafka-client-config.js';
import { withTimeout } from './timeouts.js';

/** Pause between topic metadata checks while connect() waits for new topics to get leaders. */
const METADATA_POLL_MS = 200;

/**
 * Start-up of the Kafka event bus. It connects the producer, the admin client and the consumer
 * within `startupTimeoutMs`, creates or checks the topics and waits until every partition has a
 * leader. A failure becomes an error that names the brokers and the settings to check.
 */
export class KafkaStartup {
  constructor(
    private readonly settings: KafkaEventBusSettings,
    private readonly producer: Producer,
    private readonly admin: Admin,
    private readonly consumer: Consumer,
    private readonly logger: Logger,
  ) {}

  /**
   * Connects the three clients and prepares the topics. When a step fails or `startupTimeoutMs`
   * passes, disconnects every client and rejects with an error that names the brokers.
   */
  async connectWithinStartupTimeout(): Promise<void> {
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
      // kafkajs' own waitForLeaders fails on UNKNOWN_TOPIC_OR_PARTITION, which a broker that was
      // just started can return for a moment after creating a topic, so waitForLeaders below
      // polls instead.
      await this.admin.createTopics({
        topics: missing.map((topic) => ({
          topic,
          numPartitions: this.settings.topicPartitions,
          replicationFactor: this.settings.topicReplicationFactor,
        })),
        waitForLeaders: false,
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
        `could not connect to Kafka at ${brokers} (start-up timeout ${timeoutMs} ms): ${describeError(error)}. ` +
          'Check that the broker is running and that KAFKA_BROKER lists it as host:port, and check KAFKA_SSL and KAFKA_SASL_*; ' +
          'KAFKA_STARTUP_TIMEOUT_MS sets the wait',
        { cause: error },
      );
    }
    const { received, generated, deadLetter } = this.settings.topics;
    return new Error(
      `could not prepare Kafka topics ${received}, ${generated}, ${deadLetter} at ${brokers} (start-up timeout ${timeoutMs} ms): ${describeError(error)}. ` +
        'Check KAFKA_TOPIC_PARTITIONS, KAFKA_TOPIC_REPLICATION_FACTOR (at most the number of brokers) and the ACLs of the client, ' +
        'or create the topics beforehand and set KAFKA_CREATE_TOPICS=false',
      { cause: error },
    );
  }
}

/** Raised inside connect() when a topic is missing and `createTopics` is off. */
class MissingTopicsError extends Error {
  constructor(readonly topics: string[]) {
    super(`missing topics: ${topics.join(', ')}`);
    this.name = 'MissingTopicsError';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
