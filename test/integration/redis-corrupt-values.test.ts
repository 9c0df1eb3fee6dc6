import { randomUUID } from 'node:crypto';

import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RedisDedupStore } from '../../src/adapters/outbound/dedup/redis-dedup-store.js';
import { RedisMemoryRepo } from '../../src/adapters/outbound/memory/redis-memory-repo.js';
import { ErrorCode } from '../../src/domain/errors.js';
import { createTestRedis, deleteKeysWithPrefix, uniqueKeyPrefix } from '../contract/redis-test-support.js';

/**
 * A value in Redis that the adapters cannot read (written by another version, or by hand) must
 * raise a non-retryable STORE_UNAVAILABLE that names the key, so the inbound handler dead-letters
 * the message instead of retrying it until the TTL ends.
 */
describe('Redis adapters on corrupt values', () => {
  const prefix = uniqueKeyPrefix();
  let redis: Redis;

  beforeAll(() => {
    redis = createTestRedis();
  });

  afterAll(async () => {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  it.each([
    ['not JSON', 'm-1', '{"state": "done", '],
    ['an unknown state', 'm-2', '{"state": "archived"}'],
  ])('dedup claim rejects %s', async (_case, messageId, value) => {
    const store = new RedisDedupStore(redis, { keyPrefix: prefix, retentionSeconds: 60 });
    const key = `${prefix}dedup:tenant-a:${messageId}`;
    await redis.set(key, value);

    const claim = store.claim({ tenantId: 'tenant-a', messageId }, 10_000, randomUUID());

    await expect(claim).rejects.toMatchObject({ code: ErrorCode.StoreUnavailable, retryable: false });
    await expect(store.claim({ tenantId: 'tenant-a', messageId }, 10_000, randomUUID())).rejects.toThrow(key);
  });

  it('memory rejects a malformed turn', async () => {
    const repo = new RedisMemoryRepo(redis, { keyPrefix: prefix, maxTurnsPerConversation: 10, retentionSeconds: 60 });
    await redis.rpush(`${prefix}mem:tenant-a:conversation:conv-1:turns`, '{"role": "user"}');

    const read = repo.recentTurns({ tenantId: 'tenant-a', conversationId: 'conv-1' }, 10);

    await expect(read).rejects.toMatchObject({ code: ErrorCode.StoreUnavailable, retryable: false });
    await expect(repo.recentTurns({ tenantId: 'tenant-a', conversationId: 'conv-1' }, 10)).rejects.toThrow('a turn is malformed');
  });
});
