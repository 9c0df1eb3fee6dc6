import { randomUUID } from 'node:crypto';

import { afterAll, describe, expect, it } from 'vitest';

import type { MessageGeneratedEvent } from '../../src/domain/events.js';
import { uniqueSuffix } from '../support/environment.js';
import { startFakeOpenAiServer, type FakeOpenAiServer } from '../support/fake-openai-server.js';
import { receivedEvent } from '../support/fakes.js';
import { KafkaTestClient, serviceEnvironment, uniqueTopics, waitFor } from '../support/kafka-test-client.js';
import { freePort, spawnService, waitUntilReady, type ServiceProcess } from '../support/service-process.js';

/**
 * A worker killed with SIGKILL in the middle of messages, then started again, must leave every
 * message with a reply and never publish one reply id with two different texts. The fake model
 * answers every call with a new random text, so a second model call for the same message would
 * show up as a conflicting reply.
 */
describe('crash recovery', () => {
  const topics = uniqueTopics('crash');
  const kafka = new KafkaTestClient();
  const group = `crash-${uniqueSuffix()}`;
  const redisPrefix = `test:${uniqueSuffix()}:`;
  const services: ServiceProcess[] = [];
  let model: FakeOpenAiServer;

  afterAll(async () => {
    await Promise.all(services.map((service) => service.kill()));
    await kafka.close();
    await model?.close();
  });

  async function startWorker(): Promise<ServiceProcess> {
    const port = await freePort();
    const service = spawnService({
      ...serviceEnvironment(topics, { group, redisKeyPrefix: redisPrefix }),
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      LLM_BASE_URL: model.url,
      LLM_API_KEY: 'test-key',
      LLM_TIMEOUT_MS: '3000',
      LLM_MAX_RETRIES: '0',
      DEDUP_LEASE_MS: '4000',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
    });
    services.push(service);
    await waitUntilReady(service, port);
    return service;
  }

  it('answers every message once after SIGKILL', { timeout: 150_000 }, async () => {
    model = await startFakeOpenAiServer();
    model.setHandler(() => ({ kind: 'slow', delayMs: 400, then: { kind: 'answer', text: `resposta ${randomUUID()}` } }));
    await kafka.createTopics([topics.received, topics.generated, topics.deadLetter]);
    await kafka.collect([topics.generated]);

    const conversations = ['c-1', 'c-2', 'c-3', 'c-4'];
    const inbound = conversations.flatMap((conversation) =>
      [1, 2, 3, 4].map((turn) =>
        receivedEvent({ tenantId: 'tenant-acme', assistantId: 'support-assistant', conversationId: conversation, messageId: `${conversation}-m${turn}-${uniqueSuffix()}`, text: `mensagem ${turn}` }),
      ),
    );
    const messageIds = inbound.map((event) => (event['data'] as { message_id: string }).message_id);

    const first = await startWorker();
    await kafka.produce(
      topics.received,
      inbound.map((event) => ({ key: (event['data'] as { conversation_id: string }).conversation_id, value: JSON.stringify(event) })),
    );
    await model.waitForRequests(4, 30_000);
    await first.kill();

    const second = await startWorker();
    await model.waitForRequests(model.requests.length + 3, 30_000);
    await second.kill();

    await startWorker();
    const replies = () =>
      kafka.recordsOf(topics.generated).map((record) => JSON.parse(record.value!.toString('utf8')) as MessageGeneratedEvent);
    await waitFor(
      () => new Set(replies().map((reply) => reply.data.in_reply_to)).size === messageIds.length,
      90_000,
      () => `answered ${new Set(replies().map((reply) => reply.data.in_reply_to)).size} of ${messageIds.length}`,
    );

    const textsByReplyId = new Map<string, Set<string>>();
    for (const reply of replies()) {
      const texts = textsByReplyId.get(reply.data.message_id) ?? new Set<string>();
      texts.add(reply.data.text);
      textsByReplyId.set(reply.data.message_id, texts);
    }
    const conflicting = [...textsByReplyId.entries()].filter(([, texts]) => texts.size > 1);
    expect(conflicting).toEqual([]);
    expect(new Set(replies().map((reply) => reply.data.in_reply_to))).toEqual(new Set(messageIds));

    for (const conversation of conversations) {
      const expected = messageIds.filter((id) => id.startsWith(`${conversation}-`));
      const firstSeen = [...new Set(replies().filter((reply) => reply.data.conversation_id === conversation).map((reply) => reply.data.in_reply_to))];
      expect(firstSeen).toEqual(expected);
    }
  });
});
