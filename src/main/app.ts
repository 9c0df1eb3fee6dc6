import { createAppRouter } from '../adapters/inbound/trpc/router.js';
import { startHttpServer } from '../adapters/inbound/http/http-server.js';
import { KafkaEventBus } from '../adapters/outbound/event-bus/kafka-event-bus.js';
import { checkRedisHealth, closeRedis, connectRedis } from '../adapters/outbound/redis/redis-client.js';
import { describeError } from '../domain/errors.js';
import type { ComponentHealth } from '../domain/ports/event-bus.js';
import type { Logger } from '../domain/ports/logger.js';

import type { AppConfig } from './config.js';
import { TOKENS, buildContainer, type ContainerOverrides } from './container.js';

/** Time allowed for Redis to respond at start-up before the service gives up. */
const REDIS_STARTUP_TIMEOUT_MS = 5000;

/** Time allowed for a graceful QUIT at shutdown before the connection is dropped. */
const REDIS_QUIT_TIMEOUT_MS = 2000;

export interface RunningApp {
  /** The HTTP port actually bound (useful when the configuration asked for port 0). */
  httpPort: number;
  /** Stops consuming, finishes the message in hand, flushes sends, closes every connection. */
  stop(): Promise<void>;
}

/**
 * Starts the service: connects Redis and Kafka (failing fast when either is unreachable), starts
 * consuming `conversation.message_received`, and serves the tRPC API, health and metrics.
 */
export async function startApp(config: AppConfig, logger: Logger, overrides: ContainerOverrides = {}): Promise<RunningApp> {
  const container = buildContainer(config, logger, overrides);
  const redis = container.get(TOKENS.Redis);
  const bus = container.get(TOKENS.EventBus);
  const metrics = container.get(TOKENS.Metrics);
  const closers: Array<{ name: string; close: () => Promise<void> }> = [];

  try {
    if (redis === undefined) {
      logger.warn('REDIS_URL is not set: dedup and memory are in-memory, per process, and lost on restart');
    } else {
      await connectRedis(redis, REDIS_STARTUP_TIMEOUT_MS);
      closers.push({ name: 'redis', close: () => closeRedis(redis, REDIS_QUIT_TIMEOUT_MS) });
    }

    if (config.eventBus === 'noop') {
      logger.info('Kafka is disabled (ENABLE_KAFKA=false): no events are consumed or published');
    }
    if (bus instanceof KafkaEventBus) {
      await bus.connect();
    }
    closers.unshift({ name: 'event bus', close: () => bus.stop() });

    const handler = container.get(TOKENS.MessageReceivedHandler);
    await bus.consume(handler.handle);

    const health = async () => {
      const components: Record<string, ComponentHealth> = { event_bus: await bus.checkHealth() };
      components['redis'] =
        redis === undefined ? { ok: true, detail: 'not configured (in-memory stores)' } : await checkRedisHealth(redis);
      return {
        live: true,
        ready: Object.values(components).every((component) => component.ok),
        components,
      };
    };

    const router = createAppRouter({
      processMessage: container.get(TOKENS.ProcessMessage),
      assistants: container.get(TOKENS.AssistantRepo),
      memory: container.get(TOKENS.MemoryRepo),
      health,
      logger: logger.child({ component: 'api' }),
      metrics,
      limits: config.limits,
      eventSource: 'api',
    });
    const server = await startHttpServer({
      host: config.http.host,
      port: config.http.port,
      router,
      health,
      metricsRegistry: metrics.registry,
      logger: logger.child({ component: 'http' }),
    });
    closers.unshift({ name: 'http server', close: () => server.close() });

    logger.info('service started', {
      http_port: server.port,
      event_bus: config.eventBus,
      llm_provider: config.llm.provider,
      stores: redis === undefined ? 'in-memory' : 'redis',
    });
    return { httpPort: server.port, stop: onceOnly(() => closeAll(closers, logger)) };
  } catch (error) {
    await closeAll(closers, logger);
    if (redis !== undefined && closers.every((closer) => closer.name !== 'redis')) {
      redis.disconnect();
    }
    throw error;
  }
}

async function closeAll(closers: Array<{ name: string; close: () => Promise<void> }>, logger: Logger): Promise<void> {
  for (const closer of closers) {
    try {
      await closer.close();
    } catch (error) {
      logger.error('failed to close a component during shutdown', { component: closer.name, error: describeError(error) });
    }
  }
}

function onceOnly(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= action();
    return running;
  };
}
