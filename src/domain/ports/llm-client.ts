import type { Assistant } from '../assistant.js';
import type { PromptMessage } from '../conversation.js';

export interface CompletionRequest {
  assistant: Assistant;
  /** The whole prompt: system prompt, history and the user's message last. */
  messages: PromptMessage[];
  /** Identifies the call in logs. */
  correlationId: string;
}

export interface Completion {
  text: string;
  /** Prompt plus completion tokens as the model reported them; 0 when none are counted. */
  tokensUsed: number;
  /** The model that produced the text, as reported by the server. */
  modelName: string;
}

/**
 * A chat-completion model. Promises: `complete` resolves with non-empty text or rejects.
 * Retries and per-call timeouts are the adapter's own. Leaves out: streaming, tool calls.
 * Errors: a ServiceError with code LLM_FAILED once the adapter's retries are spent.
 */
export interface LlmClient {
  complete(request: CompletionRequest): Promise<Completion>;
}
