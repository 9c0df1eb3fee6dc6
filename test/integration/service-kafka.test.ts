import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { deriveReplyMessageId } from '../../src/domain/ids.js';
import { messageGeneratedSchema, type MessageGeneratedEvent } from '../../src/domain/events.js';
import { startApp, type RunningApp } from '../../src/main/app.js';
import { loadConfig } from '../../src/main/config.js';
import { uniqueSuffix } from '../support/environment.js';
import { CapturingLogger, receivedEvent } from '../support/fakes.js';
import { KafkaTestClient, serviceEnvironment, uniqueTopics, waitFor } from '../support/kafka-test-client.js';

/** The whole service in this process, on the real broker and Redis, with the offline answerer. */
describe('service on Kafka and Redis', () => {
  const topics = uniqueTopics('service');
  const client = new KafkaTestClient();
  const logger = new CapturingLogger();
  let app: RunningApp;

  beforeAll(async () => {
    const config = loadConfig({
      ...serviceEnvironment(topics),
      HTTP_PORT: '0',
      MAX_TEXT_LENGTH: '500',
      ASSISTANTS_FILE: 'config/assistants.yaml',
    });
    app = await startApp(config, logger);
    await client.collect([topics.generated, topics.deadLetter]);
  });

  afterAll(async () => {
    await client.close();
    await app?.stop();
  });

  function repliesTo(messageId: string): Array<{ event: MessageGeneratedEvent; key: string | null; headers: Record<string, string> }> {
    return client
      .recordsOf(topics.generated)
      .map((record) => ({ event: JSON.parse(record.value!.toString('utf8')) as MessageGeneratedEvent, key: record.key, headers: record.headers }))
      .filter((reply) => reply.event.data.in_reply_to === messageId);
  }

  async function publish(event: Record<string, unknown> | string, key: string | null = 'conv-it'): Promise<void> {
    await client.produce(topics.received, [{ key, value: typeof event === 'string' ? event : JSON.stringify(event) }]);
  }

  it('answers one message with one reply', async () => {
    const messageId = `m-${uniqueSuffix()}`;
    const event = receivedEvent({ tenantId: 'tenant-acme', assistantId: 'support-assistant', conversationId: 'conv-it', messageId, correlationId: 'corr-it-1', text: 'Como faço uma transferência?' });

    await publish(event);
    await waitFor(() => repliesTo(messageId).length === 1, 20_000, () => 'no reply');
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const replies = repliesTo(messageId);
    expect(replies).toHaveLength(1);
    const reply = replies[0]!;
    expect(messageGeneratedSchema.safeParse(reply.event).success).toBe(true);
    expect(reply.key).toBe('conv-it');
    expect(reply.headers['correlation_id']).toBe('corr-it-1');
    expect(reply.headers['tenant_id']).toBe('tenant-acme');
    expect(reply.event.correlation_id).toBe('corr-it-1');
    expect(reply.event.data.message_id).toBe(deriveReplyMessageId('tenant-acme', messageId));
    expect(reply.event.data.text).toContain('Transferir');
    expect(reply.event.data.model_name).toBe('offline-faq');
  });

  it('drops a redelivery but answers another tenant', async () => {
    const messageId = `m-${uniqueSuffix()}`;
    const acme = receivedEvent({ tenantId: 'tenant-acme', assistantId: 'support-assistant', messageId });
    const globex = receivedEvent({ tenantId: 'tenant-globex', assistantId: 'support-assistant', messageId });

    await publish(acme);
    await publish(acme);
    await publish(globex);
    await waitFor(() => repliesTo(messageId).length >= 2, 20_000, () => `replies: ${repliesTo(messageId).length}`);
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const tenants = repliesTo(messageId).map((reply) => reply.event.tenant_id).sort();
    expect(tenants).toEqual(['tenant-acme', 'tenant-globex']);
  });

  it('dead-letters every kind of bad event and keeps going', async () => {
    const oversized = receivedEvent({ tenantId: 'tenant-acme', assistantId: 'support-assistant', text: 'x'.repeat(501) });
    const bad: Array<{ value: string; reason: string }> = [
      { value: '{"event_name": "conversation.message_received", "data": {', reason: 'invalid_json' },
      { value: JSON.stringify({ ...receivedEvent(), tenant_id: undefined }), reason: 'schema_invalid' },
      { value: JSON.stringify({ ...receivedEvent(), version: '2.0' }), reason: 'unsupported_version' },
      { value: JSON.stringify({ ...receivedEvent(), event_name: 'conversation.closed' }), reason: 'unsupported_event' },
      { value: JSON.stringify(oversized), reason: 'limit_exceeded' },
      { value: JSON.stringify(receivedEvent({ tenantId: 'tenant-nobody' })), reason: 'unknown_tenant' },
      { value: JSON.stringify(receivedEvent({ tenantId: 'tenant-acme', assistantId: 'ghost' })), reason: 'unknown_assistant' },
    ];
    const goodId = `m-${uniqueSuffix()}`;

    for (const event of bad) {
      await publish(event.value, 'conv-bad');
    }
    await publish(receivedEvent({ tenantId: 'tenant-acme', assistantId: 'support-assistant', conversationId: 'conv-bad', messageId: goodId }), 'conv-bad');
    await waitFor(() => repliesTo(goodId).length === 1, 20_000, () => 'the good event after the bad ones got no reply');

    const letters = client.recordsOf(topics.deadLetter);
    expect(letters.map((letter) => letter.headers['dlq_reason'])).toEqual(bad.map((event) => event.reason));
    for (const [index, letter] of letters.entries()) {
      expect(letter.value?.toString('utf8')).toBe(bad[index]!.value);
      expect(letter.key).toBe('conv-bad');
      expect(letter.headers['dlq_source_topic']).toBe(topics.received);
      expect(letter.headers['dlq_source_partition']).toMatch(/^\d+$/);
      expect(letter.headers['dlq_source_offset']).toMatch(/^\d+$/);
    }
  });

  it('logs one processed line per message with its ids', () => {
    const processed = logger.lines.filter((line) => line.message === 'message processed');

    expect(processed.length).toBeGreaterThan(0);
    for (const line of processed) {
      expect(Object.keys(line.fields)).toEqual(
        expect.arrayContaining(['tenant_id', 'correlation_id', 'conversation_id', 'message_id', 'outcome', 'processing_time_ms']),
      );
    }
  });
});
