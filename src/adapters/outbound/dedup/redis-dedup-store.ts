import type { Redis } from 'ioredis';
import { z } from 'zod';

import { ErrorCode, ServiceError } from '../../../domain/errors.js';
import { messageGeneratedSchema, type MessageGeneratedEvent } from '../../../domain/events.js';
import type {
  ClaimResult,
  DedupKey,
  DedupStore,
  SaveReplyResult,
} from '../../../domain/ports/dedup-store.js';
import {
  LuaScript,
  callRedis,
  invalidStoredValue,
  parseStoredJson,
  secondsToTtlMs,
} from '../redis/redis-store-support.js';

export interface RedisDedupStoreOptions {
  /** Prefix of every key, e.g. `ia:`, so that several services can share one Redis. */
  keyPrefix: string;
  /** How long a replied or done record is kept, in seconds (fractions allowed). */
  retentionSeconds: number;
}

const recordSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('processing'), token: z.string() }),
  z.object({ state: z.literal('replied'), reply: messageGeneratedSchema }),
  z.object({ state: z.literal('done'), reply: messageGeneratedSchema }),
]);

type DedupRecord = z.output<typeof recordSchema>;

/**
 * How many times `claim` tries again when the record it found expired before it could be read.
 * Each retry means another worker's lease ended in between, so more than one is rare.
 */
const MAX_CLAIM_ATTEMPTS = 3;

/**
 * Stores the reply if the record is still this worker's lease, compared as the exact string
 * `leaseRecord` writes. Returns {'stored'}, {'missing'} or {'found', current record}.
 */
const SAVE_REPLY_SCRIPT = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return {'stored'}
end
if not current then
  return {'missing'}
end
return {'found', current}
`);

/** Renews the record's expiry only while it is still the given lease; returns 1 when renewed. */
const RENEW_SCRIPT = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

/** Deletes the record only while it is still the given lease; returns the number of keys deleted. */
const RELEASE_SCRIPT = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

const saveReplyReplySchema = z.union([
  z.tuple([z.literal('stored')]),
  z.tuple([z.literal('missing')]),
  z.tuple([z.literal('found'), z.string()]),
]);

/**
 * DedupStore on Redis, shared by every worker. One string key per tenant and message id,
 * `{keyPrefix}dedup:{tenantId}:{messageId}` with both ids URI-encoded so that no two tenants'
 * keys can collide. Its value is a JSON record: `processing` with the lease token and a TTL of
 * the lease, then `replied` or `done` with the reply and a TTL of the retention.
 *
 * `claim` is one `SET NX PX` command; `saveReply` and `release` are Lua scripts that compare the
 * stored lease and write in one atomic step.
 */
export class RedisDedupStore implements DedupStore {
  private readonly retentionMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisDedupStoreOptions,
  ) {
    this.retentionMs = secondsToTtlMs(options.retentionSeconds);
  }

  async claim(key: DedupKey, leaseMs: number, token: string): Promise<ClaimResult> {
    const redisKey = this.redisKey(key);
    const lease = leaseRecord(token);
    const ttlMs = Math.max(1, Math.ceil(leaseMs));

    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt += 1) {
      const set = await callRedis('SET NX', redisKey, () => this.redis.set(redisKey, lease, 'PX', ttlMs, 'NX'));
      if (set === 'OK') {
        return { state: 'acquired', token };
      }

      const current = await callRedis('GET', redisKey, () => this.redis.get(redisKey));
      if (current === lease) {
        // Our own lease, left by an earlier attempt whose reply was lost (a timeout while Redis
        // reconnected, say). Renew it unless it changed in between.
        const renewed = await callRedis('renew script', redisKey, () =>
          RENEW_SCRIPT.run(this.redis, [redisKey], [lease, String(ttlMs)]),
        );
        if (renewed === 1) {
          return { state: 'acquired', token };
        }
        continue;
      }
      if (current !== null) {
        return claimResultOf(parseRecord(redisKey, current));
      }
    }
    return { state: 'in_progress' };
  }

  async saveReply(key: DedupKey, token: string, reply: MessageGeneratedEvent): Promise<SaveReplyResult> {
    const redisKey = this.redisKey(key);
    const replied = JSON.stringify({ state: 'replied', reply } satisfies DedupRecord);
    const result = await callRedis('saveReply script', redisKey, () =>
      SAVE_REPLY_SCRIPT.run(this.redis, [redisKey], [leaseRecord(token), replied, this.retentionMs]),
    );

    const parsed = saveReplyReplySchema.safeParse(result);
    if (!parsed.success) {
      throw invalidStoredValue(redisKey, `the saveReply script returned ${JSON.stringify(result)}`);
    }
    const [outcome, current] = parsed.data;
    if (outcome === 'stored') {
      return { stored: true };
    }
    if (current !== undefined) {
      const record = parseRecord(redisKey, current);
      if (record.state !== 'processing') {
        return { stored: false, reply: record.reply };
      }
    }
    throw new ServiceError(
      ErrorCode.ClaimLost,
      `the claim on message ${key.messageId} of tenant ${key.tenantId} ended before its reply was stored`,
      { retryable: true },
    );
  }

  async markDone(key: DedupKey, reply: MessageGeneratedEvent): Promise<void> {
    const redisKey = this.redisKey(key);
    const done = JSON.stringify({ state: 'done', reply } satisfies DedupRecord);
    await callRedis('SET', redisKey, () => this.redis.set(redisKey, done, 'PX', this.retentionMs));
  }

  async release(key: DedupKey, token: string): Promise<void> {
    const redisKey = this.redisKey(key);
    await callRedis('release script', redisKey, () =>
      RELEASE_SCRIPT.run(this.redis, [redisKey], [leaseRecord(token)]),
    );
  }

  private redisKey(key: DedupKey): string {
    const tenant = encodeURIComponent(key.tenantId);
    return `${this.options.keyPrefix}dedup:${tenant}:${encodeURIComponent(key.messageId)}`;
  }
}

/** Builds the exact string of a lease. The scripts compare it byte for byte, so build it only here. */
function leaseRecord(token: string): string {
  return JSON.stringify({ state: 'processing', token } satisfies DedupRecord);
}

function parseRecord(redisKey: string, raw: string): DedupRecord {
  return parseStoredJson(redisKey, raw, recordSchema, 'the record');
}

function claimResultOf(record: DedupRecord): ClaimResult {
  switch (record.state) {
    case 'processing':
      return { state: 'in_progress' };
    case 'replied':
      return { state: 'replied', reply: record.reply };
    case 'done':
      return { state: 'done', reply: record.reply };
  }
}
