import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { KafkaEventBus, type KafkaEventBusSettings } from '../../src/adapters/outbound/event-bus/kafka-event-bus.js';
import { MAX_DEAD_LETTER_DETAIL_BYTES } from '../../src/adapters/outbound/event-bus/kafka-records.js';
import type { DeadLetter } from '../../src/domain/dead-letter.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import type { InboundRecord } from '../../src/domain/ports/event-bus.js';
import { deferred, generatedEvent, waitUntil, type Deferred } from '../contract/event-bus.contract.js';
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

  it('publishDeadLetter drops a value too large for its topic', async () => {
    const settings = testKafkaSettings(uniqueSuffix());
    await kafka.admin.createTopics({
      topics: [{ topic: settings.topics.deadLetter, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }],
      // connect() below waits until the topic has a leader.
      waitForLeaders: false,
    });
    const logger = new CapturingLogger();
    const bus = newBus(settings, logger);
    await bus.connect();
    const letter: DeadLetter = {
      reason: 'limit_exceeded',
      detail: 'event is 20000 bytes',
      original: {
        topic: settings.topics.received,
        partition: 0,
        offset: '41',
        key: new TextEncoder().encode('conv-big'),
        value: new Uint8Array(20_000).fill(0x61),
        headers: { trace_id: 'trace-big' },
      },
    };

    await bus.publishDeadLetter(letter);

    const [record, ...others] = await kafka.readAll(settings.topics.deadLetter);
    expect(others).toHaveLength(0);
    expect(record?.value).toBeNull();
    expect(record?.key?.toString()).toBe('conv-big');
    const headers = decodeHeaders(record?.headers);
    expect(headers['dlq_reason']).toBe('limit_exceeded');
    expect(headers['dlq_source_offset']).toBe('41');
    expect(headers['dlq_value_omitted']).toContain('20000 bytes');
    expect(headers['trace_id']).toBeUndefined();
    expect(logger.lines.some((line) => line.level === 'warn' && line.message.includes('too large'))).toBe(true);
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
    let redeliveries = 0;
    const bus = new KafkaEventBus(settings, logger, {
      stopTimeoutMs: 5000,
      redeliveryDelayMs: 3000,
      maxRedeliveryDelayMs: 3000,
      onRedelivery: () => {
        redeliveries += 1;
      },
    });
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
    expect(redeliveries).toBe(failures.length);
  });

  it('blocked key leaves its partition running', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 1 });
    const bus = newBus(settings);
    await bus.connect();
    const blockedStarted = deferred();
    const release = deferred();
    const finished: string[] = [];
    await bus.consume(async (record) => {
      if (text(record) === 'slow') {
        blockedStarted.resolve();
        await release.promise;
      }
      finished.push(text(record));
    });

    await kafka.send(settings.topics.received, { key: 'conv-a', value: 'slow' });
    await withTimeout(blockedStarted.promise, 20_000, 'the slow record to start');
    await kafka.send(settings.topics.received, { key: 'conv-b', value: 'fast' });
    await waitUntil(() => finished.includes('fast'), 20_000, 'the record of the other key');

    expect(finished).toEqual(['fast']);
    release.resolve();
    await waitUntil(() => finished.includes('slow'), 20_000, 'the slow record');
  });

  it('blocked partition leaves other partitions running', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 2 });
    const bus = newBus(settings);
    await bus.connect();
    const blockedStarted = deferred();
    const release = deferred();
    const finished: InboundRecord[] = [];
    await bus.consume(async (record) => {
      if (record.partition === 0) {
        blockedStarted.resolve();
        await release.promise;
      }
      finished.push(record);
    });

    // The same key on both partitions, so only the partition distinguishes the records.
    await kafka.send(settings.topics.received, { key: 'conv-same', value: 'slow', partition: 0 });
    await withTimeout(blockedStarted.promise, 20_000, 'the record of partition 0 to start');
    await kafka.send(settings.topics.received, { key: 'conv-same', value: 'fast', partition: 1 });
    await waitUntil(() => finished.length >= 1, 20_000, 'the record of partition 1');

    expect(finished.map((record) => [record.partition, text(record)])).toEqual([[1, 'fast']]);
    release.resolve();
    await waitUntil(() => finished.length >= 2, 20_000, 'the record of partition 0');
  });

  it('keeps key order in one partition', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 1 });
    const bus = newBus(settings);
    await bus.connect();
    const keys = ['conv-1', 'conv-2', 'conv-3', 'conv-4', 'conv-5'];
    const perKey = 20;
    for (let index = 0; index < perKey; index += 1) {
      for (const key of keys) {
        await kafka.send(settings.topics.received, { key, value: `${key}:${index}` });
      }
    }
    const deliveries: InboundRecord[] = [];
    let running = 0;
    let maxRunning = 0;

    await bus.consume(async (record) => {
      deliveries.push(record);
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 10)));
      running -= 1;
    });
    await waitUntil(() => deliveries.length >= keys.length * perKey, 20_000, 'every record');

    expect(deliveries).toHaveLength(keys.length * perKey);
    for (const key of keys) {
      const values = deliveries.filter((record) => keyText(record) === key).map(text);
      expect(values).toEqual(Array.from({ length: perKey }, (_, index) => `${key}:${index}`));
    }
    expect(maxRunning).toBeGreaterThan(1);
    expect(maxRunning).toBeLessThanOrEqual(keys.length);
    await waitForCommitted(settings, 0, String(keys.length * perKey));
  });

  it('commit stays below an unfinished record', { timeout: 60_000 }, async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 1 });
    const logger = new CapturingLogger();
    const bus = newBus(settings, logger);
    await bus.connect();
    const release = deferred();
    const finished: string[] = [];
    for (const [key, value] of [['conv-b', 'b0'], ['conv-b', 'b1'], ['conv-a', 'blocked'], ['conv-c', 'c0'], ['conv-c', 'c1']]) {
      await kafka.send(settings.topics.received, { key: key!, value: value! });
    }

    await bus.consume(async (record) => {
      if (text(record) === 'blocked') {
        await release.promise;
      }
      finished.push(text(record));
    });
    await waitUntil(() => finished.length >= 4, 20_000, 'the four records around the blocked one');
    await waitForCommitted(settings, 0, '2');
    const commitsWhileBlocked = committedOffsetsLogged(logger);

    expect(finished.sort()).toEqual(['b0', 'b1', 'c0', 'c1']);
    expect(commitsWhileBlocked.length).toBeGreaterThanOrEqual(1);
    expect(commitsWhileBlocked.every((offset) => offset <= 2)).toBe(true);
    expect((await kafka.committedOffsets(settings.consumerGroup, settings.topics.received)).get(0)).toBe('2');

    release.resolve();
    await waitForCommitted(settings, 0, '5');
  });

  it('retried record blocks only its key', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 1 });
    const logger = new CapturingLogger();
    const bus = new KafkaEventBus(settings, logger, { stopTimeoutMs: 5000, redeliveryDelayMs: 1000, maxRedeliveryDelayMs: 1000 });
    buses.push(bus);
    groups.push(settings.consumerGroup);
    kafka.deleteTopicsLater(allTopics(settings));
    await bus.connect();
    const events: string[] = [];
    await kafka.send(settings.topics.received, { key: 'conv-retry', value: 'r0' });
    await kafka.send(settings.topics.received, { key: 'conv-retry', value: 'r1' });
    await kafka.send(settings.topics.received, { key: 'conv-other', value: 'o0' });
    await kafka.send(settings.topics.received, { key: 'conv-other', value: 'o1' });
    let failed = false;

    await bus.consume(async (record) => {
      const value = text(record);
      events.push(value);
      if (value === 'r0' && !failed) {
        failed = true;
        throw new Error('simulated handler failure');
      }
    });
    await waitUntil(() => events.includes('r1'), 20_000, 'the second record of the retried key');

    expect(events.filter((value) => value.startsWith('r'))).toEqual(['r0', 'r0', 'r1']);
    expect(events.indexOf('o1')).toBeLessThan(events.lastIndexOf('r0'));
    const failures = logger.lines.filter((line) => line.message === 'inbound record handler failed; the record will be delivered again');
    expect(failures).toHaveLength(1);
    expect(failures[0]?.level).toBe('warn');
    expect(failures[0]?.fields).toMatchObject({ topic: settings.topics.received, partition: 0, offset: '0', failures: 1, retry_in_ms: 1000 });
    await waitForCommitted(settings, 0, '4');
  });

  it('maxInFlightPerPartition bounds handlers in flight', async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 1, maxInFlightPerPartition: 3 });
    const bus = newBus(settings);
    await bus.connect();
    const total = 10;
    for (let index = 0; index < total; index += 1) {
      await kafka.send(settings.topics.received, { key: `conv-${index}`, value: `m${index}` });
    }
    const releases: Deferred[] = [];
    const started: string[] = [];
    let releaseAll = false;
    let running = 0;
    let maxRunning = 0;
    const fourthStarted = deferred();

    await bus.consume(async (record) => {
      started.push(text(record));
      if (started.length === 4) {
        fourthStarted.resolve();
      }
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      if (!releaseAll) {
        const release = deferred();
        releases.push(release);
        await release.promise;
      }
      running -= 1;
    });
    await waitUntil(() => started.length >= 3, 20_000, 'three handlers to start');

    // Three fetch waits of 500 ms: a fourth record would have arrived by then without the bound.
    expect(await pendingAfter(fourthStarted.promise, 1500)).toBe(true);
    expect(started).toEqual(['m0', 'm1', 'm2']);
    releases[0]?.resolve();
    await withTimeout(fourthStarted.promise, 20_000, 'a fourth handler after one finished');
    expect(started[3]).toBe('m3');
    releaseAll = true;
    releases.forEach((release) => release.resolve());
    await waitUntil(() => started.length >= total && running === 0, 20_000, 'every handler');

    expect(maxRunning).toBe(3);
    await waitForCommitted(settings, 0, String(total));
  });

  it('revoked partition is not committed', { timeout: 60_000 }, async () => {
    const settings = testKafkaSettings(uniqueSuffix(), { topicPartitions: 2 });
    const firstLogger = new CapturingLogger();
    const first = newBus(settings, firstLogger);
    await first.connect();
    const release = deferred();
    const firstStarted: InboundRecord[] = [];
    await first.consume(async (record) => {
      firstStarted.push(record);
      await release.promise;
    });
    await kafka.send(settings.topics.received, { key: 'conv-p0', value: 'p0', partition: 0 });
    await kafka.send(settings.topics.received, { key: 'conv-p1', value: 'p1', partition: 1 });
    await waitUntil(() => firstStarted.length >= 2, 20_000, 'both records at the first consumer');

    // The second member takes one partition and keeps its record unfinished, so only a commit
    // by the first member could move that partition's committed offset.
    const second = newBus(settings, new CapturingLogger(), 1000);
    await second.connect();
    const secondStarted: InboundRecord[] = [];
    await second.consume(async (record) => {
      secondStarted.push(record);
      await new Promise(() => {});
    });
    await waitUntil(() => secondStarted.length >= 1, 30_000, 'the moved record at the second consumer');
    const moved = secondStarted[0]!.partition;
    const keptPartition = 1 - moved;
    await waitUntil(
      () => firstLogger.lines.some((line) => line.message.startsWith('partition revoked') && line.fields['partition'] === moved),
      20_000,
      'the first consumer to drop the moved partition',
    );

    release.resolve();
    await waitForCommitted(settings, keptPartition, '1');
    await first.stop();

    // Before the rebalance the first member may have committed the moved partition's position,
    // which is the unfinished record's own offset 0; finishing that record after the revocation
    // must not move it to 1.
    const offsets = await kafka.committedOffsets(settings.consumerGroup, settings.topics.received);
    expect(['-1', '0']).toContain(offsets.get(moved));
    const revokedAt = firstLogger.lines.findIndex(
      (line) => line.message.startsWith('partition revoked') && line.fields['partition'] === moved,
    );
    const commitsAfterRevoke = firstLogger.lines
      .slice(revokedAt)
      .filter((line) => line.message === 'offset committed' && line.fields['partition'] === moved);
    expect(commitsAfterRevoke).toHaveLength(0);
  });

  it('heartbeats while a slow handler runs', { timeout: 60_000 }, async () => {
    // One partition with room for one record: the partition stays paused while the handler runs,
    // so no fetch returns records and only kafkajs' heartbeats between fetches keep the member alive.
    const settings = testKafkaSettings(uniqueSuffix(), { sessionTimeoutMs: 6000, topicPartitions: 1, maxInFlightPerPartition: 1 });
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

const decoder = new TextDecoder();

function text(record: InboundRecord): string {
  return decoder.decode(record.value ?? new Uint8Array());
}

function keyText(record: InboundRecord): string | null {
  return record.key === null ? null : decoder.decode(record.key);
}

/** Returns true when `promise` is still pending after `ms` milliseconds. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(marker), ms))]);
  return winner === marker;
}

/** Polls the group's committed offset of one partition until it equals `offset`. */
async function waitForCommitted(settings: KafkaEventBusSettings, partition: number, offset: string): Promise<void> {
  let committed: string | undefined;
  const readCommitted = async () => {
    committed = (await kafka.committedOffsets(settings.consumerGroup, settings.topics.received)).get(partition);
  };
  await waitForAsync(readCommitted, () => committed === offset, 20_000).catch((error: unknown) => {
    throw new Error(`committed offset of partition ${partition} stayed at ${committed}, expected ${offset}`, { cause: error });
  });
}

/** Offsets the bus logged as committed, in log order. */
function committedOffsetsLogged(logger: CapturingLogger): number[] {
  return logger.lines.filter((line) => line.message === 'offset committed').map((line) => Number(line.fields['commit_offset']));
}
