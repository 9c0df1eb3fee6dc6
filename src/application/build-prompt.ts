import type { Assistant } from '../domain/assistant.js';
import type { PromptMessage, Turn, UserHistory } from '../domain/conversation.js';

export interface PromptParts {
  assistant: Assistant;
  history: UserHistory;
  recentTurns: Turn[];
  userText: string;
}

export interface BuiltPrompt {
  messages: PromptMessage[];
  /** True exactly when turns of the user's earlier conversations went into the prompt. */
  hasHistoricalContext: boolean;
}

/**
 * Builds the chat prompt: the assistant's system prompt, then the user's earlier conversations
 * as a second system message, then this conversation's recent turns, then the new user message.
 */
export function buildPrompt(parts: PromptParts): BuiltPrompt {
  const messages: PromptMessage[] = [{ role: 'system', content: parts.assistant.systemPrompt }];

  const historyText = formatHistory(parts.history);
  if (historyText !== undefined) {
    messages.push({ role: 'system', content: historyText });
  }

  for (const turn of parts.recentTurns) {
    messages.push({ role: turn.role, content: turn.text });
  }
  messages.push({ role: 'user', content: parts.userText });

  return { messages, hasHistoricalContext: historyText !== undefined };
}

function formatHistory(history: UserHistory): string | undefined {
  const blocks = history.conversations
    .filter((conversation) => conversation.turns.length > 0)
    .map((conversation) => {
      const lines = conversation.turns.map((turn) => `${turn.role}: ${turn.text}`);
      return `Conversation ${conversation.conversationId}:\n${lines.join('\n')}`;
    });

  if (blocks.length === 0) {
    return undefined;
  }
  return [
    "Earlier conversations with this user, newest first. Use them only as background; answer the user's new message.",
    ...blocks,
  ].join('\n\n');
}
