import { randomUUID } from 'node:crypto';

import { beforeEach, describe, expect, it } from 'vitest';

import { ProcessMessage, type ProcessMessageSettings } from '../../src/application/process-message.js';
import { InMemoryAssistantRepo } from '../../src/adapters/outbound/assistants/in-memory-assistant-repo.js';
import { InMemoryDedupStore } from '../../src/adapters/outbound/dedup/in-memory-dedup-store.js';
import { InMemoryEventBus } from '../../src/adapters/outbound/event-bus/in-memory-event-bus.js';
import { OfflineLlmClient } from '../../src/adapters/outbound/llm/offline-llm-client.js';
import { InMemoryMemoryRepo } from '../../src/adapters/outbound/memory/in-memory-memory-repo.js';
import { DEFAULT_REPLIES } from '../../src/domain/assistant.js';
import { decodeMessageReceived } from '../../src/domain/decode-message-received.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import type { MessageReceivedEvent } from '../../src/domain/events.js';
import { messageGeneratedSchema } from '../../src/domain/events.js';
import { deriveReplyMessageId } from '../../src/domain/ids.js';
import type { CompletionRequest, LlmClient } from '../../src/domain/ports/llm-client.js';
import { CapturingLogger, CountingMetrics, ManualClock, TEST_ASSISTANTS, receivedEvent, type ReceivedEventOptions } from '../support/fakes.js';

const SETTINGS: ProcessMessageSettings = {
  source: 'ia-conversational',
  claimLeaseMs: 60_000,
  contextTurns: 10,
  historyConversations: 3,
  historyTurnsPerConversation: 4,
};

function event(options: ReceivedEventOptions = {}): MessageReceivedEvent {
  const result = decodeMessageReceived(
    JSON.stringify(receivedEvent(options)),
    { maxEventBytes: 65_536, maxTextLength: 4096, maxMetaBytes: 4096 },
    () => 'corr-generated',
  );
  if (!result.ok) throw new Error(result.detail);
  return result.event;
}

/** LLM fake that records its requests and answers with a numbered text. */
class RecordingLlm implements LlmClient {
  readonly requests: CompletionRequest[] = [];
  failures = 0;

  async complete(request: CompletionRequest) {
    this.requests.push(request);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new ServiceError(ErrorCode.LlmFailed, 'model unavailable', { retryable: true });
    }
    return { text: `answer ${this.requests.length}`, tokensUsed: 42, modelName: 'test-model' };
  }
}

