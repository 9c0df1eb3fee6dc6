import { randomUUID } from 'node:crypto';

import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InMemoryDedupStore } from '../../src/adapters/outbound/dedup/in-memory-dedup-store.js';
import { RedisDedupStore } from '../../src/adapters/outbound/dedup/redis-dedup-store.js';
import { connectRedis } from '../../src/adapters/outbound/redis/redis-client.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import type { DedupKey } from '../../src/domain/ports/dedup-store.js';
import { ManualClock } from '../support/fakes.js';

import { describeDedupStoreContract, reply } from './dedup-store.contract.js';
import { createTestRedis, deleteKeysWithPrefix, uniqueKeyPrefix, waitUntilExpired } from './redis-test-support.js';

describeDedupStoreContract('InMemoryDedupStore', async ({ retentionMs }) => {
  const clock = new ManualClock();
  return {
    store: new InMemoryDedupStore(clock, retentionMs),
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

describeDedupStoreContract('RedisDedupStore', async ({ retentionMs }) => {
  const keyPrefix = uniqueKeyPrefix();
  // The key layout documented on RedisDedupStore.
  const recordKey = (key: DedupKey): string =>
    `${keyPrefix}dedup:${encodeURIComponent(key.tenantId)}:${encodeURIComponent(key.messageId)}`;

  return {
    store: new RedisDedupStore(redis, { keyPrefix, retentionSeconds: retentionMs / 1000 }),
    expire: (key, ttlMs) => waitUntilExpired(redis, [recordKey(key)], ttlMs),
    close: () => deleteKeysWithPrefix(redis, keyPrefix),
  };
});

describe('RedisDedupStore records', () => {
  const keyPrefix = uniqueKeyPrefix();
  const store = (): RedisDedupStore => new RedisDedupStore(redis, { keyPrefix, retentionSeconds: 60 });

  afterAll(async () => {
    await deleteKeysWithPrefix(redis, keyPrefix);
  });

  it('claim with its own token renews the lease', async () => {
    const key = { tenantId: 'tenant-a', messageId: 'renew' };
    const recordKey = `${keyPrefix}dedup:tenant-a:renew`;
    const token = randomUUID();
    await store().claim(key, 1_000, token);

    const again = await store().claim(key, 60_000, token);

    expect(again).toEqual({ state: 'acquired', token });
    expect(await redis.pttl(recordKey)).toBeGreaterThan(30_000);
  });

  it('lease TTL gives way to the retention TTL', async () => {
    const key = { tenantId: 'tenant-a', messageId: 'ttl' };
    const recordKey = `${keyPrefix}dedup:tenant-a:ttl`;
    const claim = await store().claim(key, 5_000, randomUUID());

    const leaseTtl = await redis.pttl(recordKey);
    expect(leaseTtl).toBeGreaterThan(0);
    expect(leaseTtl).toBeLessThanOrEqual(5_000);

    await store().saveReply(key, claim.state === 'acquired' ? claim.token : '', reply('ttl', 'answer'));
    const retentionTtl = await redis.pttl(recordKey);
    expect(retentionTtl).toBeGreaterThan(5_000);
    expect(retentionTtl).toBeLessThanOrEqual(60_000);
  });

  it('unreadable record raises an error naming the key', async () => {
    const recordKey = `${keyPrefix}dedup:tenant-a:corrupt`;
    await redis.set(recordKey, '{"state":"replied"', 'PX', 60_000);

    const failure = await store()
      .claim({ tenantId: 'tenant-a', messageId: 'corrupt' }, 5_000, randomUUID())
      .then(
        () => undefined,
        (error: unknown) => error,
      );

    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).code).toBe(ErrorCode.StoreUnavailable);
    expect((failure as ServiceError).message).toContain(recordKey);
  });

  it('record without a reply raises an error naming the key', async () => {
    const recordKey = `${keyPrefix}dedup:tenant-a:no-reply`;
    await redis.set(recordKey, JSON.stringify({ state: 'done' }), 'PX', 60_000);

    const failure = await store()
      .claim({ tenantId: 'tenant-a', messageId: 'no-reply' }, 5_000, randomUUID())
      .then(
        () => undefined,
        (error: unknown) => error,
      );

    expect((failure as ServiceError).code).toBe(ErrorCode.StoreUnavailable);
    expect((failure as ServiceError).message).toContain(recordKey);
  });
});
