import type { ConversationKey, Turn, UserHistory } from '../conversation.js';

export interface UserHistoryQuery {
  tenantId: string;
  userId: string;
  /** The conversation in hand, whose turns come from `recentTurns` instead. */
  excludeConversationId: string;
  maxConversations: number;
  maxTurnsPerConversation: number;
}

/**
 * Conversation memory, scoped by tenant: the turns of each conversation, capped and kept for
 * a retention TTL that the adapter was built with, and for each user the conversations they had.
 *
 * Promises: `appendTurns` is idempotent per turn `messageId`, so a reprocessed message never
 * stores its turn twice. Turns come back oldest first. Nothing of one tenant is visible under
 * another tenant's id.
 * Errors: a ServiceError with code STORE_UNAVAILABLE (retryable) when the store fails.
 */
export interface MemoryRepo {
  appendTurns(key: ConversationKey, userId: string, turns: Turn[]): Promise<void>;

  /** Returns up to `limit` of the newest turns of a conversation, oldest first. */
  recentTurns(key: ConversationKey, limit: number): Promise<Turn[]>;

  /** Returns the newest turns of the user's other conversations, newest conversation first. */
  userHistory(query: UserHistoryQuery): Promise<UserHistory>;
}
