import 'reflect-metadata';

import { Container, type ServiceIdentifier } from 'inversify';
import type { Redis } from 'ioredis';

import { ProcessMessage } from '../application/process-message.js';
import { MessageReceivedHandler } from '../adapters/inbound/message-received-handler.js';
import { loadAssistantsFile } from '../adapters/outbound/assistants/assistants-file.js';
import { InMemoryAssistantRepo } from '../adapters/outbound/assistants/in-memory-assistant-repo.js';
import { InMemoryDedupStore } from '../adapters/outbound/dedup/in-memory-dedup-store.js';
import { RedisDedupStore } from '../adapters/outbound/dedup/redis-dedup-store.js';
import { InMemoryEventBus } from '../adapters/outbound/event-bus/in-memory-event-bus.js';
import { KafkaEventBus } from '../adapters/outbound/event-bus/kafka-event-bus.js';
import { NoopEventBus } from '../adapters/outbound/event-bus/noop-event-bus.js';
import { OfflineLlmClient } from '../adapters/outbound/llm/offline-llm-client.js';
import { OpenAiLlmClient } from '../adapters/outbound/llm/openai-llm-client.js';
import { InMemoryMemoryRepo } from '../adapters/outbound/memory/in-memory-memory-repo.js';
import { RedisMemoryRepo } from '../adapters/outbound/memory/redis-memory-repo.js';
import { PrometheusMetrics } from '../adapters/outbound/metrics/prometheus-metrics.js';
import { createRedisClient } from '../adapters/outbound/redis/redis-client.js';
import type { AssistantRepo } from '../domain/ports/assistant-repo.js';
import { systemClock, type Clock } from '../domain/ports/clock.js';
import type { DedupStore } from '../domain/ports/dedup-store.js';
import type { EventBus } from '../domain/ports/event-bus.js';
import type { LlmClient } from '../domain/ports/llm-client.js';
import type { Logger } from '../domain/ports/logger.js';
import type { MemoryRepo } from '../domain/ports/memory-repo.js';

import type { AppConfig } from './config.js';

/** Service identifiers of the container; only src/main binds and resolves them. */
export const TOKENS = {
  Config: Symbol.for('Config') as ServiceIdentifier<AppConfig>,
  Logger: Symbol.for('Logger') as ServiceIdentifier<Logger>,
  Metrics: Symbol.for('Metrics') as ServiceIdentifier<PrometheusMetrics>,
  Clock: Symbol.for('Clock') as ServiceIdentifier<Clock>,
  Redis: Symbol.for('Redis') as ServiceIdentifier<Redis | undefined>,
  DedupStore: Symbol.for('DedupStore') as ServiceIdentifier<DedupStore>,
  MemoryRepo: Symbol.for('MemoryRepo') as ServiceIdentifier<MemoryRepo>,
  AssistantRepo: Symbol.for('AssistantRepo') as ServiceIdentifier<AssistantRepo>,
  LlmClient: Symbol.for('LlmClient') as ServiceIdentifier<LlmClient>,
  EventBus: Symbol.for('EventBus') as ServiceIdentifier<EventBus>,
  ProcessMessage: Symbol.for('ProcessMessage') as ServiceIdentifier<ProcessMessage>,
  MessageReceivedHandler: Symbol.for('MessageReceivedHandler') as ServiceIdentifier<MessageReceivedHandler>,
} as const;

/** Adapters a caller (a test) supplies instead of the ones the configuration picks. */
export interface ContainerOverrides {
  llm?: LlmClient;
  eventBus?: EventBus;
  assistants?: AssistantRepo;
  clock?: Clock;
}

/**
 * Binds every port to the adapter the configuration picks. This is the only place that decides
 * which adapter serves which port. Every binding is a singleton built by a factory, so the
 * domain and application layers carry no decorators.
 */
