import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { KafkaEventBus, type KafkaEventBusSettings } from '../../src/adapters/outbound/event-bus/kafka-event-bus.js';
import { MAX_DEAD_LETTER_DETAIL_BYTES } from '../../src/adapters/outbound/event-bus/kafka-records.js';
import type { DeadLetter } from '../../src/domain/dead-letter.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import type { InboundRecord } from '../../src/domain/ports/event-bus.js';
import { deferred, generatedEvent, waitUntil } from '../contract/event-bus.contract.js';
import { uniqueSuffix } from '../support/environment.js';
import { CapturingLogger } from '../support/fakes.js';

import { KafkaTestClient, allTopics, decodeHeaders, testKafkaSettings } from './kafka-test-tools.js';

const WORKER = fileURLToPath(new URL('./kafka-event-bus-worker.ts', import.meta.url));

const kafka = new KafkaTestClient();
beforeAll(() => kafka.connect());
afterAll(() => kafka.disconnect());

describe('KafkaEventBus', () => {
  const buses: KafkaEventBus[] = [];
  const groups: string[] = [];
  const children: ChildProcess[] = [];

  function newBus(settings: KafkaEventBusSettings, logger = new CapturingLogger(), stopTimeoutMs = 5000): KafkaEventBus {
    const bus = new KafkaEventBus(settings, logger, { stopTimeoutMs, redeliveryDelayMs: 50, maxRedeliveryDelayMs: 200 });
    buses.push(bus);
    groups.push(settings.consumerGroup);
    kafka.deleteTopicsLater(allTopics(settings));
    return bus;
  }

  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.kill('SIGKILL');
    }
    await Promise.all(buses.splice(0).map((bus) => bus.stop()));
    await kafka.deleteGroups(groups.splice(0));
  });

  it('connect rejects an unreachable broker in time', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { brokers: ['127.0.0.1:1'], startupTimeoutMs: 3000 });
    const bus = newBus(settings);
    const startedAt = Date.now();

    const error = await bus.connect().then(
      () => undefined,
      (rejection: unknown) => rejection,
    );

    expect(Date.now() - startedAt).toBeLessThan(settings.startupTimeoutMs + 2000);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('127.0.0.1:1');
    expect((error as Error).message).toContain('KAFKA_BROKER');
    expect((await bus.checkHealth()).ok).toBe(false);
  });

  it('connect creates topics with the configured partitions', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 4 });
    const bus = newBus(settings);

    await bus.connect();

    const { topics } = await kafka.admin.fetchTopicMetadata({ topics: allTopics(settings) });
    expect(topics.map((topic) => topic.name).sort()).toEqual(allTopics(settings).sort());
    for (const topic of topics) {
      expect(topic.partitions).toHaveLength(4);
      expect(topic.partitions.every((partition) => partition.replicas.length === 1)).toBe(true);
    }
  });

  it('connect rejects missing topics without createTopics', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { createTopics: false });
    const bus = newBus(settings);

    await expect(bus.connect()).rejects.toThrow(settings.topics.received);
    await expect(newBus(settings).connect()).rejects.toThrow('KAFKA_CREATE_TOPICS=true');
  });

  it('publishGenerated writes key, headers and JSON', async () => {
    const settings = testKafkaSettings(uniqueSuffix());
    const bus = newBus(settings);
    await bus.connect();
    const event = generatedEvent('conv-42');

    await bus.publishGenerated(event);

    const [record, ...others] = await kafka.readAll(settings.topics.generated);
    expect(others).toHaveLength(0);
    expect(record?.key?.toString()).toBe('conv-42');
    expect(decodeHeaders(record?.headers)).toEqual({
      correlation_id: event.correlation_id,
      tenant_id: event.tenant_id,
      event_name: 'conversation.message_generated',
      message_id: event.data.message_id,
      'content-type': 'application/json',
    });
    expect(JSON.parse(record?.value?.toString() ?? 'null')).toEqual(event);
  });

  it('publishDeadLetter writes dlq headers', async () => {
    const settings = testKafkaSettings(uniqueSuffix());
    const bus = newBus(settings);
    await bus.connect();
    const letter: DeadLetter = {
      reason: 'limit_exceeded',
      detail: 'ã'.repeat(3000),
      tenantId: 'tenant-b',
      correlationId: 'corr-9',
      original: {
        topic: settings.topics.received,
        partition: 1,
        offset: '12',
        key: new TextEncoder().encode('conv-7'),
        value: new Uint8Array([0x00, 0xff, 0x10]),
        headers: { tenant_id: 'tenant-stale', trace_id: 'trace-7' },
      },
    };
    const before = Date.now();

    await bus.publishDeadLetter(letter);

    const [record, ...others] = await kafka.readAll(settings.topics.deadLetter);
    expect(others).toHaveLength(0);
    expect(record?.key?.toString()).toBe('conv-7');
    expect(Array.from(record?.value ?? [])).toEqual([0x00, 0xff, 0x10]);
    const { dlq_detail: detail, dlq_failed_at: failedAt, ...headers } = decodeHeaders(record?.headers);
    expect(headers).toEqual({
      tenant_id: 'tenant-b',
      correlation_id: 'corr-9',
      trace_id: 'trace-7',
      dlq_reason: 'limit_exceeded',
      dlq_source_topic: settings.topics.received,
      dlq_source_partition: '1',
      dlq_source_offset: '12',
    });
    expect(Buffer.byteLength(detail ?? '')).toBeLessThanOrEqual(MAX_DEAD_LETTER_DETAIL_BYTES);
    expect(detail).toMatch(/^ã+…$/);
    expect(Date.parse(failedAt ?? '')).toBeGreaterThanOrEqual(before - 1000);
    expect(new Date(Date.parse(failedAt ?? '')).toISOString()).toBe(failedAt);
  });

  it('publish after stop fails with PUBLISH_FAILED', async () => {
    const bus = newBus(testKafkaSettings(uniqueSuffix()));
    await bus.connect();
    await bus.stop();

    const error = await bus.publishGenerated(generatedEvent()).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );

    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe(ErrorCode.PublishFailed);
    expect((error as ServiceError).retryable).toBe(true);
  });

  it('checkHealth follows the lifecycle', async () => {
    const bus = newBus(testKafkaSettings(uniqueSuffix()));
    expect((await bus.checkHealth()).ok).toBe(false);

    await bus.connect();
    expect(await bus.checkHealth()).toEqual({ ok: false, detail: expect.stringContaining('not consuming yet') });

    await bus.consume(async () => {});
    expect((await bus.checkHealth()).ok).toBe(true);

    await bus.stop();
    expect(await bus.checkHealth()).toEqual({ ok: false, detail: 'stopped' });
  });

  it('stop is safe without connect', async () => {
    const bus = newBus(testKafkaSettings(uniqueSuffix()));

    await bus.stop();
    await bus.stop();

    await expect(bus.connect()).rejects.toThrow('stopped');
  });

  it('backoff of one partition leaves the others running', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 2 });
    const logger = new CapturingLogger();
    const bus = new KafkaEventBus(settings, logger, { stopTimeoutMs: 5000, redeliveryDelayMs: 3000, maxRedeliveryDelayMs: 3000 });
    buses.push(bus);
    groups.push(settings.consumerGroup);
    kafka.deleteTopicsLater(allTopics(settings));
    await bus.connect();
    const events: string[] = [];
    await kafka.send(settings.topics.received, { key: 'poison', value: 'poison', partition: 0 });
    await bus.consume(async (record) => {
      const value = new TextDecoder().decode(record.value ?? new Uint8Array());
      events.push(value);
      if (value === 'poison') {
        throw new Error('simulated handler failure');
      }
    });
    await waitUntil(() => events.includes('poison'), 20_000, 'the first delivery of the poison record');

    await kafka.send(settings.topics.received, { key: 'healthy', value: 'healthy', partition: 1 });
    await waitUntil(() => events.filter((value) => value === 'poison').length >= 2, 20_000, 'the redelivery');

    expect(events.indexOf('healthy')).toBeGreaterThan(0);
    expect(events.indexOf('healthy')).toBeLessThan(events.lastIndexOf('poison'));
    const failures = logger.lines.filter((line) => line.message === 'inbound record handler failed; the record will be delivered again');
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures[0]?.fields).toMatchObject({ topic: settings.topics.received, partition: 0, offset: '0', failures: 1, retry_in_ms: 3000 });
  });

  it('heartbeats while a slow handler runs', { timeout: 60_000 }, async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { sessionTimeoutMs: 6000 });
    const logger = new CapturingLogger();
    const bus = newBus(settings, logger);
    await bus.connect();
    const deliveries: InboundRecord[] = [];
    await kafka.send(settings.topics.received, { key: 'conv-slow', value: 'slow' });

    // The handler outlasts the 6 s session timeout and never calls context.heartbeat itself.
    await bus.consume(async (record) => {
      deliveries.push(record);
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    });
    await waitUntil(() => deliveries.length >= 1, 20_000, 'the delivery');
    const { partition } = deliveries[0]!;
    let committed: string | undefined;
    const readCommitted = async () => {
      committed = (await kafka.committedOffsets(settings.consumerGroup, settings.topics.received)).get(partition);
    };
    await waitForAsync(readCommitted, () => deliveries.length >= 2 || committed === '1', 30_000);

    expect(deliveries).toHaveLength(1);
    expect(committed).toBe('1');
    expect(logger.lines.filter((line) => line.message === 'consumer joined group')).toHaveLength(1);
    expect(logger.lines.filter((line) => line.message === 'consumer group is rebalancing')).toHaveLength(0);
  });

  it('commits only after the handler resolves', { timeout: 60_000 }, async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { sessionTimeoutMs: 6000 });
    groups.push(settings.consumerGroup);
    kafka.deleteTopicsLater(allTopics(settings));
    await kafka.admin.createTopics({
      topics: allTopics(settings).map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })),
    });
    await kafka.send(settings.topics.received, { key: 'conv-kill', value: 'in hand when killed' });

    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, KAFKA_EVENT_BUS_SETTINGS: JSON.stringify(settings) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const firstDelivery = await firstLine(child);
    const committedWhileInHand = await kafka.committedOffsets(settings.consumerGroup, settings.topics.received);
    child.kill('SIGKILL');

    const redelivered = deferred<InboundRecord>();
    const bus = newBus(settings);
    await bus.connect();
    await bus.consume(async (record) => redelivered.resolve(record));
    const record = await withTimeout(redelivered.promise, 30_000, 'the redelivery after the kill');

    expect(firstDelivery).toMatchObject({ offset: '0', value: 'in hand when killed' });
    expect(committedWhileInHand.get(firstDelivery.partition)).toBe('-1');
    expect(record.partition).toBe(firstDelivery.partition);
    expect(record.offset).toBe('0');
    expect(new TextDecoder().decode(record.value ?? new Uint8Array())).toBe('in hand when killed');
  });
});

/** Runs `poll` every 100 ms until `done` holds, or fails after `timeoutMs`. */
async function waitForAsync(poll: () => Promise<void>, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await poll();
    if (done()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${description}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the first JSON line the worker writes, or rejects when it exits first. */
function firstLine(child: ChildProcess): Promise<{ partition: number; offset: string; value: string }> {
  const line = new Promise<{ partition: number; offset: string; value: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (text) => resolve(JSON.parse(text) as { partition: number; offset: string; value: string }));
    child.once('exit', (code) => reject(new Error(`the worker exited with code ${code} before delivering a record`)));
  });
  return withTimeout(line, 30_000, 'the worker to deliver a record');
}
