import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';

import { createTRPCClient, httpLink } from '@trpc/client';
import { afterEach, describe, expect, it } from 'vitest';

import type { AppRouter } from '../../src/adapters/inbound/trpc/router.js';
import type { MessageGeneratedEvent } from '../../src/domain/events.js';
import { uniqueSuffix } from '../support/environment.js';
import { receivedEvent } from '../support/fakes.js';
import { KafkaTestClient, serviceEnvironment, uniqueTopics, waitFor } from '../support/kafka-test-client.js';
import { freePort, logLines, spawnService, waitUntilReady, type ServiceProcess } from '../support/service-process.js';

function apiClient(port: number) {
  return createTRPCClient<AppRouter>({ links: [httpLink({ url: `http://127.0.0.1:${port}/trpc` })] });
}

describe('service process', () => {
  const running: ServiceProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((service) => service.kill()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('opens no broker connection with Kafka disabled', async () => {
    const connections: string[] = [];
    const fakeBroker: Server = createServer((socket) => {
      connections.push(String(socket.remotePort));
      socket.destroy();
    });
    await new Promise<void>((resolve) => fakeBroker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => fakeBroker.close(() => resolve())));
    const brokerPort = (fakeBroker.address() as { port: number }).port;
    const port = await freePort();

    const service = spawnService({
      ENABLE_KAFKA: 'false',
      KAFKA_BROKER: `127.0.0.1:${brokerPort}`,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
    });
    running.push(service);
    await waitUntilReady(service, port);
    const reply = await apiClient(port).conversation.send.mutate({
      tenant_id: 'tenant-acme',
      conversation_id: 'conv-no-kafka',
      message_id: `m-${uniqueSuffix()}`,
      text: 'Oi',
      assistant_id: 'support-assistant',
      channel: 'web',
      user_id: 'user-1',
    });
    await new Promise((resolve) => setTimeout(resolve, 500));

    expect(reply.text).toContain('Banco Acme');
    expect(connections).toEqual([]);
    const disabledLines = logLines(service).filter((line) => String(line['message']).includes('Kafka is disabled'));
    expect(disabledLines).toHaveLength(1);
  });

  it('answers conversation.send and publishes the reply', async () => {
    const topics = uniqueTopics('api');
    const kafka = new KafkaTestClient();
    cleanups.push(() => kafka.close());
    const port = await freePort();
    const service = spawnService({
      ...serviceEnvironment(topics),
      HTTP_PORT: String(port),
    });
    running.push(service);
    await waitUntilReady(service, port);
    await kafka.collect([topics.generated]);
    const messageId = `m-${uniqueSuffix()}`;

    const reply = await apiClient(port).conversation.send.mutate({
      tenant_id: 'tenant-globex',
      conversation_id: 'conv-api',
      message_id: messageId,
      text: 'Vocês aceitam convênio?',
      assistant_id: 'support-assistant',
      channel: 'web',
      user_id: 'user-api',
      correlation_id: 'corr-api-1',
    });
    await waitFor(() => kafka.recordsOf(topics.generated).length === 1, 15_000, () => 'no message_generated event');

    expect(reply.text).toContain('convênio');
    const event = JSON.parse(kafka.recordsOf(topics.generated)[0]!.value!.toString('utf8')) as MessageGeneratedEvent;
    expect(event.data.message_id).toBe(reply.message_id);
    expect(event.data.in_reply_to).toBe(messageId);
    expect(event.data.channel).toBe('web');
    expect(event.correlation_id).toBe('corr-api-1');
  });

  it('fails fast when the broker is unreachable', async () => {
    const startedAt = Date.now();
    const service = spawnService({
      ENABLE_KAFKA: 'true',
      KAFKA_BROKER: '127.0.0.1:1',
      KAFKA_STARTUP_TIMEOUT_MS: '4000',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(await freePort()),
    });
    running.push(service);

    const code = await service.exited;

    expect(code).toBe(1);
    // The start-up timeout (4 s) plus the time to start Node.js and load the service.
    expect(Date.now() - startedAt).toBeLessThan(9_000);
    expect(service.output.join('\n')).toContain('127.0.0.1:1');
  });

  it('stops promptly while Redis is down', async () => {
    const redisPort = await freePort();
    const redisServer = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    cleanups.push(async () => {
      redisServer.kill('SIGKILL');
    });
    const port = await freePort();
    const topics = uniqueTopics('redis-down');
    const service = spawnService({
      ...serviceEnvironment(topics, { redisUrl: `redis://127.0.0.1:${redisPort}` }),
      SHUTDOWN_TIMEOUT_MS: '20000',
      HTTP_PORT: String(port),
    });
    running.push(service);
    await waitUntilReady(service, port);

    redisServer.kill('SIGKILL');
    await waitFor(() => service.output.some((line) => line.includes('Redis connection closed')), 10_000, () => 'no log line about the lost Redis connection');
    const kafka = new KafkaTestClient();
    cleanups.push(() => kafka.close());
    await kafka.produce(topics.received, [
      { key: 'conv-down', value: JSON.stringify(receivedEvent({ tenantId: 'tenant-acme', assistantId: 'support-assistant', conversationId: 'conv-down' })) },
    ]);
    await waitFor(() => service.output.some((line) => line.includes('will retry')), 15_000, () => 'no retry while Redis is down');
    const stoppingAt = Date.now();
    const code = await service.stop();

    expect(code).toBe(0);
    expect(Date.now() - stoppingAt).toBeLessThan(8000);
    expect(logLines(service).some((line) => line['message'] === 'shutdown timed out; exiting')).toBe(false);
  });

  it('lists every invalid variable and exits', async () => {
    const service = spawnService({ HTTP_PORT: 'http', DEDUP_TTL_SECONDS: '0', KAFKA_BROKER: 'nohost' });
    running.push(service);

    const code = await service.exited;

    expect(code).toBe(1);
    const output = service.output.join('\n');
    expect(output).toContain('HTTP_PORT');
    expect(output).toContain('DEDUP_TTL_SECONDS');
    expect(output).toContain('KAFKA_BROKER');
  });
});