export function buildContainer(config: AppConfig, logger: Logger, overrides: ContainerOverrides = {}): Container {
  const container = new Container({ defaultScope: 'Singleton' });

  container.bind(TOKENS.Config).toConstantValue(config);
  container.bind(TOKENS.Logger).toConstantValue(logger);
  container.bind(TOKENS.Clock).toConstantValue(overrides.clock ?? systemClock);
  container.bind(TOKENS.Metrics).toDynamicValue(() => new PrometheusMetrics());

  container.bind(TOKENS.Redis).toDynamicValue(() =>
    config.redis === undefined ? undefined : createRedisClient(config.redis.url, logger.child({ component: 'redis' })),
  );

  container.bind(TOKENS.DedupStore).toDynamicValue((context) => {
    const redis = context.get(TOKENS.Redis);
    if (redis === undefined || config.redis === undefined) {
      return new InMemoryDedupStore(context.get(TOKENS.Clock), config.dedup.ttlSeconds * 1000);
    }
    return new RedisDedupStore(redis, { keyPrefix: config.redis.keyPrefix, retentionSeconds: config.dedup.ttlSeconds });
  });

  container.bind(TOKENS.MemoryRepo).toDynamicValue((context) => {
    const limits = {
      maxTurnsPerConversation: config.memory.maxTurnsPerConversation,
      retentionSeconds: config.memory.retentionSeconds,
    };
    const redis = context.get(TOKENS.Redis);
    if (redis === undefined || config.redis === undefined) {
      return new InMemoryMemoryRepo(context.get(TOKENS.Clock), limits);
    }
    return new RedisMemoryRepo(redis, { keyPrefix: config.redis.keyPrefix, ...limits });
  });

  container
    .bind(TOKENS.AssistantRepo)
    .toDynamicValue(
      () => overrides.assistants ?? new InMemoryAssistantRepo(loadAssistantsFile(config.assistantsFile)),
    );

  container.bind(TOKENS.LlmClient).toDynamicValue(() => {
    if (overrides.llm !== undefined) {
      return overrides.llm;
    }
    return config.llm.provider === 'openai'
      ? new OpenAiLlmClient(config.llm, logger.child({ component: 'llm' }))
      : new OfflineLlmClient();
  });

  container.bind(TOKENS.EventBus).toDynamicValue((context) => {
    if (overrides.eventBus !== undefined) {
      return overrides.eventBus;
    }
    switch (config.eventBus) {
      case 'kafka': {
        const metrics = context.get(TOKENS.Metrics);
        return new KafkaEventBus(config.kafka, logger.child({ component: 'kafka' }), {
          onRedelivery: () => metrics.recordRetry('kafka_redelivery'),
        });
      }
      case 'in-memory':
        return new InMemoryEventBus({ receivedTopic: config.kafka.topics.received, redeliveryDelayMs: 200 });
      case 'noop':
        return new NoopEventBus(logger.child({ component: 'event-bus' }));
    }
  });

  container.bind(TOKENS.ProcessMessage).toDynamicValue(
    (context) =>
      new ProcessMessage(
        {
          dedup: context.get(TOKENS.DedupStore),
          memory: context.get(TOKENS.MemoryRepo),
          assistants: context.get(TOKENS.AssistantRepo),
          llm: context.get(TOKENS.LlmClient),
          bus: context.get(TOKENS.EventBus),
          clock: context.get(TOKENS.Clock),
          logger: logger.child({ component: 'process-message' }),
          metrics: context.get(TOKENS.Metrics),
        },
        {
          source: config.eventSource,
          claimLeaseMs: config.dedup.leaseMs,
          contextTurns: config.memory.contextTurns,
          historyConversations: config.memory.historyConversations,
          historyTurnsPerConversation: config.memory.historyTurnsPerConversation,
        },
      ),
  );

  container.bind(TOKENS.MessageReceivedHandler).toDynamicValue(
    (context) =>
      new MessageReceivedHandler({
        processMessage: context.get(TOKENS.ProcessMessage),
        bus: context.get(TOKENS.EventBus),
        logger: logger.child({ component: 'message-received' }),
        metrics: context.get(TOKENS.Metrics),
        clock: context.get(TOKENS.Clock),
        limits: config.limits,
      }),
  );

  return container;
}
