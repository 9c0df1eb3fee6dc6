/**
 * Benchmark: replays the public conversation stream through the real service on a real broker
 * and reports throughput, processing time and the service's memory.
 *
 * Usage: tsx scripts/bench.ts [--copies N] [--model-delay-ms MS] [--stream FILE]
 *   throughput   the stream N times (fresh conversation and message ids per copy), offline answerer
 *   slow model   the stream once, against a local fake chat-completions server that takes MS per call
 * Environment: BENCH_KAFKA_BROKER (default 127.0.0.1:9092), BENCH_REDIS_URL (default
 * redis://127.0.0.1:6379). Run it with scripts/bench.sh, which starts the broker.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import kafkajs from 'kafkajs';

import type { MessageGeneratedEvent } from '../src/domain/events.js';
import { startFakeOpenAiServer } from '../test/support/fake-openai-server.js';

import { startServiceProcess, stopServiceProcess, type ServiceTopics } from './lib/service-runner.js';

const { Kafka, logLevel } = kafkajs;

const { values: options } = parseArgs({
  options: {
    copies: { type: 'string', default: '8' },
    'model-delay-ms': { type: 'string', default: '300' },
    stream: { type: 'string', default: '../shared/data/conversations_real_dupes.jsonl' },
  },
});

const broker = process.env['BENCH_KAFKA_BROKER'] ?? '127.0.0.1:9092';
const redisUrl = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

interface ScenarioResult {
  name: string;
  events: number;
  replies: number;
  wallSeconds: number;
  processingMs: { p50: number; p95: number; max: number };
  peakRssMiB: number;
  cpuSeconds: number;
}

async function main(): Promise<void> {
  const streamLines = readFileSync(options.stream!, 'utf8').split('\n').filter((line) => line.trim() !== '');
  const copies = Number(options.copies);
  const modelDelayMs = Number(options['model-delay-ms']);

  const throughput = await runScenario(`throughput, offline answerer, ${copies} copies`, copiesOf(streamLines, copies), {});

  const model = await startFakeOpenAiServer();
  model.setHandler(() => ({ kind: 'slow', delayMs: modelDelayMs, then: { kind: 'answer' } }));
  let slowModel: ScenarioResult;
  try {
    slowModel = await runScenario(`slow model, ${modelDelayMs} ms per call, 1 copy`, copiesOf(streamLines, 1), {
      LLM_BASE_URL: model.url,
      LLM_API_KEY: 'bench',
      LLM_TIMEOUT_MS: String(modelDelayMs * 10),
      LLM_MAX_RETRIES: '0',
      DEDUP_LEASE_MS: String(modelDelayMs * 10 + 5000),
    });
  } finally {
    await model.close();
  }

  console.log('\n| scenario | events | replies | wall time | replies/s | processing p50 / p95 / max | peak RSS | CPU |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const result of [throughput, slowModel]) {
    console.log(
      `| ${result.name} | ${result.events} | ${result.replies} | ${result.wallSeconds.toFixed(1)} s | ${(result.replies / result.wallSeconds).toFixed(0)} | ${result.processingMs.p50} / ${result.processingMs.p95} / ${result.processingMs.max} ms | ${result.peakRssMiB.toFixed(0)} MiB | ${result.cpuSeconds.toFixed(1)} s |`,
    );
  }
}

/** Rewrites conversation and message ids per copy, so every copy is new work for the service. */
function copiesOf(lines: string[], copies: number): Array<{ key: string; value: string; replyKey: string }> {
  const records: Array<{ key: string; value: string; replyKey: string }> = [];
  for (let copy = 0; copy < copies; copy += 1) {
    for (const line of lines) {
      const event = JSON.parse(line) as { tenant_id: string; data: { conversation_id: string; message_id: string } };
      event.data.conversation_id = `${event.data.conversation_id}-c${copy}`;
      event.data.message_id = `${event.data.message_id}-c${copy}`;
      records.push({
        key: event.data.conversation_id,
        value: JSON.stringify(event),
        replyKey: `${event.tenant_id} ${event.data.message_id}`,
      });
    }
  }
  return records;
}

async function runScenario(
  name: string,
  records: Array<{ key: string; value: string; replyKey: string }>,
  extraEnv: Record<string, string>,
): Promise<ScenarioResult> {
  const runId = randomUUID().slice(0, 8);
  const topics: ServiceTopics = {
    received: `bench.${runId}.conversation.message_received`,
    generated: `bench.${runId}.conversation.message_generated`,
    deadLetter: `bench.${runId}.conversation.message_received.dlq`,
  };
  const expected = new Set(records.map((record) => record.replyKey));
  console.log(`${name}: ${records.length} events, ${expected.size} distinct messages`);

  const service = await startServiceProcess({ runId, label: 'bench', broker, topics, redisUrl, extraEnv: { LOG_LEVEL: 'warn', ...extraEnv } });
  const kafka = new Kafka({ clientId: `bench-${runId}`, brokers: [broker], logLevel: logLevel.NOTHING });
  const watcher = kafka.consumer({ groupId: `bench-watch-${runId}`, maxWaitTimeInMs: 100 });
  const producer = kafka.producer();
  const replies = new Map<string, MessageGeneratedEvent>();
  let peakRssKiB = 0;
  const sampler = setInterval(() => {
    peakRssKiB = Math.max(peakRssKiB, readStatusKiB(service.child.pid!, 'VmRSS'));
  }, 100);

  try {
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    await watcher.connect();
    await watcher.subscribe({ topics: [topics.generated], fromBeginning: true });
    await watcher.run({
      eachMessage: async ({ message }) => {
        const reply = JSON.parse(message.value!.toString('utf8')) as MessageGeneratedEvent;
        replies.set(`${reply.tenant_id} ${reply.data.in_reply_to}`, reply);
        if (replies.size >= expected.size) done();
      },
    });
    await producer.connect();

    const cpuBefore = readCpuSeconds(service.child.pid!);
    const startedAt = Date.now();
    for (let index = 0; index < records.length; index += 500) {
      await producer.send({ topic: topics.received, messages: records.slice(index, index + 500).map(({ key, value }) => ({ key, value })) });
    }
    const timeout = setTimeout(done, 300_000);
    await finished;
    clearTimeout(timeout);
    const wallSeconds = (Date.now() - startedAt) / 1000;
    const cpuSeconds = readCpuSeconds(service.child.pid!) - cpuBefore;
    peakRssKiB = Math.max(peakRssKiB, readStatusKiB(service.child.pid!, 'VmHWM'));

    const times = [...replies.values()].map((reply) => reply.data.processing_time_ms).sort((left, right) => left - right);
    return {
      name,
      events: records.length,
      replies: replies.size,
      wallSeconds,
      processingMs: { p50: percentile(times, 0.5), p95: percentile(times, 0.95), max: times.at(-1) ?? 0 },
      peakRssMiB: peakRssKiB / 1024,
      cpuSeconds,
    };
  } finally {
    clearInterval(sampler);
    await producer.disconnect().catch(() => {});
    await watcher.disconnect().catch(() => {});
    await stopServiceProcess(service.child);
  }
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

/** Reads a `VmRSS`/`VmHWM` line of /proc/PID/status, in KiB (Linux only). */
function readStatusKiB(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** User plus system CPU time of a process from /proc/PID/stat, in seconds (Linux only). */
function readCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // USER_HZ: 100 on Linux x86_64 and arm64 (`getconf CLK_TCK`).
  const ticksPerSecond = 100;
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

await main();
