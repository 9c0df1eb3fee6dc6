/**
 * Demo: runs the real service against a Kafka broker, publishes a stream of
 * `conversation.message_received` events (JSON Lines), prints every reply and dead letter as it
 * comes out, then a summary. Exits 1 when a reply or dead letter is missing or unexpected.
 *
 * Usage: tsx scripts/demo.ts [--input FILE] [--timeout SECONDS]
 * Environment: DEMO_KAFKA_BROKER (default 127.0.0.1:9092), DEMO_REDIS_URL (unset: in-memory
 * stores), and any LLM_* setting, passed on to the service (none: the offline answerer).
 *
 * Each run uses its own topics (`demo.<run id>.*`), consumer group and Redis key prefix, so runs
 * never see each other's events or deduplication records.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import kafkajs from 'kafkajs';

import { loadAssistantsFile } from '../src/adapters/outbound/assistants/assistants-file.js';
import { decodeMessageReceived } from '../src/domain/decode-message-received.js';
import type { MessageGeneratedEvent } from '../src/domain/events.js';
import { loadConfig } from '../src/main/config.js';

import { startServiceProcess, stopServiceProcess } from './lib/service-runner.js';

const { Kafka, logLevel } = kafkajs;

const { values: options } = parseArgs({
  options: {
    input: { type: 'string', default: 'demo/events.pt-BR.jsonl' },
    timeout: { type: 'string', default: '180' },
  },
});

const broker = process.env['DEMO_KAFKA_BROKER'] ?? '127.0.0.1:9092';
const redisUrl = process.env['DEMO_REDIS_URL'];
const runId = randomUUID().slice(0, 8);
const topics = {
  received: `demo.${runId}.conversation.message_received`,
  generated: `demo.${runId}.conversation.message_generated`,
  deadLetter: `demo.${runId}.conversation.message_received.dlq`,
};

interface InputLine {
  lineNumber: number;
  raw: string;
  key: string | null;
  /** `tenant message_id` when the service must reply to it, else undefined. */
  replyKey: string | undefined;
  conversation: string | undefined;
  expectedDeadLetter: string | undefined;
}

async function main(): Promise<void> {
  const lines = readInput(options.input!);
  const expectation = expectedOutcome(lines);
  const timeoutMs = Number(options.timeout) * 1000;

  console.log(`input       ${options.input} (${lines.length} events)`);
  console.log(`broker      ${broker}   topics demo.${runId}.*`);
  console.log(`stores      ${redisUrl === undefined ? 'in-memory (no Redis)' : `Redis ${redisUrl}`}`);
  console.log(`expecting   ${expectation.replies.size} replies and ${expectation.deadLetters} dead letters\n`);

  const service = await startServiceProcess({ runId, label: 'demo', broker, topics, redisUrl });
  console.log(`service     started (pid ${service.child.pid}, http 127.0.0.1:${service.port}, log ${service.logPath})`);
  const kafka = new Kafka({ clientId: `demo-${runId}`, brokers: [broker], logLevel: logLevel.NOTHING });
  const watcher = kafka.consumer({ groupId: `demo-watch-${runId}` });
  const producer = kafka.producer();
  const startedAt = Date.now();

  const replies = new Map<string, MessageGeneratedEvent[]>();
  const deadLetters = new Map<string, number>();
  const replyOrder = new Map<string, string[]>();
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });

  try {
    await watcher.connect();
    await watcher.subscribe({ topics: [topics.generated, topics.deadLetter], fromBeginning: true });
    await watcher.run({
      eachMessage: async ({ topic, message }) => {
        if (topic === topics.generated) {
          const reply = JSON.parse(message.value!.toString('utf8')) as MessageGeneratedEvent;
          recordReply(reply, replies, replyOrder);
        } else {
          const reason = message.headers?.['dlq_reason']?.toString() ?? 'unknown';
          deadLetters.set(reason, (deadLetters.get(reason) ?? 0) + 1);
          const detail = message.headers?.['dlq_detail']?.toString() ?? '';
          console.log(`✗ dead letter  ${reason.padEnd(20)} offset ${message.headers?.['dlq_source_offset']?.toString()}  ${detail.slice(0, 90)}`);
        }
        const deadLetterCount = [...deadLetters.values()].reduce((sum, count) => sum + count, 0);
        if (replies.size >= expectation.replies.size && deadLetterCount >= expectation.deadLetters) {
          done();
        }
      },
    });

    await producer.connect();
    for (const line of lines) {
      await producer.send({ topic: topics.received, messages: [{ key: line.key, value: line.raw }] });
    }
    console.log(`published   ${lines.length} events to ${topics.received}\n`);

    const timer = setTimeout(done, timeoutMs);
    const progress = setInterval(() => {
      const deadLetterCount = [...deadLetters.values()].reduce((sum, count) => sum + count, 0);
      console.log(
        `… waiting: ${replies.size} of ${expectation.replies.size} replies, ${deadLetterCount} of ${expectation.deadLetters} dead letters (gives up after ${options.timeout} s)`,
      );
    }, 10_000);
    await finished;
    clearTimeout(timer);
    clearInterval(progress);
  } finally {
    await producer.disconnect().catch(() => {});
    await watcher.disconnect().catch(() => {});
    await stopServiceProcess(service.child);
  }

  const ok = summarise({ lines, expectation, replies, replyOrder, deadLetters, elapsedMs: Date.now() - startedAt });
  console.log(`\nservice log ${service.logPath}`);
  process.exitCode = ok ? 0 : 1;
}

