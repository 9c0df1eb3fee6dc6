import { randomUUID } from 'node:crypto';

import type { Assistant } from '../domain/assistant.js';
import { TurnRole, type Turn } from '../domain/conversation.js';
import { DeadLetterReason } from '../domain/dead-letter.js';
import { ErrorCode, ServiceError, describeError } from '../domain/errors.js';
import { EventName, PUBLISHED_EVENT_VERSION } from '../domain/event-envelope.js';
import {
  ReplySource,
  type MessageGeneratedEvent,
  type MessageReceivedEvent,
} from '../domain/events.js';
import { deriveReplyMessageId } from '../domain/ids.js';
import type { AssistantRepo } from '../domain/ports/assistant-repo.js';
import type { Clock } from '../domain/ports/clock.js';
import type { DedupKey, DedupStore } from '../domain/ports/dedup-store.js';
import type { EventBus } from '../domain/ports/event-bus.js';
import type { Completion, LlmClient } from '../domain/ports/llm-client.js';
import type { Logger } from '../domain/ports/logger.js';
import type { MemoryRepo } from '../domain/ports/memory-repo.js';
import type { Metrics } from '../domain/ports/metrics.js';

import { buildPrompt } from './build-prompt.js';

export interface ProcessMessageSettings {
  /** Written into the `source` field of every published event. */
  source: string;
  /** How long a claim stays "processing" before another worker may take the message over. */
  claimLeaseMs: number;
  /** How many of the conversation's newest turns go into the prompt. */
  contextTurns: number;
  /** How many of the user's earlier conversations go into the prompt. */
  historyConversations: number;
  /** How many of the newest turns of each earlier conversation go into the prompt. */
  historyTurnsPerConversation: number;
}

export interface ProcessMessageDependencies {
  dedup: DedupStore;
  memory: MemoryRepo;
  assistants: AssistantRepo;
  llm: LlmClient;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export type RejectionReason =
  | typeof DeadLetterReason.UnknownTenant
  | typeof DeadLetterReason.UnknownAssistant;

export type ProcessOutcome =
  /** A reply was published; `replayed` when it was stored by an earlier, interrupted attempt. */
  | { kind: 'processed'; reply: MessageGeneratedEvent; replayed: boolean }
  /** The message already has a reply, so nothing was published. */
  | { kind: 'duplicate'; reply: MessageGeneratedEvent | undefined }
  /** The message cannot get a reply. The caller dead-letters it or reports the reason. */
  | { kind: 'rejected'; reason: RejectionReason; detail: string };

/**
 * Processes one validated inbound message: claim it, load the assistant, build the context, ask
 * the model, store the reply, save both turns, publish the reply, then mark the message done.
 *
 * Throws a retryable ServiceError when a store or the bus fails, or when another worker has claimed
 * the message (MESSAGE_IN_PROGRESS): the caller must deliver the message again later. A failed
 * model call does not throw: the user gets the assistant's configured error reply.
 */
export class ProcessMessage {
  constructor(
    private readonly deps: ProcessMessageDependencies,
    private readonly settings: ProcessMessageSettings,
  ) {}

  /**
   * `claimToken` identifies this caller's claim. Pass the same token when retrying the same
   * delivery, so that a claim that reached the store although its reply was lost is taken up again
   * at once instead of blocking the retry until the lease ends.
   */
  async execute(event: MessageReceivedEvent, claimToken: string = randomUUID()): Promise<ProcessOutcome> {
    const startedAt = this.deps.clock.now().getTime();
    const key: DedupKey = { tenantId: event.tenant_id, messageId: event.data.message_id };
    const claim = await this.deps.dedup.claim(key, this.settings.claimLeaseMs, claimToken);

    switch (claim.state) {
      case 'done':
        return { kind: 'duplicate', reply: claim.reply };
      case 'in_progress':
        throw new ServiceError(
          ErrorCode.MessageInProgress,
          `message ${event.data.message_id} is being processed by another worker`,
          { retryable: true },
        );
      case 'replied':
        await this.finish(key, event, claim.reply);
        return { kind: 'processed', reply: claim.reply, replayed: true };
      case 'acquired':
        break;
    }

    const lookup = await this.deps.assistants.find(event.tenant_id, event.data.assistant_id);
    if (lookup.status !== 'found') {
      await this.deps.dedup.release(key, claim.token);
      return {
        kind: 'rejected',
        reason: lookup.status,
        detail:
          lookup.status === 'unknown_tenant'
            ? `tenant ${event.tenant_id} has no assistants configured`
            : `tenant ${event.tenant_id} has no assistant ${event.data.assistant_id}`,
      };
    }

    try {
      const generated = await this.generateReply(event, lookup.assistant, startedAt);
      const saved = await this.deps.dedup.saveReply(key, claim.token, generated);
      const reply = saved.stored ? generated : saved.reply;

      await this.finish(key, event, reply);
      return { kind: 'processed', reply, replayed: !saved.stored };
    } catch (error) {
      await this.releaseQuietly(key, claim.token, event);
      throw error;
    }
  }

