import { beforeEach, describe, expect, it } from 'vitest';

import { ProcessMessage } from '../../src/application/process-message.js';
import { MessageReceivedHandler } from '../../src/adapters/inbound/message-received-handler.js';
import { InMemoryAssistantRepo } from '../../src/adapters/outbound/assistants/in-memory-assistant-repo.js';
import { InMemoryDedupStore } from '../../src/adapters/outbound/dedup/in-memory-dedup-store.js';
import { InMemoryEventBus } from '../../src/adapters/outbound/event-bus/in-memory-event-bus.js';
import { OfflineLlmClient } from '../../src/adapters/outbound/llm/offline-llm-client.js';
import { InMemoryMemoryRepo } from '../../src/adapters/outbound/memory/in-memory-memory-repo.js';
import { systemClock } from '../../src/domain/ports/clock.js';
import type { DedupStore } from '../../src/domain/ports/dedup-store.js';
import type { MemoryRepo } from '../../src/domain/ports/memory-repo.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import { CapturingLogger, CountingMetrics, TEST_ASSISTANTS, receivedEvent } from '../support/fakes.js';

const LIMITS = { maxEventBytes: 65_536, maxTextLength: 200, maxMetaBytes: 1024 };

describe('in-memory flow: received in, generated out', () => {
  let bus: InMemoryEventBus;
  let logger: CapturingLogger;
  let metrics: CountingMetrics;
  let memory: MemoryRepo;

  beforeEach(() => {
    bus = new InMemoryEventBus({ receivedTopic: 'conversation.message_received', redeliveryDelayMs: 5 });
    logger = new CapturingLogger();
    metrics = new CountingMetrics();
    memory = new InMemoryMemoryRepo(systemClock, { maxTurnsPerConversation: 50, retentionSeconds: 3600 });
  });

  async function start(
    memoryRepo: MemoryRepo = memory,
    dedup: DedupStore = new InMemoryDedupStore(systemClock, 3_600_000),
  ): Promise<void> {
    const processMessage = new ProcessMessage(
      {
        dedup,
        memory: memoryRepo,
        assistants: new InMemoryAssistantRepo(TEST_ASSISTANTS),
        llm: new OfflineLlmClient(),
        bus,
        clock: systemClock,
        logger,
        metrics,
      },
      { source: 'ia-conversational', claimLeaseMs: 10_000, contextTurns: 10, historyConversations: 2, historyTurnsPerConversation: 4 },
    );
    const handler = new MessageReceivedHandler({
      processMessage,
      bus,
      logger,
      metrics,
      clock: systemClock,
      limits: LIMITS,
      retry: { initialDelayMs: 1, maxDelayMs: 5, maxUnexpectedAttempts: 3 },
    });
    await bus.consume(handler.handle);
  }

  function send(event: Record<string, unknown> | string, key = 'conv-1'): void {
    bus.deliver(typeof event === 'string' ? event : JSON.stringify(event), key);
  }

  it('answers each message once, in order per conversation', async () => {
    await start();
    const first = receivedEvent({ messageId: 'm-1', text: 'oi' });
    const second = receivedEvent({ messageId: 'm-2', text: 'qual o horário?' });

    send(first);
    send(second);
    send(first);
    await bus.idle();

    expect(bus.generated.map((reply) => reply.data.in_reply_to)).toEqual(['m-1', 'm-2']);
    expect(bus.generated[1]!.data.text).toBe('Atendemos de segunda a sexta, das 8h às 18h.');
    expect(metrics.messages.map((entry) => entry.outcome)).toEqual(['processed', 'processed', 'duplicate']);
  });

  it('dead-letters bad events and keeps answering', async () => {
    await start();

    send('not json at all');
    send({ ...receivedEvent(), version: '2.0' });
    send(receivedEvent({ text: 'x'.repeat(201) }));
    send(receivedEvent({ tenantId: 'tenant-unknown' }));
    send(receivedEvent({ messageId: 'good' }));
    await bus.idle();

    expect(bus.deadLetters.map((letter) => letter.reason)).toEqual([
      'invalid_json',
      'unsupported_version',
      'limit_exceeded',
      'unknown_tenant',
    ]);
    expect(new TextDecoder().decode(bus.deadLetters[0]!.original.value!)).toBe('not json at all');
    expect(bus.deadLetters[0]!.original.topic).toBe('conversation.message_received');
    expect(bus.generated.map((reply) => reply.data.in_reply_to)).toEqual(['good']);
  });

  it('retries a store outage until it succeeds', async () => {
    let failuresLeft = 3;
    const flaky: MemoryRepo = {
      appendTurns: (...args) => memory.appendTurns(...args),
      recentTurns: async (...args) => {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new ServiceError(ErrorCode.StoreUnavailable, 'redis down', { retryable: true });
        }
        return memory.recentTurns(...args);
      },
      userHistory: (...args) => memory.userHistory(...args),
    };
    await start(flaky);

    send(receivedEvent({ messageId: 'm-1' }));
    await bus.idle();

    expect(bus.generated).toHaveLength(1);
    expect(metrics.retries).toHaveLength(3);
    expect(bus.deadLetters).toHaveLength(0);
  });

  it('takes up its own claim after a lost reply', async () => {
    const dedup = new InMemoryDedupStore(systemClock, 3_600_000);
    let claimCalls = 0;
    // The first claim reaches the store but its reply is lost, as in a Redis timeout.
    const lossy: DedupStore = {
      claim: async (...args) => {
        claimCalls += 1;
        const result = await dedup.claim(...args);
        if (claimCalls === 1) {
          throw new ServiceError(ErrorCode.StoreUnavailable, 'Command timed out', { retryable: true });
        }
        return result;
      },
      saveReply: (...args) => dedup.saveReply(...args),
      markDone: (...args) => dedup.markDone(...args),
      release: (...args) => dedup.release(...args),
    };
    await start(memory, lossy);

    send(receivedEvent({ messageId: 'm-lost' }));
    await bus.idle();

    expect(bus.generated.map((reply) => reply.data.in_reply_to)).toEqual(['m-lost']);
    expect(claimCalls).toBe(2);
    expect(metrics.retries).toHaveLength(1);
  });

  it('dead-letters a message that keeps failing unexpectedly', async () => {
    const broken: MemoryRepo = {
      appendTurns: (...args) => memory.appendTurns(...args),
      recentTurns: async (key, limit) => {
        if (key.conversationId === 'conv-poison') {
          throw new TypeError('bug in the store');
        }
        return memory.recentTurns(key, limit);
      },
      userHistory: async () => ({ conversations: [] }),
    };
    await start(broken);

    send(receivedEvent({ conversationId: 'conv-poison', messageId: 'poison' }), 'conv-poison');
    send(receivedEvent({ conversationId: 'conv-poison', messageId: 'next' }), 'conv-poison');
    await bus.idle();

    expect(bus.deadLetters.map((letter) => letter.messageId)).toEqual(['poison', 'next']);
    expect(bus.deadLetters.map((letter) => letter.reason)).toEqual(['processing_failed', 'processing_failed']);
    expect(bus.generated).toHaveLength(0);
  });

  it('dead-letters a non-retryable store error', async () => {
    const corrupt: MemoryRepo = {
      appendTurns: (...args) => memory.appendTurns(...args),
      recentTurns: async () => {
        throw new ServiceError(ErrorCode.StoreUnavailable, 'unreadable record', { retryable: false });
      },
      userHistory: (...args) => memory.userHistory(...args),
    };
    await start(corrupt);

    send(receivedEvent({ messageId: 'corrupt' }));
    await bus.idle();

    expect(bus.deadLetters.map((letter) => letter.reason)).toEqual(['processing_failed']);
    expect(metrics.retries).toHaveLength(2);
  });

  it('answers later messages after a poison one', async () => {
    let poisoned = true;
    const onceBroken: MemoryRepo = {
      appendTurns: (...args) => memory.appendTurns(...args),
      recentTurns: async (key, limit) => {
        if (poisoned) {
          throw new TypeError('bug in the store');
        }
        return memory.recentTurns(key, limit);
      },
      userHistory: (...args) => memory.userHistory(...args),
    };
    await start(onceBroken);

    send(receivedEvent({ messageId: 'poison' }));
    await bus.idle();
    poisoned = false;
    send(receivedEvent({ messageId: 'next' }));
    await bus.idle();

    expect(bus.deadLetters.map((letter) => letter.messageId)).toEqual(['poison']);
    expect(bus.generated.map((reply) => reply.data.in_reply_to)).toEqual(['next']);
  });

  it('logs ids but no text above debug', async () => {
    await start();

    send(receivedEvent({ messageId: 'm-1', correlationId: 'corr-1', text: 'meu segredo 1234' }));
    await bus.idle();

    const processed = logger.lines.find((line) => line.message === 'message processed');
    expect(processed?.fields).toMatchObject({
      tenant_id: 'tenant-a',
      correlation_id: 'corr-1',
      conversation_id: 'conv-1',
      message_id: 'm-1',
      outcome: 'processed',
    });
    expect(typeof processed?.fields['processing_time_ms']).toBe('number');
    const aboveDebug = logger.lines.filter((line) => line.level !== 'debug');
    expect(JSON.stringify(aboveDebug)).not.toContain('meu segredo 1234');
  });

  it('logs a generated correlation id', async () => {
    await start();

    send(receivedEvent({ messageId: 'm-1', correlationId: null }));
    await bus.idle();

    const line = logger.lines.find((entry) => entry.message.includes('no correlation_id'));
    expect(line?.fields['correlation_id']).toBe(bus.generated[0]!.correlation_id);
  });
});
