import { Redis } from 'ioredis';

import { ErrorCode, ServiceError, describeError } from '../../../domain/errors.js';
import type { ComponentHealth } from '../../../domain/ports/event-bus.js';
import type { Logger } from '../../../domain/ports/logger.js';

/** Time allowed for the TCP (and TLS) connect of each attempt. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Time after which any command fails, including time spent queued while reconnecting. */
const COMMAND_TIMEOUT_MS = 2_000;
/** Reconnect attempts a queued command waits through before it fails. */
const MAX_RETRIES_PER_REQUEST = 2;
const RECONNECT_BASE_DELAY_MS = 100;
const RECONNECT_MAX_DELAY_MS = 5_000;
/** While Redis stays unreachable, one reminder line per interval instead of one per attempt. */
const STILL_DOWN_LOG_INTERVAL_MS = 60_000;
const HEALTH_PING_TIMEOUT_MS = 1_000;

/**
 * Creates a client for a redis:// or rediss:// URL. It connects on `connectRedis` or on its
 * first command, and logs connection changes to `logger` with the host and port only.
 *
 * A dead Redis turns into errors instead of hangs: every command fails after
 * COMMAND_TIMEOUT_MS, and a command queued while the connection is down fails after
 * MAX_RETRIES_PER_REQUEST reconnect attempts. Reconnects never stop (capped exponential backoff),
 * so the service recovers by itself once Redis is back.
 */
export function createRedisClient(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    // Commands sent during a short reconnect wait for it instead of failing at once. When Redis
    // stays down, the two bounds above still end the wait.
    enableOfflineQueue: true,
    retryStrategy: reconnectDelayMs,
  });
  watchConnection(redis, logger);
  return redis;
}

/**
 * Connects `redis` and resolves once it accepts commands. Rejects with STORE_UNAVAILABLE,
 * naming host:port but never the credentials, on the first connection error or after
 * `timeoutMs`. On failure it disconnects the client, so that no reconnect timer keeps retrying
 * or keeps the process alive. Calling connectRedis again starts a new attempt.
 */
export async function connectRedis(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') {
    return;
  }

  try {
    await waitUntilReady(redis, timeoutMs);
  } catch (error) {
    redis.disconnect();
    throw new ServiceError(
      ErrorCode.StoreUnavailable,
      `could not connect to Redis at ${redisAddress(redis)}: ${describeError(error)}. ` +
        'Check REDIS_URL and that Redis is running and accepts connections from this host.',
      { retryable: true, cause: error },
    );
  }
}

/**
 * Closes the client for shutdown: QUIT when connected (bounded by `timeoutMs`), then a hard
 * disconnect that also cancels any reconnect timer. Never throws, so that a Redis that is down
 * cannot hold the process open past its shutdown.
 */
export async function closeRedis(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') {
    try {
      await withTimeout(redis.quit(), timeoutMs, 'QUIT');
    } catch {
      // The hard disconnect below closes the socket anyway.
    }
  }
  redis.disconnect();
}

/** Reports whether Redis replies to PING within HEALTH_PING_TIMEOUT_MS. Never throws. */
export async function checkRedisHealth(redis: Redis): Promise<ComponentHealth> {
  const address = redisAddress(redis);
  if (redis.status !== 'ready') {
    return { ok: false, detail: `Redis at ${address} is not connected (status ${redis.status})` };
  }

  const startedAt = performance.now();
  try {
    await withTimeout(redis.ping(), HEALTH_PING_TIMEOUT_MS, 'PING');
  } catch (error) {
    return { ok: false, detail: `Redis at ${address} failed PING: ${describeError(error)}` };
  }
  const elapsedMs = Math.round(performance.now() - startedAt);
  return { ok: true, detail: `Redis at ${address} answered PING in ${elapsedMs} ms` };
}

/** Returns host:port of the client's server, for messages that must not show the URL and its password. */
export function redisAddress(redis: Redis): string {
  return `${redis.options.host ?? 'localhost'}:${redis.options.port ?? 6379}`;
}

function reconnectDelayMs(attempt: number): number {
  const backoff = Math.min(RECONNECT_BASE_DELAY_MS * 2 ** (attempt - 1), RECONNECT_MAX_DELAY_MS);
  // Jitter spreads the reconnects of many workers after a shared Redis restarts.
  return backoff + Math.floor(Math.random() * RECONNECT_BASE_DELAY_MS);
}

function waitUntilReady(redis: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (): void => settle(undefined);
    const onError = (error: Error): void => settle(error);
    const onEnd = (): void => settle(new Error('the client was disconnected'));
    const timer = setTimeout(() => settle(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);

    function settle(error: Error | undefined): void {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      redis.off('end', onEnd);
      if (error === undefined) {
        resolve();
      } else {
        reject(error);
      }
    }

    redis.on('ready', onReady);
    redis.on('error', onError);
    redis.on('end', onEnd);
    if (redis.status === 'wait' || redis.status === 'end') {
      // The outcome arrives through the events above, so the promise itself is not needed.
      redis.connect().catch(() => undefined);
    }
  });
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, operation: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${operation} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Logs one line per change of connection state (connected, failed or lost, back), not one per
 * reconnect attempt: while Redis stays down, a reminder with the attempt count goes out at most
 * once per STILL_DOWN_LOG_INTERVAL_MS.
 */
function watchConnection(redis: Redis, logger: Logger): void {
  const address = redisAddress(redis);
  let state: 'starting' | 'up' | 'down' = 'starting';
  let downSince = 0;
  let lastReportAt = 0;
  let reconnectAttempts = 0;
  let lastError = '';

  const goDown = (): void => {
    state = 'down';
    downSince = Date.now();
    lastReportAt = downSince;
    reconnectAttempts = 0;
  };

  redis.on('ready', () => {
    if (state === 'down') {
      logger.info('reconnected to Redis', {
        redis_address: address,
        down_ms: Date.now() - downSince,
        reconnect_attempts: reconnectAttempts,
      });
    } else if (state === 'starting') {
      logger.info('connected to Redis', { redis_address: address });
    }
    state = 'up';
  });

  redis.on('error', (error: Error) => {
    lastError = describeError(error);
    if (state === 'down') {
      return;
    }
    logger.error('Redis connection failed; reconnecting in the background', {
      redis_address: address,
      error: lastError,
    });
    goDown();
  });

  redis.on('close', () => {
    if (state !== 'up') {
      return;
    }
    logger.warn('Redis connection closed; reconnecting in the background', { redis_address: address });
    goDown();
  });

  redis.on('reconnecting', () => {
    reconnectAttempts += 1;
    const now = Date.now();
    if (state !== 'down' || now - lastReportAt < STILL_DOWN_LOG_INTERVAL_MS) {
      return;
    }
    lastReportAt = now;
    logger.warn('Redis still unreachable', {
      redis_address: address,
      down_ms: now - downSince,
      reconnect_attempts: reconnectAttempts,
      error: lastError,
    });
  });

  redis.on('end', () => {
    logger.info('Redis client disconnected', { redis_address: address });
    state = 'starting';
  });
}
