/** Author role of a turn. */
export const TurnRole = {
  User: 'user',
  Assistant: 'assistant',
} as const;

export type TurnRole = (typeof TurnRole)[keyof typeof TurnRole];

/** One message of a conversation as kept in memory. */
export interface Turn {
  /** The inbound message_id for a user turn, the reply's message_id for an assistant turn. */
  messageId: string;
  role: TurnRole;
  text: string;
  /** ISO-8601 UTC. */
  timestamp: string;
}

/** Identifies a conversation; every lookup is scoped to the tenant. */
export interface ConversationKey {
  tenantId: string;
  conversationId: string;
}

/** Turns of the user's earlier conversations, newest conversation first. */
export interface UserHistory {
  conversations: Array<{ conversationId: string; turns: Turn[] }>;
}

/** One role-tagged message of the prompt sent to the language model. */
export interface PromptMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
