import { randomUUID } from 'node:crypto';

import { createServer, type Server, type Socket } from 'node:net';

import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';

import { RedisDedupStore } from '../../src/adapters/outbound/dedup/redis-dedup-store.js';
import { RedisMemoryRepo } from '../../src/adapters/outbound/memory/redis-memory-repo.js';
import {
  checkRedisHealth,
  closeRedis,
  connectRedis,
  createRedisClient,
} from '../../src/adapters/outbound/redis/redis-client.js';
import { TurnRole } from '../../src/domain/conversation.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import { CapturingLogger } from '../support/fakes.js';

import { reply } from './dedup-store.contract.js';
import { createTestRedis } from './redis-test-support.js';

/** Port 1 on loopback: nothing listens there, so every connect is refused at once. */
const CLOSED_PORT_URL = 'redis://127.0.0.1:1';
/** Bound on how long a store call may take to fail; the client's command timeout is 2 s. */
const FAILURE_BOUND_MS = 4_000;
const PASSWORD = 'pa55-not-to-be-shown';

const clients: Redis[] = [];
const servers: SilentServer[] = [];

afterEach(async () => {
  clients.splice(0).forEach((client) => client.disconnect());
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function client(url: string, logger = new CapturingLogger()): Redis {
  const redis = createRedisClient(url, logger);
  clients.push(redis);
  return redis;
}

/** A TCP server that accepts connections and never replies, like a hung Redis. */
interface SilentServer {
  url: string;
  close(): Promise<void>;
}

async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new Error('the silent server has no TCP address');
  }

  const silent: SilentServer = {
    url: `redis://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        sockets.forEach((socket) => socket.destroy());
        server.close(() => resolve());
      }),
  };
  servers.push(silent);
  return silent;
}

async function waitForEnd(redis: Redis): Promise<void> {
  if (redis.status === 'end') {
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client still ${redis.status} after 1000 ms`)), 1_000);
    redis.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Awaits `call`, expects STORE_UNAVAILABLE (retryable) and returns how long the failure took. */
async function expectStoreUnavailable(call: () => Promise<unknown>): Promise<number> {
  const startedAt = performance.now();
  let failure: unknown;
  try {
    await call();
  } catch (error) {
    failure = error;
  }
  const elapsedMs = performance.now() - startedAt;

  expect(failure).toBeInstanceOf(ServiceError);
  expect((failure as ServiceError).code).toBe(ErrorCode.StoreUnavailable);
  expect((failure as ServiceError).retryable).toBe(true);
  expect((failure as ServiceError).cause).toBeDefined();
  return elapsedMs;
}

const dedupKey = { tenantId: 'tenant-a', messageId: 'm-1' };
const conversationKey = { tenantId: 'tenant-a', conversationId: 'c-1' };
const turn = { messageId: 'm-1', role: TurnRole.User, text: 'hello', timestamp: '2026-01-15T12:00:00.000Z' };

describe('Redis adapters without Redis', () => {
  it('dedup store raises STORE_UNAVAILABLE', async () => {
    const store = new RedisDedupStore(client(CLOSED_PORT_URL), { keyPrefix: 'test:', retentionSeconds: 60 });

    const calls = [
      () => store.claim(dedupKey, 1_000, randomUUID()),
      () => store.saveReply(dedupKey, 'token', reply('m-1', 'answer')),
      () => store.markDone(dedupKey, reply('m-1', 'answer')),
      () => store.release(dedupKey, 'token'),
    ];
    for (const call of calls) {
      expect(await expectStoreUnavailable(call)).toBeLessThan(FAILURE_BOUND_MS);
    }
  });

  it('memory repo raises STORE_UNAVAILABLE', async () => {
    const repo = new RedisMemoryRepo(client(CLOSED_PORT_URL), {
      keyPrefix: 'test:',
      maxTurnsPerConversation: 10,
      retentionSeconds: 60,
    });

    const calls = [
      () => repo.appendTurns(conversationKey, 'user-1', [turn]),
      () => repo.recentTurns(conversationKey, 10),
      () =>
        repo.userHistory({
          tenantId: 'tenant-a',
          userId: 'user-1',
          excludeConversationId: 'c-1',
          maxConversations: 3,
          maxTurnsPerConversation: 3,
        }),
    ];
    for (const call of calls) {
      expect(await expectStoreUnavailable(call)).toBeLessThan(FAILURE_BOUND_MS);
    }
  });

  it('store calls time out on a silent server', async () => {
    const server = await startSilentServer();
    const store = new RedisDedupStore(client(server.url), { keyPrefix: 'test:', retentionSeconds: 60 });

    expect(await expectStoreUnavailable(() => store.claim(dedupKey, 1_000, randomUUID()))).toBeLessThan(FAILURE_BOUND_MS);
  });

  it('connection failure is logged once', async () => {
    const logger = new CapturingLogger();
    const redis = client(CLOSED_PORT_URL, logger);
    let reconnects = 0;
    redis.on('reconnecting', () => {
      reconnects += 1;
    });

    const store = new RedisDedupStore(redis, { keyPrefix: 'test:', retentionSeconds: 60 });

    await expectStoreUnavailable(() => store.claim(dedupKey, 1_000, randomUUID()));

    expect(reconnects).toBeGreaterThanOrEqual(2);
    const failures = logger.lines.filter((line) => line.level === 'error' || line.level === 'warn');
    expect(failures).toHaveLength(1);
    expect(failures[0]!.fields['redis_address']).toBe('127.0.0.1:1');
  });
});

