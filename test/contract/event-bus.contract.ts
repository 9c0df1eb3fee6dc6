import { afterEach, describe, expect, it } from 'vitest';

import type { DeadLetter } from '../../src/domain/dead-letter.js';
import type { MessageGeneratedEvent } from '../../src/domain/events.js';
import type { DeliveryContext, EventBus, InboundHandler, InboundRecord } from '../../src/domain/ports/event-bus.js';

/** An inbound record as a producer writes it. */
export interface InjectedRecord {
  key: string | null;
  value: Uint8Array | string;
  headers?: Record<string, string>;
}

/** One adapter instance under test, with the means to feed it and to read what it published. */
export interface EventBusHarness {
  readonly bus: EventBus;
  /** Topic name that delivered records carry. */
  readonly receivedTopic: string;
  /** Writes an inbound record as an upstream producer would. */
  inject(record: InjectedRecord): Promise<void>;
  /** Every reply published so far, in publish order. */
  readGenerated(): Promise<MessageGeneratedEvent[]>;
  /** Every dead letter published so far, in publish order. */
  readDeadLetters(): Promise<DeadLetter[]>;
  /** Opens a second bus on the same inbound topic and consumer group, as the process after a restart. */
  reopen(): Promise<EventBus>;
  /** Stops every bus the harness opened and deletes what it created. */
  dispose(): Promise<void>;
}

export interface EventBusAdapter {
  name: string;
  /** Whether consumed positions outlive stop(), so that a reopened bus resumes after them. */
  keepsOffsetsAcrossRestarts: boolean;
  /** Upper bound of every wait on a delivery, in milliseconds. */
  waitTimeoutMs: number;
  create(options: { stopTimeoutMs: number }): Promise<EventBusHarness>;
}

/** Polls `condition` every 20 ms until it holds, or fails after `timeoutMs` naming what it waited for. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, description: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/** Returns true when `promise` is still pending after `ms` milliseconds. */
async function stillPendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(marker), ms))]);
  return winner === marker;
}

export function generatedEvent(conversationId = 'conv-1'): MessageGeneratedEvent {
  return {
    event_name: 'conversation.message_generated',
    version: '1.0',
    timestamp: '2026-01-15T12:00:00.000Z',
    tenant_id: 'tenant-a',
    correlation_id: 'corr-1',
    source: 'ia-conversational',
    data: {
      conversation_id: conversationId,
      message_id: 'reply-1',
      text: 'Atendemos de segunda a sexta.',
      assistant_id: 'support',
      processing_time_ms: 12,
      tokens_used: 30,
      model_name: 'offline',
      has_historical_context: false,
      meta: { reply_source: 'llm', locale: 'pt-BR' },
      in_reply_to: 'msg-1',
      user_id: 'user-1',
      channel: 'whatsapp',
    },
  };
}

const text = (bytes: Uint8Array | null): string | null => (bytes === null ? null : new TextDecoder().decode(bytes));

/** Handler that records every delivery, then runs `behaviour` (resolving when none is given). */
function recordingHandler(behaviour?: (record: InboundRecord, context: DeliveryContext, attempt: number) => Promise<void>) {
  const deliveries: InboundRecord[] = [];
  const handler: InboundHandler = async (record, context) => {
    deliveries.push(record);
    const attempt = deliveries.filter((seen) => seen.offset === record.offset && seen.partition === record.partition).length;
    await behaviour?.(record, context, attempt);
  };
  return { deliveries, handler, values: () => deliveries.map((record) => text(record.value)) };
}

