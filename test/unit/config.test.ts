import { describe, expect, it } from 'vitest';

import { ConfigurationError, loadConfig } from '../../src/main/config.js';

function configError(env: Record<string, string>): ConfigurationError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});

    expect(config.eventBus).toBe('kafka');
    expect(config.kafka.brokers).toEqual(['localhost:9092']);
    expect(config.kafka.topics).toEqual({
      received: 'conversation.message_received',
      generated: 'conversation.message_generated',
      deadLetter: 'conversation.message_received.dlq',
    });
    expect(config.kafka.consumerGroup).toBe('ia-conversational');
    expect(config.dedup.ttlSeconds).toBe(3600);
    expect(config.redis).toBeUndefined();
    expect(config.llm.provider).toBe('offline');
    expect(config.eventSource).toBe('ia-conversational');
  });

  it('picks the event bus from ENABLE_KAFKA and IN_MEMORY_EVENT_BUS', () => {
    expect(loadConfig({ ENABLE_KAFKA: 'false' }).eventBus).toBe('noop');
    expect(loadConfig({ ENABLE_KAFKA: 'false', IN_MEMORY_EVENT_BUS: 'true' }).eventBus).toBe('in-memory');
    expect(configError({ IN_MEMORY_EVENT_BUS: 'true' }).problems[0]).toContain('IN_MEMORY_EVENT_BUS');
  });

  it('splits a comma-separated broker list', () => {
    const config = loadConfig({ KAFKA_BROKER: 'kafka-1:9092, kafka-2:9092' });

    expect(config.kafka.brokers).toEqual(['kafka-1:9092', 'kafka-2:9092']);
  });

  it('lists every invalid variable at once', () => {
    const error = configError({
      HTTP_PORT: 'eighty',
      ENABLE_KAFKA: 'maybe',
      KAFKA_BROKER: 'no-port',
      DEDUP_TTL_SECONDS: '-5',
      LOG_LEVEL: 'verbose',
    });

    const variables = error.problems.map((problem) => problem.split(':')[0]).sort();
    expect(variables).toEqual(['DEDUP_TTL_SECONDS', 'ENABLE_KAFKA', 'HTTP_PORT', 'KAFKA_BROKER', 'LOG_LEVEL']);
    expect(error.message).toContain('"eighty"');
  });

  it('never shows a secret value', () => {
    const error = configError({ REDIS_URL: 'http://user:hunter2@cache:6379' });

    expect(error.message).toContain('REDIS_URL');
    expect(error.message).not.toContain('hunter2');
  });

  it('chooses openai when a base URL is set', () => {
    const config = loadConfig({ LLM_BASE_URL: 'http://127.0.0.1:11434/v1' });

    expect(config.llm.provider).toBe('openai');
  });

  it('rejects a lease shorter than the model calls', () => {
    const error = configError({ LLM_TIMEOUT_MS: '30000', LLM_MAX_RETRIES: '2', DEDUP_LEASE_MS: '60000' });

    expect(error.problems.join('\n')).toContain('DEDUP_LEASE_MS');
  });

  it('requires SASL credentials with a mechanism', () => {
    const error = configError({ KAFKA_SASL_MECHANISM: 'plain' });

    expect(error.problems.join('\n')).toContain('KAFKA_SASL_USERNAME');
  });
});
