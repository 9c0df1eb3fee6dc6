import { createHash } from 'node:crypto';

import type { Redis } from 'ioredis';
import type { z } from 'zod';

import { ErrorCode, ServiceError, describeError, isServiceError } from '../../../domain/errors.js';

/**
 * Runs one Redis call of a store and converts any failure (connection refused or lost, command
 * timeout, script error) into the retryable STORE_UNAVAILABLE error that the store ports promise.
 */
export async function callRedis<T>(operation: string, key: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isServiceError(error)) {
      throw error;
    }
    throw new ServiceError(
      ErrorCode.StoreUnavailable,
      `Redis ${operation} on key ${key} failed: ${describeError(error)}`,
      { retryable: true, cause: error },
    );
  }
}

/**
 * Error for a value at `key` that this service cannot read, e.g. written by another program or
 * by an incompatible version. Not retryable: the same value comes back until its TTL ends.
 */
export function invalidStoredValue(key: string, problem: string, cause?: unknown): ServiceError {
  return new ServiceError(
    ErrorCode.StoreUnavailable,
    `the value stored at Redis key ${key} is invalid: ${problem}`,
    { retryable: false, cause },
  );
}

/** Lists each schema violation of a stored value on one line, e.g. `reply.data.text: Invalid input`. */
export function describeSchemaIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length === 0 ? 'value' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

/**
 * Parses a JSON value read from Redis and validates it against `schema`. `subject` names the
 * value in the error, e.g. "the record" or "a turn". Throws the error of invalidStoredValue.
 */
export function parseStoredJson<Schema extends z.ZodType>(
  key: string,
  raw: string,
  schema: Schema,
  subject: string,
): z.output<Schema> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw invalidStoredValue(key, `${subject} is not JSON`, error);
  }

  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw invalidStoredValue(key, `${subject} is malformed: ${describeSchemaIssues(parsed.error)}`, parsed.error);
  }
  return parsed.data;
}

/** Converts a TTL in seconds into the positive whole milliseconds that PX and PEXPIRE expect. */
export function secondsToTtlMs(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/**
 * A Lua script sent by SHA1 with EVALSHA, and with its full text through EVAL when the server
 * does not have it cached (NOSCRIPT, e.g. after a restart or SCRIPT FLUSH). Redis runs a script
 * atomically: no other command runs between its steps.
 */
export class LuaScript {
  private readonly sha1: string;

  constructor(private readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) {
        throw error;
      }
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}