/** Declares the cases of the EventBus contract (src/domain/ports/event-bus.ts) for one adapter. */
export function describeEventBusContract(adapter: EventBusAdapter): void {
  describe(`EventBus contract: ${adapter.name}`, () => {
    const opened: EventBusHarness[] = [];
    const wait = adapter.waitTimeoutMs;

    async function open(stopTimeoutMs = 10_000): Promise<EventBusHarness> {
      const harness = await adapter.create({ stopTimeoutMs });
      opened.push(harness);
      return harness;
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((harness) => harness.dispose()));
    });

    it('delivers key, value bytes and headers', async () => {
      const harness = await open();
      const consumer = recordingHandler();
      await harness.bus.consume(consumer.handler);
      const value = new Uint8Array([0x7b, 0xff, 0x00, 0xc3, 0x7d]);

      await harness.inject({ key: 'conv-1', value, headers: { tenant_id: 'tenant-a', trace_id: 'trace-1' } });
      await waitUntil(() => consumer.deliveries.length >= 1, wait, 'one delivery');

      const [record] = consumer.deliveries;
      expect(record?.topic).toBe(harness.receivedTopic);
      expect(text(record?.key ?? null)).toBe('conv-1');
      expect(Array.from(record?.value ?? [])).toEqual(Array.from(value));
      expect(record?.headers).toEqual({ tenant_id: 'tenant-a', trace_id: 'trace-1' });
      expect(record?.offset).toMatch(/^\d+$/);
      expect(Number.isInteger(record?.partition)).toBe(true);
    });

    it('delivers one key in order', async () => {
      const harness = await open();
      // Uneven handler times would reorder records if any two of one key ran at once.
      const consumer = recordingHandler(async (record) => {
        await new Promise((resolve) => setTimeout(resolve, (record.value?.[1] ?? 0) % 2 === 0 ? 30 : 1));
      });
      const sent = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
      for (const value of sent) {
        await harness.inject({ key: 'conv-order', value });
      }

      await harness.bus.consume(consumer.handler);
      await waitUntil(() => consumer.deliveries.length >= sent.length, wait, `${sent.length} deliveries`);

      expect(consumer.values()).toEqual(sent);
    });

    it('redelivers a rejected record before later ones', async () => {
      const harness = await open();
      const consumer = recordingHandler(async (record, _context, attempt) => {
        if (text(record.value) === 'first' && attempt === 1) {
          throw new Error('simulated handler failure');
        }
      });
      await harness.inject({ key: 'conv-retry', value: 'first' });
      await harness.inject({ key: 'conv-retry', value: 'second' });

      await harness.bus.consume(consumer.handler);
      await waitUntil(() => consumer.deliveries.length >= 3, wait, 'three deliveries');

      expect(consumer.values()).toEqual(['first', 'first', 'second']);
      expect(consumer.deliveries[1]?.offset).toBe(consumer.deliveries[0]?.offset);
    });

    it('runs other keys while one key is blocked', async () => {
      const harness = await open();
      const blockedStarted = deferred();
      const release = deferred();
      const finished: string[] = [];
      const consumer = recordingHandler(async (record) => {
        if (text(record.key) === 'conv-blocked') {
          blockedStarted.resolve();
          await release.promise;
        }
        finished.push(text(record.value) ?? '');
      });
      await harness.bus.consume(consumer.handler);

      await harness.inject({ key: 'conv-blocked', value: 'slow' });
      await blockedStarted.promise;
      await harness.inject({ key: 'conv-free', value: 'fast' });
      await waitUntil(() => finished.includes('fast'), wait, 'the record of the other key to finish');

      expect(finished).toEqual(['fast']);
      release.resolve();
      await waitUntil(() => finished.includes('slow'), wait, 'the blocked record to finish');
    });

    it('keeps order per key across interleaved keys', async () => {
      const harness = await open();
      const keys = ['conv-a', 'conv-b', 'conv-c', 'conv-d', 'conv-e'];
      const perKey = 20;
      let running = 0;
      let maxRunning = 0;
      const consumer = recordingHandler(async () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 6)));
        running -= 1;
      });
      for (let index = 0; index < perKey; index += 1) {
        for (const key of keys) {
          await harness.inject({ key, value: `${key}:${index}` });
        }
      }

      await harness.bus.consume(consumer.handler);
      await waitUntil(() => consumer.deliveries.length >= keys.length * perKey, wait, `${keys.length * perKey} deliveries`);

      for (const key of keys) {
        const delivered = consumer.deliveries.filter((record) => text(record.key) === key).map((record) => text(record.value));
        expect(delivered).toEqual(Array.from({ length: perKey }, (_, index) => `${key}:${index}`));
      }
      expect(maxRunning).toBeGreaterThan(1);
    });

    it('retries a rejected record while other keys go on', async () => {
      const harness = await open();
      // The first record of conv-retry fails until the other key's record was handled, so the
      // test times out when a retry holds up other keys.
      let otherKeyHandled = false;
      const consumer = recordingHandler(async (record) => {
        const value = text(record.value);
        if (value === 'other') {
          otherKeyHandled = true;
        }
        if (value === 'first' && !otherKeyHandled) {
          throw new Error('simulated handler failure');
        }
      });
      await harness.inject({ key: 'conv-retry', value: 'first' });
      await harness.inject({ key: 'conv-retry', value: 'second' });
      await harness.bus.consume(consumer.handler);
      await waitUntil(() => consumer.deliveries.length >= 1, wait, 'the first failure');

      await harness.inject({ key: 'conv-other', value: 'other' });
      await waitUntil(() => consumer.values().includes('second'), wait, 'the second record of the retried key');

      const retried = consumer.deliveries.filter((record) => text(record.key) === 'conv-retry');
      const values = retried.map((record) => text(record.value));
      expect(values.at(-1)).toBe('second');
      expect(values.slice(0, -1).every((value) => value === 'first')).toBe(true);
      expect(values.length).toBeGreaterThanOrEqual(3);
      expect(new Set(retried.slice(0, -1).map((record) => record.offset)).size).toBe(1);
      expect(consumer.values().indexOf('other')).toBeLessThan(consumer.values().lastIndexOf('first'));
    });

    it('publishGenerated stores one reply', async () => {
      const harness = await open();
      const event = generatedEvent('conv-published');

      await harness.bus.publishGenerated(event);

      expect(await harness.readGenerated()).toEqual([event]);
    });

    it('publishDeadLetter keeps the original record', async () => {
      const harness = await open();
      const letter: DeadLetter = {
        reason: 'schema_invalid',
        detail: 'data.text: must contain non-blank text',
        tenantId: 'tenant-a',
        correlationId: 'corr-1',
        original: {
          topic: harness.receivedTopic,
          partition: 2,
          offset: '41',
          key: new TextEncoder().encode('conv-dead'),
          value: new Uint8Array([0x7b, 0xff, 0x00]),
          headers: { tenant_id: 'tenant-a', correlation_id: 'corr-1', trace_id: 'trace-1' },
        },
      };

      await harness.bus.publishDeadLetter(letter);

      expect(await harness.readDeadLetters()).toEqual([letter]);
    });

    it('publishDeadLetter keeps a null value', async () => {
      const harness = await open();
      const letter: DeadLetter = {
        reason: 'invalid_json',
        detail: 'the record has no value',
        original: { topic: harness.receivedTopic, partition: 0, offset: '7', key: null, value: null, headers: {} },
      };

      await harness.bus.publishDeadLetter(letter);

      expect(await harness.readDeadLetters()).toEqual([letter]);
    });

    it('stop waits for the handler in hand', async () => {
      const harness = await open();
      const started = deferred();
      const release = deferred();
      const events: string[] = [];
      const consumer = recordingHandler(async () => {
        started.resolve();
        await release.promise;
        events.push('handler finished');
      });
      await harness.bus.consume(consumer.handler);
      await harness.inject({ key: 'conv-stop', value: 'slow' });
      await started.promise;

      const stopping = harness.bus.stop().then(() => events.push('stopped'));

      expect(await stillPendingAfter(stopping, 300)).toBe(true);
      release.resolve();
      await stopping;
      expect(events).toEqual(['handler finished', 'stopped']);
    });

    // InMemoryEventBus keeps its queue in the instance that was stopped, so no second bus can
    // resume from it. The case applies only to adapters whose offsets outlive the process.
    if (adapter.keepsOffsetsAcrossRestarts) {
      it('resumes after the last handled record', async () => {
        const harness = await open(1000);
        const blocked = deferred();
        const first = recordingHandler(async (record) => {
          if (text(record.value) === 'never finishes') {
            blocked.resolve();
            await new Promise(() => {});
          }
        });
        await harness.inject({ key: 'conv-restart', value: 'handled' });
        await harness.inject({ key: 'conv-restart', value: 'never finishes' });
        await harness.inject({ key: 'conv-restart', value: 'not reached' });
        await harness.bus.consume(first.handler);
        await blocked.promise;
        await harness.bus.stop();

        const second = recordingHandler();
        const reopened = await harness.reopen();
        await reopened.consume(second.handler);
        await waitUntil(() => second.deliveries.length >= 2, wait, 'two deliveries after the restart');

        expect(first.values()).toEqual(['handled', 'never finishes']);
        expect(second.values()).toEqual(['never finishes', 'not reached']);
      });
    }
  });
}
