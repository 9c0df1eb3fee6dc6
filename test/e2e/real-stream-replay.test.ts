import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { MessageGeneratedEvent } from '../../src/domain/events.js';
import { KafkaTestClient, serviceEnvironment, uniqueTopics, waitFor } from '../support/kafka-test-client.js';
import { freePort, spawnService, waitUntilReady, type ServiceProcess } from '../support/service-process.js';

/** A public conversation stream with redeliveries, kept beside the checkout and never committed. */
const STREAM = resolve(process.cwd(), '../shared/data/conversations_real_dupes.jsonl');

interface StreamEvent {
  tenant_id: string;
  data: { conversation_id: string; message_id: string };
}

describe('real conversation stream replay', () => {
  const topics = uniqueTopics('replay');
  const kafka = new KafkaTestClient();
  let service: ServiceProcess | undefined;

  afterAll(async () => {
    await service?.kill();
    await kafka.close();
  });

  it('answers each distinct message once, in order', { timeout: 180_000 }, async () => {
    expect(existsSync(STREAM), `${STREAM} is missing: the shared data folder must sit beside the checkout`).toBe(true);
    const lines = readFileSync(STREAM, 'utf8').split('\n').filter((line) => line.trim() !== '');
    const events = lines.map((line) => JSON.parse(line) as StreamEvent);
    const distinct = new Map<string, StreamEvent>();
    for (const event of events) distinct.set(`${event.tenant_id} ${event.data.message_id}`, event);
    expect(lines.length).toBeGreaterThan(distinct.size);

    const port = await freePort();
    service = spawnService({
      ...serviceEnvironment(topics),
      LOG_LEVEL: 'warn',
      HTTP_PORT: String(port),
    });
    await waitUntilReady(service, port);
    await kafka.collect([topics.generated, topics.deadLetter]);

    await kafka.produce(
      topics.received,
      lines.map((line, index) => ({ key: events[index]!.data.conversation_id, value: line })),
    );
    const replies = () =>
      kafka.recordsOf(topics.generated).map((record) => JSON.parse(record.value!.toString('utf8')) as MessageGeneratedEvent);
    await waitFor(() => replies().length >= distinct.size, 120_000, () => `${replies().length} of ${distinct.size} replies`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 2000));

    const answered = replies().map((reply) => `${reply.tenant_id} ${reply.data.in_reply_to}`);
    expect(answered).toHaveLength(distinct.size);
    expect(new Set(answered)).toEqual(new Set(distinct.keys()));
    expect(kafka.recordsOf(topics.deadLetter)).toHaveLength(0);

    const expectedOrder = new Map<string, string[]>();
    for (const event of distinct.values()) {
      const order = expectedOrder.get(event.data.conversation_id) ?? [];
      order.push(event.data.message_id);
      expectedOrder.set(event.data.conversation_id, order);
    }
    for (const [conversation, order] of expectedOrder) {
      const actual = replies().filter((reply) => reply.data.conversation_id === conversation).map((reply) => reply.data.in_reply_to);
      expect(actual, conversation).toEqual(order);
    }
  });
});