function readInput(path: string): InputLine[] {
  if (!existsSync(path)) {
    console.error(`error: input file ${path} not found; pass a JSON Lines file of conversation.message_received events`);
    process.exit(2);
  }
  // The service reads the same environment, so the limits and assistants file agree with it.
  const config = loadConfig({ ...process.env, ENABLE_KAFKA: 'true', IN_MEMORY_EVENT_BUS: 'false' });
  const file = loadAssistantsFile(config.assistantsFile);
  const assistants = new Set(
    file.tenants.flatMap((tenant) => tenant.assistants.map((assistant) => `${tenant.tenant_id}/${assistant.id}`)),
  );

  return readFileSync(path, 'utf8')
    .split('\n')
    .map((raw, index) => ({ raw, lineNumber: index + 1 }))
    .filter((line) => line.raw.trim() !== '')
    .map(({ raw, lineNumber }) => {
      const decoded = decodeMessageReceived(raw, config.limits, () => 'demo');
      if (!decoded.ok) {
        return { lineNumber, raw, key: decoded.conversationId ?? null, replyKey: undefined, conversation: decoded.conversationId, expectedDeadLetter: decoded.reason };
      }
      const event = decoded.event;
      const known = assistants.has(`${event.tenant_id}/${event.data.assistant_id}`);
      return {
        lineNumber,
        raw,
        key: event.data.conversation_id,
        // The service releases rejected messages instead of marking them done, so every
        // delivery of an unknown tenant or assistant is dead-lettered.
        replyKey: known ? `${event.tenant_id} ${event.data.message_id}` : undefined,
        conversation: `${event.tenant_id}/${event.data.conversation_id}`,
        expectedDeadLetter: known ? undefined : 'unknown tenant or assistant',
      };
    });
}

/** Works out which replies and how many dead letters the service must produce. */
function expectedOutcome(lines: InputLine[]): { replies: Set<string>; deadLetters: number } {
  const replies = new Set<string>();
  let deadLetters = 0;
  for (const line of lines) {
    if (line.replyKey === undefined) {
      deadLetters += 1;
    } else {
      replies.add(line.replyKey);
    }
  }
  return { replies, deadLetters };
}

