import { afterAll, beforeAll } from 'vitest';
import type { KafkaMessage } from 'kafkajs';

import { InMemoryEventBus } from '../../src/adapters/outbound/event-bus/in-memory-event-bus.js';
import { KafkaEventBus } from '../../src/adapters/outbound/event-bus/kafka-event-bus.js';
import type { DeadLetter, DeadLetterReason } from '../../src/domain/dead-letter.js';
import type { MessageGeneratedEvent } from '../../src/domain/events.js';
import { KafkaTestClient, allTopics, decodeHeaders, testKafkaSettings } from '../integration/kafka-test-tools.js';
import { uniqueSuffix } from '../support/environment.js';
import { CapturingLogger } from '../support/fakes.js';

import { describeEventBusContract, type EventBusAdapter } from './event-bus.contract.js';

const RECEIVED_TOPIC = 'conversation.message_received';

const inMemoryAdapter: EventBusAdapter = {
  name: 'InMemoryEventBus',
  keepsOffsetsAcrossRestarts: false,
  waitTimeoutMs: 2000,
  async create() {
    const bus = new InMemoryEventBus({ receivedTopic: RECEIVED_TOPIC, redeliveryDelayMs: 10 });
    return {
      bus,
      receivedTopic: RECEIVED_TOPIC,
      inject: async ({ key, value, headers }) => bus.deliver(value, key, headers ?? {}),
      readGenerated: async () => [...bus.generated],
      readDeadLetters: async () => [...bus.deadLetters],
      reopen: async () => {
        throw new Error('InMemoryEventBus keeps nothing across stop()');
      },
      dispose: () => bus.stop(),
    };
  },
};

const kafka = new KafkaTestClient();
beforeAll(() => kafka.connect());
afterAll(() => kafka.disconnect());

const kafkaAdapter: EventBusAdapter = {
  name: 'KafkaEventBus',
  keepsOffsetsAcrossRestarts: true,
  waitTimeoutMs: 20_000,
  async create({ stopTimeoutMs }) {
    const settings = testKafkaSettings(`contract-${uniqueSuffix()}`);
    const buses: KafkaEventBus[] = [];
    const openBus = async (): Promise<KafkaEventBus> => {
      const bus = new KafkaEventBus(settings, new CapturingLogger(), {
        stopTimeoutMs,
        redeliveryDelayMs: 50,
        maxRedeliveryDelayMs: 200,
      });
      buses.push(bus);
      await bus.connect();
      return bus;
    };
    const bus = await openBus();

    return {
      bus,
      receivedTopic: settings.topics.received,
      inject: (record) => kafka.send(settings.topics.received, record),
      readGenerated: async () =>
        (await kafka.readAll(settings.topics.generated)).map(
          (message) => JSON.parse(message.value?.toString('utf8') ?? 'null') as MessageGeneratedEvent,
        ),
      readDeadLetters: async () => (await kafka.readAll(settings.topics.deadLetter)).map(decodeDeadLetter),
      reopen: openBus,
      dispose: async () => {
        await Promise.all(buses.map((opened) => opened.stop()));
        kafka.deleteTopicsLater(allTopics(settings));
        await kafka.deleteGroups([settings.consumerGroup]);
      },
    };
  },
};

/**
 * Reads a dead letter back from its record: the `dlq_*` headers carry the reason and the source
 * position, the other headers are the original ones plus `tenant_id` and `correlation_id`.
 */
function decodeDeadLetter(message: KafkaMessage): DeadLetter {
  const headers = decodeHeaders(message.headers);
  const originalHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith('dlq_')));
  return {
    reason: headers['dlq_reason'] as DeadLetterReason,
    detail: headers['dlq_detail'] ?? '',
    tenantId: headers['tenant_id'],
    correlationId: headers['correlation_id'],
    original: {
      topic: headers['dlq_source_topic'] ?? '',
      partition: Number(headers['dlq_source_partition']),
      offset: headers['dlq_source_offset'] ?? '',
      key: message.key === null ? null : new Uint8Array(message.key),
      value: message.value === null ? null : new Uint8Array(message.value),
      headers: originalHeaders,
    },
  };
}

describeEventBusContract(inMemoryAdapter);
describeEventBusContract(kafkaAdapter);
