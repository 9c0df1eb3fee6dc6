import type { ConversationKey, Turn, UserHistory } from '../../../domain/conversation.js';
import type { Clock } from '../../../domain/ports/clock.js';
import type { MemoryRepo, UserHistoryQuery } from '../../../domain/ports/memory-repo.js';

export interface MemoryLimits {
  /** Turns kept per conversation; older turns are dropped first. */
  maxTurnsPerConversation: number;
  /** How long a conversation is kept after its last turn, in seconds. */
  retentionSeconds: number;
}

interface StoredConversation {
  turns: Turn[];
  messageIds: Set<string>;
  lastActivityMs: number;
}

/**
 * Per-process MemoryRepo for tests and single-instance runs without Redis. Its contents are
 * lost on restart and not shared between processes.
 */
export class InMemoryMemoryRepo implements MemoryRepo {
  private readonly conversations = new Map<string, StoredConversation>();
  /** tenant and user → conversation ids, oldest activity first (each append moves its id last). */
  private readonly userConversations = new Map<string, Set<string>>();

  constructor(
    private readonly clock: Clock,
    private readonly limits: MemoryLimits,
  ) {}

  async appendTurns(key: ConversationKey, userId: string, turns: Turn[]): Promise<void> {
    const now = this.clock.now().getTime();
    const id = conversationId(key);
    const conversation = this.liveConversation(id, now) ?? {
      turns: [],
      messageIds: new Set<string>(),
      lastActivityMs: now,
    };

    for (const turn of turns) {
      if (conversation.messageIds.has(turn.messageId)) {
        continue;
      }
      conversation.messageIds.add(turn.messageId);
      conversation.turns.push({ ...turn });
    }
    const overflow = conversation.turns.length - this.limits.maxTurnsPerConversation;
    if (overflow > 0) {
      // Like RedisMemoryRepo, keep only the ids of the turns still stored, so the set stays capped.
      for (const dropped of conversation.turns.splice(0, overflow)) {
        conversation.messageIds.delete(dropped.messageId);
      }
    }
    conversation.lastActivityMs = now;
    this.conversations.set(id, conversation);

    const userKey = JSON.stringify([key.tenantId, userId]);
    const owned = this.userConversations.get(userKey) ?? new Set<string>();
    // Re-inserting moves the id to the end, so two appends at the same clock time keep their order.
    owned.delete(key.conversationId);
    owned.add(key.conversationId);
    this.userConversations.set(userKey, owned);
  }

  async recentTurns(key: ConversationKey, limit: number): Promise<Turn[]> {
    const conversation = this.liveConversation(conversationId(key), this.clock.now().getTime());
    if (conversation === undefined || limit <= 0) {
      return [];
    }
    return conversation.turns.slice(-limit).map((turn) => ({ ...turn }));
  }

  async userHistory(query: UserHistoryQuery): Promise<UserHistory> {
    const owned = this.userConversations.get(JSON.stringify([query.tenantId, query.userId]));
    if (owned === undefined || query.maxConversations <= 0) {
      return { conversations: [] };
    }

    const newestFirst = [...owned]
      .reverse()
      .filter((conversation) => conversation !== query.excludeConversationId);

    const conversations: UserHistory['conversations'] = [];
    for (const conversation of newestFirst) {
      if (conversations.length >= query.maxConversations) {
        break;
      }
      const turns = await this.recentTurns(
        { tenantId: query.tenantId, conversationId: conversation },
        query.maxTurnsPerConversation,
      );
      if (turns.length > 0) {
        conversations.push({ conversationId: conversation, turns });
        continue;
      }
      // An expired conversation is forgotten here, so the user's set does not keep every id ever seen.
      if (!this.conversations.has(conversationId({ tenantId: query.tenantId, conversationId: conversation }))) {
        owned.delete(conversation);
      }
    }
    return { conversations };
  }

  private liveConversation(id: string, now: number): StoredConversation | undefined {
    const conversation = this.conversations.get(id);
    if (conversation !== undefined && now - conversation.lastActivityMs >= this.limits.retentionSeconds * 1000) {
      this.conversations.delete(id);
      return undefined;
    }
    return conversation;
  }
}

function conversationId(key: ConversationKey): string {
  return JSON.stringify([key.tenantId, key.conversationId]);
}