describe('connectRedis', () => {
  it('fails fast naming host and port', async () => {
    const logger = new CapturingLogger();
    const redis = client(`redis://app:${PASSWORD}@127.0.0.1:1/0`, logger);
    const startedAt = performance.now();

    const failure = await connectRedis(redis, 10_000).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(performance.now() - startedAt).toBeLessThan(2_000);
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).code).toBe(ErrorCode.StoreUnavailable);
    expect((failure as ServiceError).message).toContain('127.0.0.1:1');
    expect((failure as ServiceError).message).not.toContain(PASSWORD);
    expect(JSON.stringify(logger.lines)).not.toContain(PASSWORD);
    // The client stops reconnecting once its socket has closed.
    await waitForEnd(redis);
    expect(redis.status).toBe('end');
  });

  it('gives up after the timeout', async () => {
    const server = await startSilentServer();
    const redis = client(server.url);
    const startedAt = performance.now();

    const failure = await connectRedis(redis, 300).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(performance.now() - startedAt).toBeLessThan(1_500);
    expect((failure as ServiceError).message).toContain(`127.0.0.1:${new URL(server.url).port}`);
    expect((failure as ServiceError).message).toContain('300 ms');
  });

  it('resolves once Redis is ready', async () => {
    const redis = createTestRedis();
    clients.push(redis);

    await connectRedis(redis, 5_000);

    expect(redis.status).toBe('ready');
    expect(await redis.ping()).toBe('PONG');
  });
});

describe('checkRedisHealth', () => {
  it('reports a reachable Redis as ok', async () => {
    const redis = createTestRedis();
    clients.push(redis);
    await connectRedis(redis, 5_000);

    const health = await checkRedisHealth(redis);

    expect(health.ok).toBe(true);
    expect(health.detail).toContain('PING');
  });

  it('reports an unreachable Redis as failing', async () => {
    const redis = client(CLOSED_PORT_URL);
    await connectRedis(redis, 1_000).catch(() => undefined);

    const health = await checkRedisHealth(redis);

    expect(health.ok).toBe(false);
    expect(health.detail).toContain('127.0.0.1:1');
  });
});

describe('closeRedis', () => {
  it('stops a reconnecting client at once', async () => {
    const redis = client(CLOSED_PORT_URL);
    void redis.ping().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(redis.status).not.toBe('ready');
    const startedAt = Date.now();

    await closeRedis(redis, 2_000);
    const reconnects: number[] = [];
    redis.on('reconnecting', () => reconnects.push(Date.now()));
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    expect(Date.now() - startedAt - 1_500).toBeLessThan(1_000);
    expect(reconnects).toEqual([]);
  });

  it('quits a connected client', async () => {
    const redis = createTestRedis();
    clients.push(redis);
    await connectRedis(redis, 5_000);
    const ended = new Promise((resolve) => redis.once('end', resolve));

    await closeRedis(redis, 2_000);
    await ended;

    expect(redis.status).toBe('end');
  });
});
