import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InMemoryMemoryRepo } from '../../src/adapters/outbound/memory/in-memory-memory-repo.js';
import { RedisMemoryRepo } from '../../src/adapters/outbound/memory/redis-memory-repo.js';
import { connectRedis } from '../../src/adapters/outbound/redis/redis-client.js';
import { TurnRole, type ConversationKey } from '../../src/domain/conversation.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import { ManualClock } from '../support/fakes.js';

import { describeMemoryRepoContract } from './memory-repo.contract.js';
import { createTestRedis, deleteKeysWithPrefix, uniqueKeyPrefix, waitUntilExpired } from './redis-test-support.js';

describeMemoryRepoContract('InMemoryMemoryRepo', async ({ maxTurnsPerConversation, retentionMs }) => {
  const clock = new ManualClock();
  return {
    repo: new InMemoryMemoryRepo(clock, { maxTurnsPerConversation, retentionSeconds: retentionMs / 1000 }),
    expire: async (_key, ttlMs) => clock.advance(ttlMs),
    close: async () => undefined,
  };
});

let redis: Redis;

beforeAll(async () => {
  redis = createTestRedis();
  await connectRedis(redis, 5_000);
});

afterAll(async () => {
  await redis.quit();
});

describeMemoryRepoContract('RedisMemoryRepo', async ({ maxTurnsPerConversation, retentionMs }) => {
  const keyPrefix = uniqueKeyPrefix();
  // The key layout documented on RedisMemoryRepo.
  const conversationKeys = (key: ConversationKey): string[] => {
    const base = `${keyPrefix}mem:${encodeURIComponent(key.tenantId)}:conversation:${encodeURIComponent(key.conversationId)}`;
    return [`${base}:turns`, `${base}:message-ids`];
  };

  return {
    repo: new RedisMemoryRepo(redis, { keyPrefix, maxTurnsPerConversation, retentionSeconds: retentionMs / 1000 }),
    expire: (key, ttlMs) => waitUntilExpired(redis, conversationKeys(key), ttlMs),
    close: () => deleteKeysWithPrefix(redis, keyPrefix),
  };
});

describe('RedisMemoryRepo keys', () => {
  const keyPrefix = uniqueKeyPrefix();
  const base = `${keyPrefix}mem:tenant-a:`;

  afterAll(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
  });

  it('message-id set shrinks with the list', async () => {
    const repo = new RedisMemoryRepo(redis, { keyPrefix, maxTurnsPerConversation: 3, retentionSeconds: 60 });
    const turns = Array.from({ length: 10 }, (_, index) => ({
      messageId: `m-${index}`,
      role: TurnRole.User,
      text: `text ${index}`,
      timestamp: '2026-01-15T12:00:00.000Z',
    }));

    for (const turn of turns) {
      await repo.appendTurns({ tenantId: 'tenant-a', conversationId: 'c-1' }, 'user-1', [turn]);
    }

    const storedIds = await redis.smembers(`${base}conversation:c-1:message-ids`);
    expect(storedIds.sort()).toEqual(['m-7', 'm-8', 'm-9']);
    expect(await redis.llen(`${base}conversation:c-1:turns`)).toBe(3);
  });

  it('every key gets the retention TTL', async () => {
    const repo = new RedisMemoryRepo(redis, { keyPrefix, maxTurnsPerConversation: 3, retentionSeconds: 30 });

    await repo.appendTurns({ tenantId: 'tenant-a', conversationId: 'c-2' }, 'user-2', [
      { messageId: 'm-1', role: TurnRole.User, text: 'hello', timestamp: '2026-01-15T12:00:00.000Z' },
    ]);

    for (const key of [
      `${base}conversation:c-2:turns`,
      `${base}conversation:c-2:message-ids`,
      `${base}user:user-2:conversations`,
    ]) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(25_000);
      expect(ttl, key).toBeLessThanOrEqual(30_000);
    }
  });

  it('unreadable turn raises an error naming the key', async () => {
    const repo = new RedisMemoryRepo(redis, { keyPrefix, maxTurnsPerConversation: 3, retentionSeconds: 30 });
    const turnsKey = `${base}conversation:c-3:turns`;
    await redis.rpush(turnsKey, '{"messageId":"m-1"}');

    const failure = await repo.recentTurns({ tenantId: 'tenant-a', conversationId: 'c-3' }, 5).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).code).toBe(ErrorCode.StoreUnavailable);
    expect((failure as ServiceError).message).toContain(turnsKey);
  });
});