describe('ProcessMessage', () => {
  let clock: ManualClock;
  let dedup: InMemoryDedupStore;
  let memory: InMemoryMemoryRepo;
  let bus: InMemoryEventBus;
  let llm: RecordingLlm;
  let logger: CapturingLogger;
  let useCase: ProcessMessage;

  beforeEach(() => {
    clock = new ManualClock();
    dedup = new InMemoryDedupStore(clock, 3_600_000);
    memory = new InMemoryMemoryRepo(clock, { maxTurnsPerConversation: 50, retentionSeconds: 86_400 });
    bus = new InMemoryEventBus({ receivedTopic: 'in', redeliveryDelayMs: 10 });
    llm = new RecordingLlm();
    logger = new CapturingLogger();
    useCase = build(llm);
  });

  function build(client: LlmClient): ProcessMessage {
    return new ProcessMessage(
      {
        dedup,
        memory,
        assistants: new InMemoryAssistantRepo(TEST_ASSISTANTS),
        llm: client,
        bus,
        clock,
        logger,
        metrics: new CountingMetrics(),
      },
      SETTINGS,
    );
  }

  it('publishes one reply with the contract fields', async () => {
    const inbound = event({ messageId: 'm-1', correlationId: 'corr-1', meta: { wa_phone_id: '123' } });

    const outcome = await useCase.execute(inbound);

    expect(outcome.kind).toBe('processed');
    expect(bus.generated).toHaveLength(1);
    const reply = bus.generated[0]!;
    expect(messageGeneratedSchema.safeParse(reply).success).toBe(true);
    expect(reply.tenant_id).toBe('tenant-a');
    expect(reply.correlation_id).toBe('corr-1');
    expect(reply.source).toBe('ia-conversational');
    expect(reply.data.message_id).toBe(deriveReplyMessageId('tenant-a', 'm-1'));
    expect(reply.data.in_reply_to).toBe('m-1');
    expect(reply.data.text).toBe('answer 1');
    expect(reply.data.tokens_used).toBe(42);
    expect(reply.data.model_name).toBe('test-model');
    expect(reply.data.user_id).toBe('user-1');
    expect(reply.data.channel).toBe('whatsapp');
    expect(reply.data.has_historical_context).toBe(false);
    expect(reply.data.meta.request_meta).toEqual({ wa_phone_id: '123' });
  });

  it('drops a redelivered message', async () => {
    const inbound = event({ messageId: 'm-1' });

    await useCase.execute(inbound);
    const second = await useCase.execute(inbound);

    expect(second.kind).toBe('duplicate');
    expect(bus.generated).toHaveLength(1);
    expect(llm.requests).toHaveLength(1);
  });

  it('answers the same message id per tenant', async () => {
    await useCase.execute(event({ tenantId: 'tenant-a', messageId: 'shared' }));
    const other = await useCase.execute(event({ tenantId: 'tenant-b', messageId: 'shared' }));

    expect(other.kind).toBe('processed');
    expect(bus.generated.map((reply) => reply.tenant_id)).toEqual(['tenant-a', 'tenant-b']);
    expect(bus.generated[0]!.data.message_id).not.toBe(bus.generated[1]!.data.message_id);
  });

  it('rejects an unknown tenant without calling the model', async () => {
    const outcome = await useCase.execute(event({ tenantId: 'tenant-zz' }));

    expect(outcome).toMatchObject({ kind: 'rejected', reason: 'unknown_tenant' });
    expect(llm.requests).toHaveLength(0);
    expect(bus.generated).toHaveLength(0);
  });

  it('rejects an unknown assistant without calling the model', async () => {
    const outcome = await useCase.execute(event({ assistantId: 'nobody' }));

    expect(outcome).toMatchObject({ kind: 'rejected', reason: 'unknown_assistant' });
    expect(llm.requests).toHaveLength(0);
  });

  it('puts recent turns and the system prompt into the prompt', async () => {
    await useCase.execute(event({ messageId: 'm-1', text: 'primeira' }));
    await useCase.execute(event({ messageId: 'm-2', text: 'segunda' }));

    const prompt = llm.requests[1]!.messages;
    expect(prompt[0]).toEqual({ role: 'system', content: 'Você é o suporte da empresa A.' });
    expect(prompt.slice(1).map((message) => message.content)).toEqual(['primeira', 'answer 1', 'segunda']);
  });

  it('uses earlier conversations as historical context', async () => {
    await useCase.execute(event({ conversationId: 'old', messageId: 'm-1', text: 'pedido 42 atrasado' }));

    const outcome = await useCase.execute(event({ conversationId: 'new', messageId: 'm-2', text: 'e agora?' }));

    expect(outcome.kind).toBe('processed');
    if (outcome.kind !== 'processed') return;
    expect(outcome.reply.data.has_historical_context).toBe(true);
    const historyMessage = llm.requests[1]!.messages[1]!;
    expect(historyMessage.role).toBe('system');
    expect(historyMessage.content).toContain('pedido 42 atrasado');
  });

  it('keeps another user or tenant out of the history', async () => {
    await useCase.execute(event({ conversationId: 'c-1', userId: 'user-2', messageId: 'm-1' }));
    await useCase.execute(event({ tenantId: 'tenant-b', conversationId: 'c-2', userId: 'user-1', messageId: 'm-2' }));

    const outcome = await useCase.execute(event({ conversationId: 'c-3', userId: 'user-1', messageId: 'm-3' }));

    expect(outcome.kind).toBe('processed');
    if (outcome.kind !== 'processed') return;
    expect(outcome.reply.data.has_historical_context).toBe(false);
    expect(llm.requests[2]!.messages).toHaveLength(2);
  });

  it('sends the assistant error reply when the model fails', async () => {
    llm.failures = 1;

    const outcome = await useCase.execute(event({ messageId: 'm-1' }));

    expect(outcome.kind).toBe('processed');
    expect(bus.generated[0]!.data.text).toBe(DEFAULT_REPLIES['pt-BR'].errorReply);
    expect(bus.generated[0]!.data.meta).toMatchObject({ reply_source: 'fallback', fallback_reason: 'llm_error' });
    expect(logger.lines.some((line) => line.level === 'error' && line.fields['message_id'] === 'm-1')).toBe(true);
  });

  it('uses the English default error reply for an en assistant', async () => {
    llm.failures = 1;

    await useCase.execute(event({ tenantId: 'tenant-b', messageId: 'm-1' }));

    expect(bus.generated[0]!.data.text).toBe(DEFAULT_REPLIES.en.errorReply);
  });

  it('republishes the stored reply after a crash before done', async () => {
    const inbound = event({ messageId: 'm-1' });
    const failingBus = new InMemoryEventBus({ receivedTopic: 'in', redeliveryDelayMs: 10 });
    failingBus.publishGenerated = async () => {
      throw new ServiceError(ErrorCode.PublishFailed, 'broker down', { retryable: true });
    };
    const crashing = new ProcessMessage(
      { dedup, memory, assistants: new InMemoryAssistantRepo(TEST_ASSISTANTS), llm, bus: failingBus, clock, logger, metrics: new CountingMetrics() },
      SETTINGS,
    );
    await expect(crashing.execute(inbound)).rejects.toThrow('broker down');

    const retried = await useCase.execute(inbound);

    expect(retried).toMatchObject({ kind: 'processed', replayed: true });
    expect(llm.requests).toHaveLength(1);
    expect(bus.generated).toHaveLength(1);
    expect(bus.generated[0]!.data.text).toBe('answer 1');
    expect(await memory.recentTurns({ tenantId: 'tenant-a', conversationId: 'conv-1' }, 10)).toHaveLength(2);
  });

  it('reports a message in progress as retryable', async () => {
    const inbound = event({ messageId: 'm-1' });
    await dedup.claim({ tenantId: 'tenant-a', messageId: 'm-1' }, 60_000, randomUUID());

    const attempt = useCase.execute(inbound);

    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.MessageInProgress, retryable: true });
  });

  it('takes over a message whose lease expired', async () => {
    await dedup.claim({ tenantId: 'tenant-a', messageId: 'm-1' }, 1000, randomUUID());
    clock.advance(1001);

    const outcome = await useCase.execute(event({ messageId: 'm-1' }));

    expect(outcome.kind).toBe('processed');
  });

  it('works with the offline model', async () => {
    const offline = build(new OfflineLlmClient());

    const outcome = await offline.execute(event({ text: 'oi' }));

    expect(outcome.kind).toBe('processed');
    if (outcome.kind !== 'processed') return;
    expect(outcome.reply.data.text).toBe('Olá! Aqui é o suporte A.');
    expect(outcome.reply.data.model_name).toBe('offline-faq');
  });
});
