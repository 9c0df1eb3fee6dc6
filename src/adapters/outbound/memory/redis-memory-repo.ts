import type { Redis } from 'ioredis';
import { z } from 'zod';

import { TurnRole, type ConversationKey, type Turn, type UserHistory } from '../../../domain/conversation.js';
import type { MemoryRepo, UserHistoryQuery } from '../../../domain/ports/memory-repo.js';
import {
  LuaScript,
  callRedis,
  parseStoredJson,
  secondsToTtlMs,
} from '../redis/redis-store-support.js';

export interface RedisMemoryRepoOptions {
  /** Prefix of every key, e.g. `ia:`, so that several services can share one Redis. */
  keyPrefix: string;
  /** Turns kept per conversation; older turns are dropped first. */
  maxTurnsPerConversation: number;
  /** How long a conversation is kept after its last turn, in seconds (fractions allowed). */
  retentionSeconds: number;
}

const turnSchema = z.object({
  messageId: z.string(),
  role: z.enum([TurnRole.User, TurnRole.Assistant]),
  text: z.string(),
  timestamp: z.string(),
});

/** Conversations read per round trip while userHistory looks for ones that still have turns. */
const HISTORY_PAGE_SIZE = 16;

/**
 * Appends the turns whose message id is new, trims the conversation to the cap and refreshes
 * the TTLs, all in one atomic step.
 *
 * KEYS: turns list, message-ids set, the user's conversations sorted set.
 * ARGV: cap, retention in ms, conversation id, then pairs of message id and turn JSON.
 *
 * The message-ids set contains exactly the ids of the turns still in the list. Ids of trimmed
 * turns are removed with them, so the set never outgrows the cap. The cost: a message whose turns
 * were trimmed is stored again if it is processed again after `cap` newer turns, which its
 * DedupStore record prevents once the message is done.
 *
 * The user's conversations are scored by last activity in Redis server milliseconds, kept
 * strictly above the newest score so that two appends in the same millisecond keep their order.
 * Entries older than the retention are removed, since their turns have expired.
 */
const APPEND_TURNS_SCRIPT = new LuaScript(`
local turns_key, ids_key, user_key = KEYS[1], KEYS[2], KEYS[3]
local cap = tonumber(ARGV[1])
local retention_ms = tonumber(ARGV[2])

for i = 4, #ARGV, 2 do
  if redis.call('SADD', ids_key, ARGV[i]) == 1 then
    redis.call('RPUSH', turns_key, ARGV[i + 1])
  end
end

local overflow = redis.call('LLEN', turns_key) - cap
if overflow > 0 then
  for _, turn in ipairs(redis.call('LRANGE', turns_key, 0, overflow - 1)) do
    redis.call('SREM', ids_key, cjson.decode(turn).messageId)
  end
  redis.call('LTRIM', turns_key, overflow, -1)
end
redis.call('PEXPIRE', turns_key, retention_ms)
redis.call('PEXPIRE', ids_key, retention_ms)

local time = redis.call('TIME')
local score = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local newest = redis.call('ZREVRANGE', user_key, 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then
  score = tonumber(newest[2]) + 1
end
redis.call('ZADD', user_key, score, ARGV[3])
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', string.format('(%.0f', score - retention_ms))
redis.call('PEXPIRE', user_key, retention_ms)
return 1
`);

/**
 * MemoryRepo on Redis, shared by every worker. All keys start with `{keyPrefix}mem:{tenantId}:`
 * and every id in a key is URI-encoded, so no two tenants' keys can collide:
 * - `conversation:{conversationId}:turns`: list of turn JSON, oldest first, capped;
 * - `conversation:{conversationId}:message-ids`: set of the message ids in that list;
 * - `user:{userId}:conversations`: sorted set of the user's conversation ids by last activity.
 * Each append resets the TTL of all three keys to the retention.
 */
export class RedisMemoryRepo implements MemoryRepo {
  private readonly retentionMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisMemoryRepoOptions,
  ) {
    this.retentionMs = secondsToTtlMs(options.retentionSeconds);
  }

  async appendTurns(key: ConversationKey, userId: string, turns: Turn[]): Promise<void> {
    if (turns.length === 0) {
      return;
    }

    const keys = this.conversationKeys(key);
    const turnArgs = turns.flatMap((turn) => [turn.messageId, serializeTurn(turn)]);
    await callRedis('appendTurns script', keys.turns, () =>
      APPEND_TURNS_SCRIPT.run(
        this.redis,
        [keys.turns, keys.messageIds, this.userKey(key.tenantId, userId)],
        [this.options.maxTurnsPerConversation, this.retentionMs, key.conversationId, ...turnArgs],
      ),
    );
  }

  async recentTurns(key: ConversationKey, limit: number): Promise<Turn[]> {
    if (limit <= 0) {
      return [];
    }

    const turnsKey = this.conversationKeys(key).turns;
    const raw = await callRedis('LRANGE', turnsKey, () => this.redis.lrange(turnsKey, -limit, -1));
    return raw.map((item) => parseTurn(turnsKey, item));
  }

  async userHistory(query: UserHistoryQuery): Promise<UserHistory> {
    if (query.maxConversations <= 0 || query.maxTurnsPerConversation <= 0) {
      return { conversations: [] };
    }

    const userKey = this.userKey(query.tenantId, query.userId);
    const conversations: UserHistory['conversations'] = [];
    // An append between two pages can move a conversation to the front; read each one once.
    const seen = new Set<string>([query.excludeConversationId]);

    for (let start = 0; conversations.length < query.maxConversations; start += HISTORY_PAGE_SIZE) {
      const page = await callRedis('ZREVRANGE', userKey, () =>
        this.redis.zrevrange(userKey, start, start + HISTORY_PAGE_SIZE - 1),
      );
      const candidates = page.filter((conversationId) => !seen.has(conversationId));
      candidates.forEach((conversationId) => seen.add(conversationId));

      const turnLists = await Promise.all(
        candidates.map((conversationId) =>
          this.recentTurns({ tenantId: query.tenantId, conversationId }, query.maxTurnsPerConversation),
        ),
      );
      for (const [index, turns] of turnLists.entries()) {
        // Conversations whose turns expired before their entry was pruned come back empty.
        if (turns.length > 0 && conversations.length < query.maxConversations) {
          conversations.push({ conversationId: candidates[index]!, turns });
        }
      }

      if (page.length < HISTORY_PAGE_SIZE) {
        break;
      }
    }
    return { conversations };
  }

  private conversationKeys(key: ConversationKey): { turns: string; messageIds: string } {
    const base = `${this.tenantPrefix(key.tenantId)}conversation:${encodeURIComponent(key.conversationId)}`;
    return { turns: `${base}:turns`, messageIds: `${base}:message-ids` };
  }

  private userKey(tenantId: string, userId: string): string {
    return `${this.tenantPrefix(tenantId)}user:${encodeURIComponent(userId)}:conversations`;
  }

  private tenantPrefix(tenantId: string): string {
    return `${this.options.keyPrefix}mem:${encodeURIComponent(tenantId)}:`;
  }
}

/** Writes exactly the Turn fields, so that nothing else a caller put on the object is stored. */
function serializeTurn(turn: Turn): string {
  const stored: Turn = {
    messageId: turn.messageId,
    role: turn.role,
    text: turn.text,
    timestamp: turn.timestamp,
  };
  return JSON.stringify(stored);
}

function parseTurn(turnsKey: string, raw: string): Turn {
  return parseStoredJson(turnsKey, raw, turnSchema, 'a turn');
}
