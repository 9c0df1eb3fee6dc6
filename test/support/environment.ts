import { randomUUID } from 'node:crypto';

/** Redis used by the tests; every test uses its own key prefix. */
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Kafka brokers used by the tests; every test uses its own topics and consumer groups. */
export const TEST_KAFKA_BROKERS = (process.env['TEST_KAFKA_BROKER'] ?? '127.0.0.1:9092').split(',');

/** A short unique suffix for topic names, consumer groups and key prefixes. */
export function uniqueSuffix(): string {
  return randomUUID().slice(0, 8);
}