  private async generateReply(
    event: MessageReceivedEvent,
    assistant: Assistant,
    startedAt: number,
  ): Promise<MessageGeneratedEvent> {
    const conversationKey = { tenantId: event.tenant_id, conversationId: event.data.conversation_id };
    const [recentTurns, history] = await Promise.all([
      this.deps.memory.recentTurns(conversationKey, this.settings.contextTurns),
      this.deps.memory.userHistory({
        tenantId: event.tenant_id,
        userId: event.data.user_id,
        excludeConversationId: event.data.conversation_id,
        maxConversations: this.settings.historyConversations,
        maxTurnsPerConversation: this.settings.historyTurnsPerConversation,
      }),
    ]);

    const prompt = buildPrompt({
      assistant,
      history,
      recentTurns: recentTurns.filter((turn) => turn.messageId !== event.data.message_id),
      userText: event.data.text,
    });

    const answer = await this.askModel(event, assistant, prompt.messages);
    const finishedAt = this.deps.clock.now();

    return {
      event_name: EventName.MessageGenerated,
      version: PUBLISHED_EVENT_VERSION,
      timestamp: finishedAt.toISOString(),
      tenant_id: event.tenant_id,
      correlation_id: event.correlation_id,
      source: this.settings.source,
      data: {
        conversation_id: event.data.conversation_id,
        message_id: deriveReplyMessageId(event.tenant_id, event.data.message_id),
        text: answer.completion.text,
        assistant_id: assistant.id,
        processing_time_ms: Math.max(0, finishedAt.getTime() - startedAt),
        tokens_used: answer.completion.tokensUsed,
        model_name: answer.completion.modelName,
        has_historical_context: prompt.hasHistoricalContext,
        meta: {
          reply_source: answer.source,
          ...(answer.fallbackReason === undefined ? {} : { fallback_reason: answer.fallbackReason }),
          locale: assistant.locale,
          ...(event.data.meta === undefined ? {} : { request_meta: event.data.meta }),
        },
        in_reply_to: event.data.message_id,
        user_id: event.data.user_id,
        channel: event.data.channel,
      },
    };
  }

  /** Calls the model; on failure returns the assistant's error reply so the user still gets one. */
  private async askModel(
    event: MessageReceivedEvent,
    assistant: Assistant,
    messages: Parameters<LlmClient['complete']>[0]['messages'],
  ): Promise<{ completion: Completion; source: ReplySource; fallbackReason?: string }> {
    const startedAt = this.deps.clock.now().getTime();
    try {
      const completion = await this.deps.llm.complete({
        assistant,
        messages,
        correlationId: event.correlation_id,
      });
      this.deps.metrics.recordLlmCall(
        'ok',
        this.deps.clock.now().getTime() - startedAt,
        completion.tokensUsed,
      );
      return { completion, source: ReplySource.Llm };
    } catch (error) {
      this.deps.metrics.recordLlmCall('error', this.deps.clock.now().getTime() - startedAt, 0);
      this.deps.logger.error('LLM call failed; sending the assistant error reply', {
        ...logIds(event),
        error: describeError(error),
        error_code: error instanceof ServiceError ? error.code : undefined,
      });
      return {
        completion: { text: assistant.errorReply, tokensUsed: 0, modelName: 'fallback' },
        source: ReplySource.Fallback,
        fallbackReason: 'llm_error',
      };
    }
  }

  /** Saves both turns, publishes the reply and marks the message done; each step is idempotent. */
  private async finish(
    key: DedupKey,
    event: MessageReceivedEvent,
    reply: MessageGeneratedEvent,
  ): Promise<void> {
    const turns: Turn[] = [
      {
        messageId: event.data.message_id,
        role: TurnRole.User,
        text: event.data.text,
        timestamp: event.timestamp,
      },
      {
        messageId: reply.data.message_id,
        role: TurnRole.Assistant,
        text: reply.data.text,
        timestamp: reply.timestamp,
      },
    ];
    await this.deps.memory.appendTurns(
      { tenantId: event.tenant_id, conversationId: event.data.conversation_id },
      event.data.user_id,
      turns,
    );
    await this.deps.bus.publishGenerated(reply);
    await this.deps.dedup.markDone(key, reply);
  }

  private async releaseQuietly(key: DedupKey, token: string, event: MessageReceivedEvent): Promise<void> {
    try {
      await this.deps.dedup.release(key, token);
    } catch (error) {
      // The lease still expires on its own; the redelivery waits for it.
      this.deps.logger.warn('could not release the claim after a failure', {
        ...logIds(event),
        error: describeError(error),
      });
    }
  }
}

/** Returns the ids that every log line about a message carries. */
export function logIds(event: MessageReceivedEvent): Record<string, string> {
  return {
    tenant_id: event.tenant_id,
    correlation_id: event.correlation_id,
    conversation_id: event.data.conversation_id,
    message_id: event.data.message_id,
  };
}