function recordReply(
  reply: MessageGeneratedEvent,
  replies: Map<string, MessageGeneratedEvent[]>,
  replyOrder: Map<string, string[]>,
): void {
  const key = `${reply.tenant_id} ${reply.data.in_reply_to}`;
  const seen = replies.get(key) ?? [];
  seen.push(reply);
  replies.set(key, seen);

  const conversation = `${reply.tenant_id}/${reply.data.conversation_id}`;
  const order = replyOrder.get(conversation) ?? [];
  order.push(reply.data.in_reply_to);
  replyOrder.set(conversation, order);

  const source = reply.data.meta.reply_source === 'fallback' ? ' (fallback)' : '';
  console.log(
    `✓ reply  ${`${reply.tenant_id}/${reply.data.conversation_id}`.padEnd(36)} ${String(reply.data.processing_time_ms).padStart(5)} ms  ${reply.data.model_name}${source}\n    ${truncate(reply.data.text, 110)}`,
  );
}

function summarise(run: {
  lines: InputLine[];
  expectation: ReturnType<typeof expectedOutcome>;
  replies: Map<string, MessageGeneratedEvent[]>;
  replyOrder: Map<string, string[]>;
  deadLetters: Map<string, number>;
  elapsedMs: number;
}): boolean {
  const problems: string[] = [];
  const answerable = run.lines.filter((line) => line.replyKey !== undefined);
  const duplicates = answerable.length - run.expectation.replies.size;

  const missing = [...run.expectation.replies].filter((key) => !run.replies.has(key));
  const extra = [...run.replies.keys()].filter((key) => !run.expectation.replies.has(key));
  const repeated = [...run.replies.entries()].filter(([, list]) => list.length > 1);
  const conflicting = repeated.filter(([, list]) => new Set(list.map((reply) => reply.data.text)).size > 1);
  if (missing.length > 0) problems.push(`${missing.length} messages got no reply`);
  if (extra.length > 0) problems.push(`${extra.length} replies answer no expected message`);
  if (conflicting.length > 0) problems.push(`${conflicting.length} replies were published twice with different text`);

  const expectedOrder = new Map<string, string[]>();
  for (const line of answerable) {
    const messageId = line.replyKey!.split(' ')[1]!;
    const order = expectedOrder.get(line.conversation!) ?? [];
    if (!order.includes(messageId)) order.push(messageId);
    expectedOrder.set(line.conversation!, order);
  }
  const outOfOrder = [...expectedOrder.entries()].filter(([conversation, order]) => {
    const firstSeen = [...new Set(run.replyOrder.get(conversation) ?? [])];
    return firstSeen.join(',') !== order.slice(0, firstSeen.length).join(',');
  });
  if (outOfOrder.length > 0) problems.push(`${outOfOrder.length} conversations got replies out of order`);

  const deadLetterTotal = [...run.deadLetters.values()].reduce((sum, count) => sum + count, 0);
  if (deadLetterTotal !== run.expectation.deadLetters) {
    problems.push(`${deadLetterTotal} dead letters, expected ${run.expectation.deadLetters}`);
  }

  const times = [...run.replies.values()].map((list) => list[0]!.data.processing_time_ms).sort((a, b) => a - b);
  const median = times.length > 0 ? times[Math.floor(times.length / 2)] : 0;

  console.log('\nsummary');
  console.log(`  events published        ${run.lines.length}`);
  console.log(`  distinct messages       ${run.expectation.replies.size}`);
  console.log(`  redeliveries dropped    ${duplicates}`);
  console.log(`  replies received        ${run.replies.size} (${repeated.length} published more than once, same text)`);
  console.log(`  conversations in order  ${expectedOrder.size - outOfOrder.length}/${expectedOrder.size}`);
  console.log(`  dead letters            ${deadLetterTotal}${formatCounts(run.deadLetters)}`);
  console.log(`  median processing time  ${median} ms`);
  console.log(`  wall time               ${(run.elapsedMs / 1000).toFixed(1)} s`);
  console.log(problems.length === 0 ? '  result                  OK' : `  result                  FAILED: ${problems.join('; ')}`);
  return problems.length === 0;
}

function formatCounts(counts: Map<string, number>): string {
  return counts.size === 0 ? '' : ` (${[...counts.entries()].map(([reason, count]) => `${reason} ${count}`).join(', ')})`;
}

function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

await main();
