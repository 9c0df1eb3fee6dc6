import type { KafkaConfig, RetryOptions, SASLOptions } from 'kafkajs';

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
export const FETCH_MAX_WAIT_MS = 500;

/**
 * Builds the kafkajs client configuration (brokers, timeouts, TLS, SASL and retries) from the
 * event bus settings. Logging is left to the caller.
 */
export function clientConfig(settings: KafkaEventBusSettings): KafkaConfig {
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
