import type { Redis } from 'ioredis';

import { createRedisClient } from '../../src/adapters/outbound/redis/redis-client.js';
import { TEST_REDIS_URL, uniqueSuffix } from '../support/environment.js';
import { CapturingLogger } from '../support/fakes.js';

const POLL_INTERVAL_MS = 20;
/** Slack on top of a TTL before a key that is still there fails the test. */
const EXPIRY_SLACK_MS = 2_000;

/** Creates a client on the test Redis with the options the service uses. */
export function createTestRedis(): Redis {
  return createRedisClient(TEST_REDIS_URL, new CapturingLogger());
}

/** Returns a key prefix that no other test or test run uses. */
export function uniqueKeyPrefix(): string {
  return `test:${uniqueSuffix()}:`;
}

/** Resolves once none of `keys` exists; rejects if one outlives `ttlMs` plus the slack. */
export async function waitUntilExpired(redis: Redis, keys: string[], ttlMs: number): Promise<void> {
  const deadline = Date.now() + ttlMs + EXPIRY_SLACK_MS;
  while ((await redis.exists(...keys)) > 0) {
    if (Date.now() > deadline) {
      throw new Error(`keys ${keys.join(', ')} still exist ${ttlMs + EXPIRY_SLACK_MS} ms after a TTL of ${ttlMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** Deletes every key that starts with `prefix`. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 200);
    if (keys.length > 0) {
      await redis.del(...keys);
    }
    cursor = next;
  } while (cursor !== '0');
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
