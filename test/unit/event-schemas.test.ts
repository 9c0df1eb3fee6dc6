import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { DiagnosticSeverity, Parser, fromFile, type AsyncAPIDocumentInterface } from '@asyncapi/parser';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsPlugin from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { beforeAll, describe, expect, it } from 'vitest';

import { ProcessMessage } from '../../src/application/process-message.js';
import { deadLetterRecord, generatedRecord } from '../../src/adapters/outbound/event-bus/kafka-records.js';
import { InMemoryAssistantRepo } from '../../src/adapters/outbound/assistants/in-memory-assistant-repo.js';
import { InMemoryDedupStore } from '../../src/adapters/outbound/dedup/in-memory-dedup-store.js';
import { InMemoryEventBus } from '../../src/adapters/outbound/event-bus/in-memory-event-bus.js';
import { OfflineLlmClient } from '../../src/adapters/outbound/llm/offline-llm-client.js';
import { InMemoryMemoryRepo } from '../../src/adapters/outbound/memory/in-memory-memory-repo.js';
import { DeadLetterReason, type DeadLetter } from '../../src/domain/dead-letter.js';
import { decodeMessageReceived } from '../../src/domain/decode-message-received.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import {
  messageGeneratedSchema,
  messageReceivedSchema,
  type MessageGeneratedEvent,
  type MessageReceivedEvent,
} from '../../src/domain/events.js';
import { deriveReplyMessageId } from '../../src/domain/ids.js';
import type { LlmClient } from '../../src/domain/ports/llm-client.js';
import { environmentSchema } from '../../src/main/config.js';
import { NON_BLANK_PATTERN, buildEventSchemaFiles, renderSchema, type JsonSchemaDocument } from '../../scripts/event-json-schemas.js';
import { CapturingLogger, CountingMetrics, ManualClock, TEST_ASSISTANTS, receivedEvent } from '../support/fakes.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ASYNCAPI_FILE = resolve(ROOT, 'asyncapi/asyncapi.yaml');
const RECEIVED_SCHEMA_FILE = 'schemas/conversation.message_received.schema.json';
const GENERATED_SCHEMA_FILE = 'schemas/conversation.message_generated.schema.json';
/** Real inbound events stored outside the repository. The test reads them and never copies them in. */
const REAL_EVENTS_FILE = resolve(ROOT, '../shared/data/conversations_real.jsonl');

/** ajv-formats is CommonJS: Node imports its plugin function, but TypeScript under NodeNext types the default import as the module object. */
const addFormats = addFormatsPlugin as unknown as typeof addFormatsPlugin.default;

/**
 * Keywords whose meaning is the same in draft-07 and draft 2020-12. @asyncapi/parser 3.6.3
 * validates payload schemas as draft-07 only, so the exported files must stay inside this set.
 */
const KEYWORDS_SHARED_WITH_DRAFT_07 = new Set([
  '$schema', '$id', 'title', 'description',
  'type', 'const', 'enum', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum',
  'properties', 'required', 'additionalProperties', 'propertyNames',
]);

/** Keywords whose value is a map from property name to schema. */
const SCHEMA_MAP_KEYWORDS = new Set(['properties']);
/** Keywords whose value is one schema. */
const SCHEMA_KEYWORDS = new Set(['additionalProperties', 'propertyNames']);

interface Sample {
  name: string;
  event: unknown;
  valid: boolean;
}

async function readJson(path: string): Promise<JsonSchemaDocument> {
  return JSON.parse(await readFile(resolve(ROOT, path), 'utf8')) as JsonSchemaDocument;
}

function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv;
}

/** Compiles a schema from the AsyncAPI document, which carries `x-` extensions that strict mode rejects. */
function compileAsyncApiSchema(schema: unknown): ValidateFunction {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  return ajv.compile(withoutParserAnnotations(schema) as JsonSchemaDocument);
}

/** Returns a deep copy of `value` with the field at `path` set, or removed when `field` is undefined. */
function withField(value: unknown, path: string[], field: unknown): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  let target = copy;
  for (const key of path.slice(0, -1)) {
    target = target[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (field === undefined) {
    delete target[last];
  } else {
    target[last] = field;
  }
  return copy;
}

/** Returns the keywords outside KEYWORDS_SHARED_WITH_DRAFT_07, as JSON Pointers. */
function unsharedKeywords(schema: unknown, pointer = ''): string[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return [];
  }
  const found: string[] = [];
  for (const [keyword, value] of Object.entries(schema)) {
    if (!KEYWORDS_SHARED_WITH_DRAFT_07.has(keyword)) {
      found.push(`${pointer}/${keyword}`);
    } else if (SCHEMA_MAP_KEYWORDS.has(keyword)) {
      for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
        found.push(...unsharedKeywords(child, `${pointer}/${keyword}/${name}`));
      }
    } else if (SCHEMA_KEYWORDS.has(keyword)) {
      found.push(...unsharedKeywords(value, `${pointer}/${keyword}`));
    }
  }
  return found;
}

/** Removes the `x-parser-*` annotations that @asyncapi/parser adds to every schema it reads. */
function withoutParserAnnotations(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(withoutParserAnnotations);
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !key.startsWith('x-parser-'))
      .map(([key, child]) => [key, withoutParserAnnotations(child)]),
  );
}

async function readFirstLines(path: string, count: number): Promise<string[]> {
  const lines: string[] = [];
  const reader = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  try {
    for await (const line of reader) {
      lines.push(line);
      if (lines.length === count) {
        break;
      }
    }
  } finally {
    reader.close();
  }
  return lines;
}

/** Expects ajv and zod to reach the expected verdict on every sample, one assertion each. */
function expectAgreement(samples: Sample[], validate: ValidateFunction, schema: z.ZodType): void {
  for (const sample of samples) {
    const ajvValid = validate(sample.event);
    expect(ajvValid, `ajv on "${sample.name}": ${JSON.stringify(validate.errors)}`).toBe(sample.valid);

    const zodResult = schema.safeParse(sample.event);
    expect(zodResult.success, `zod on "${sample.name}": ${JSON.stringify(zodResult.error?.issues)}`).toBe(sample.valid);
  }
}

describe('event JSON Schemas', () => {
  let ajv: Ajv2020;
  let validateReceived: ValidateFunction;
  let validateGenerated: ValidateFunction;

  beforeAll(async () => {
    ajv = createAjv();
    validateReceived = ajv.compile(await readJson(RECEIVED_SCHEMA_FILE));
    validateGenerated = ajv.compile(await readJson(GENERATED_SCHEMA_FILE));
  });

  it('committed files match a fresh export', async () => {
    const files = buildEventSchemaFiles();

    expect(files.map((file) => file.path).sort()).toEqual([GENERATED_SCHEMA_FILE, RECEIVED_SCHEMA_FILE]);
    for (const file of files) {
      const committed = await readFile(resolve(ROOT, file.path), 'utf8');
      expect(committed, `${file.path} is out of date: run npm run schemas`).toBe(renderSchema(file.schema));
    }
  });

  it('schemas declare draft 2020-12, $id and title', async () => {
    for (const path of [RECEIVED_SCHEMA_FILE, GENERATED_SCHEMA_FILE]) {
      const schema = await readJson(path);

      expect(schema['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema['$id']).toMatch(/^urn:ia-conversational:schema:conversation\.message_(received|generated):1$/);
      expect(schema['title']).toEqual(expect.any(String));
    }
  });

  it('schemas use only keywords shared with draft-07', async () => {
    for (const path of [RECEIVED_SCHEMA_FILE, GENERATED_SCHEMA_FILE]) {
      expect(unsharedKeywords(await readJson(path)), path).toEqual([]);
    }
  });

  it('timestamp carries format date-time', async () => {
    for (const path of [RECEIVED_SCHEMA_FILE, GENERATED_SCHEMA_FILE]) {
      const schema = await readJson(path);
      const timestamp = (schema['properties'] as Record<string, JsonSchemaDocument>)['timestamp'];

      expect(timestamp, path).toMatchObject({ type: 'string', format: 'date-time' });
    }
  });

  it('non-blank pattern matches what trim keeps', () => {
    const pattern = new RegExp(NON_BLANK_PATTERN, 'u');
    const mismatches: string[] = [];

    for (let codePoint = 0; codePoint <= 0xffff; codePoint += 1) {
      const character = String.fromCharCode(codePoint);
      if (pattern.test(character) !== character.trim().length > 0) {
        mismatches.push(`U+${codePoint.toString(16).padStart(4, '0')}`);
      }
    }

    expect(mismatches).toEqual([]);
  });

  describe('received event', () => {
    const base = receivedEvent({ correlationId: 'corr-1', messageId: 'm-1', meta: { wa_phone_id: '123' } });

    const samples: Sample[] = [
      { name: 'version 1.0, Z timestamp, correlation_id and meta', event: base, valid: true },
      {
        name: 'version 1.3, -03:00 offset',
        event: withField(withField(base, ['version'], '1.3'), ['timestamp'], '2026-01-15T08:59:00-03:00'),
        valid: true,
      },
      { name: 'offset +05:30, no fraction', event: withField(base, ['timestamp'], '2026-01-15T17:29:00+05:30'), valid: true },
      { name: 'no correlation_id, no meta', event: receivedEvent({ correlationId: null }), valid: true },
      { name: 'empty meta', event: withField(base, ['data', 'meta'], {}), valid: true },
      { name: 'unknown top-level field', event: withField(base, ['trace'], 'abc'), valid: true },
      // zod 4.6.7 and JSON Schema both count string length in code points, not UTF-16 units.
      { name: 'tenant_id of 256 emoji', event: withField(base, ['tenant_id'], '😀'.repeat(256)), valid: true },
      { name: 'text with surrounding blanks', event: withField(base, ['data', 'text'], '  oi  '), valid: true },

      { name: 'missing tenant_id', event: withField(base, ['tenant_id'], undefined), valid: false },
      { name: 'empty tenant_id', event: withField(base, ['tenant_id'], ''), valid: false },
      { name: 'tenant_id over 256 characters', event: withField(base, ['tenant_id'], 't'.repeat(257)), valid: false },
      { name: 'tenant_id of 257 emoji', event: withField(base, ['tenant_id'], '😀'.repeat(257)), valid: false },
      { name: 'control character in message_id', event: withField(base, ['data', 'message_id'], 'm\u0000'), valid: false },
      { name: 'wrong event_name', event: withField(base, ['event_name'], 'conversation.message_generated'), valid: false },
      { name: 'major version 2', event: withField(base, ['version'], '2.0'), valid: false },
      { name: 'version without minor', event: withField(base, ['version'], '1'), valid: true },
      { name: 'version with patch', event: withField(base, ['version'], '1.0.0'), valid: true },
      { name: 'version with four parts', event: withField(base, ['version'], '1.0.0.0'), valid: false },
      { name: 'timestamp without offset', event: withField(base, ['timestamp'], '2026-01-15T11:59:00'), valid: false },
      { name: 'timestamp with a space', event: withField(base, ['timestamp'], '2026-01-15 11:59:00Z'), valid: false },
      { name: 'timestamp without seconds', event: withField(base, ['timestamp'], '2026-01-15T11:59Z'), valid: false },
      { name: 'timestamp on February 30', event: withField(base, ['timestamp'], '2026-02-30T11:59:00Z'), valid: false },
      { name: 'timestamp with a leap second', event: withField(base, ['timestamp'], '2026-12-31T23:59:60Z'), valid: false },
      { name: 'timestamp as epoch number', event: withField(base, ['timestamp'], 1768478340000), valid: false },
      { name: 'meta as string', event: withField(base, ['data', 'meta'], 'x'), valid: false },
      { name: 'meta as array', event: withField(base, ['data', 'meta'], ['x']), valid: false },
      { name: 'meta as null', event: withField(base, ['data', 'meta'], null), valid: false },
      { name: 'correlation_id as null', event: withField(base, ['correlation_id'], null), valid: false },
      { name: 'empty text', event: withField(base, ['data', 'text'], ''), valid: false },
      { name: 'blank text', event: withField(base, ['data', 'text'], ' \t\n'), valid: false },
      { name: 'text of no-break spaces', event: withField(base, ['data', 'text'], '\u00a0\u3000\ufeff'), valid: false },
      { name: 'uppercase channel', event: withField(base, ['data', 'channel'], 'WhatsApp'), valid: false },
      { name: 'missing data', event: withField(base, ['data'], undefined), valid: false },
      { name: 'empty source', event: withField(base, ['source'], ''), valid: false },
    ];

    it('ajv and zod agree on samples', () => {
      expectAgreement(samples, validateReceived, messageReceivedSchema);
    });

    it('real conversation events pass', async () => {
      const lines = await readFirstLines(REAL_EVENTS_FILE, 5);

      expect(lines).toHaveLength(5);
      for (const [index, line] of lines.entries()) {
        const event: unknown = JSON.parse(line);
        expect(validateReceived(event), `line ${index + 1}: ${JSON.stringify(validateReceived.errors)}`).toBe(true);
        expect(messageReceivedSchema.safeParse(event).success, `line ${index + 1}`).toBe(true);
      }
    });
  });

  describe('generated event', () => {
    let reply: MessageGeneratedEvent;
    let fallbackReply: MessageGeneratedEvent;

    /** Runs one inbound event through ProcessMessage with in-memory adapters and returns the reply. */
    async function generateReply(llm: LlmClient, inbound: MessageReceivedEvent): Promise<MessageGeneratedEvent> {
      const clock = new ManualClock();
      const bus = new InMemoryEventBus({ receivedTopic: 'in', redeliveryDelayMs: 10 });
      const useCase = new ProcessMessage(
        {
          dedup: new InMemoryDedupStore(clock, 3_600_000),
          memory: new InMemoryMemoryRepo(clock, { maxTurnsPerConversation: 50, retentionSeconds: 86_400 }),
          assistants: new InMemoryAssistantRepo(TEST_ASSISTANTS),
          llm,
          bus,
          clock,
          logger: new CapturingLogger(),
          metrics: new CountingMetrics(),
        },
        { source: 'ia-conversational', claimLeaseMs: 60_000, contextTurns: 10, historyConversations: 3, historyTurnsPerConversation: 4 },
      );

      const outcome = await useCase.execute(inbound);
      if (outcome.kind !== 'processed') {
        throw new Error(`expected a processed outcome, got ${outcome.kind}`);
      }
      return outcome.reply;
    }

    function decodedEvent(meta?: Record<string, unknown>): MessageReceivedEvent {
      const raw = receivedEvent({ messageId: 'm-1', correlationId: 'corr-1', timestamp: '2026-01-15T08:59:00-03:00', meta });
      const decoded = decodeMessageReceived(
        JSON.stringify(raw),
        { maxEventBytes: 65_536, maxTextLength: 4096, maxMetaBytes: 4096 },
        () => 'corr-generated',
      );
      if (!decoded.ok) {
        throw new Error(decoded.detail);
      }
      return decoded.event;
    }

    beforeAll(async () => {
      reply = await generateReply(new OfflineLlmClient(), decodedEvent({ wa_phone_id: '123' }));

      const failingLlm: LlmClient = {
        complete: async () => {
          throw new ServiceError(ErrorCode.LlmFailed, 'model unavailable', { retryable: true });
        },
      };
      fallbackReply = await generateReply(failingLlm, decodedEvent());
    });

    it('ajv and zod agree on samples', () => {
      const samples: Sample[] = [
        { name: 'offline reply with request_meta', event: reply, valid: true },
        { name: 'fallback reply with fallback_reason', event: fallbackReply, valid: true },
        { name: 'missing correlation_id', event: withField(reply, ['correlation_id'], undefined), valid: false },
        { name: 'wrong event_name', event: withField(reply, ['event_name'], 'conversation.message_received'), valid: false },
        { name: 'unknown reply_source', event: withField(reply, ['data', 'meta', 'reply_source'], 'cache'), valid: false },
        { name: 'missing locale', event: withField(reply, ['data', 'meta', 'locale'], undefined), valid: false },
        { name: 'negative tokens_used', event: withField(reply, ['data', 'tokens_used'], -1), valid: false },
        { name: 'fractional processing_time_ms', event: withField(reply, ['data', 'processing_time_ms'], 1.5), valid: false },
        { name: 'empty text', event: withField(reply, ['data', 'text'], ''), valid: false },
        { name: 'has_historical_context as string', event: withField(reply, ['data', 'has_historical_context'], 'false'), valid: false },
        { name: 'missing in_reply_to', event: withField(reply, ['data', 'in_reply_to'], undefined), valid: false },
      ];

      expect(reply.data.meta.request_meta).toEqual({ wa_phone_id: '123' });
      expect(fallbackReply.data.meta.fallback_reason).toEqual(expect.any(String));
      expectAgreement(samples, validateGenerated, messageGeneratedSchema);
    });
  });
});

describe('AsyncAPI document', () => {
  let document: AsyncAPIDocumentInterface;
  let raw: Record<string, unknown>;

  beforeAll(async () => {
    const { document: parsed, diagnostics } = await fromFile(new Parser(), ASYNCAPI_FILE).parse();

    // Information and hint diagnostics, such as "a newer AsyncAPI version exists", are allowed.
    const problems = diagnostics
      .filter((diagnostic) => diagnostic.severity <= DiagnosticSeverity.Warning)
      .map((diagnostic) => ({ code: diagnostic.code, message: diagnostic.message, path: diagnostic.path.join('.') }));
    expect(problems).toEqual([]);
    expect(parsed).toBeDefined();

    document = parsed!;
    raw = parseYaml(await readFile(ASYNCAPI_FILE, 'utf8')) as Record<string, unknown>;
  });

  function message(id: string) {
    const found = document.messages().all().find((candidate) => candidate.id() === id);
    if (found === undefined) {
      throw new Error(`message ${id} not found in ${ASYNCAPI_FILE}`);
    }
    return found;
  }

  it('declares AsyncAPI 3.0.0', () => {
    expect(document.version()).toBe('3.0.0');
  });

  it('local server is the loopback broker', () => {
    const local = document.servers().get('local');

    expect(local?.host()).toBe('localhost:9092');
    expect(local?.protocol()).toBe('kafka');
  });

  it('production server is a placeholder', () => {
    const production = document.servers().get('production');

    expect(production?.host()).toBe('{brokerHost}:{brokerPort}');
    expect(production?.variables().all().map((variable) => variable.id()).sort()).toEqual(['brokerHost', 'brokerPort']);
  });

  it('channel addresses are the default topics', () => {
    const defaults = environmentSchema.parse({});
    const addresses = Object.fromEntries(document.channels().all().map((channel) => [channel.id(), channel.address()]));

    expect(addresses).toEqual({
      messageReceived: defaults.KAFKA_MESSAGE_RECEIVED_TOPIC,
      messageGenerated: defaults.KAFKA_MESSAGE_GENERATED_TOPIC,
      messageReceivedDeadLetter: defaults.KAFKA_DEAD_LETTER_TOPIC,
    });
  });

  it('operations receive one topic and send two', () => {
    const operations = document
      .operations()
      .all()
      .map((operation) => ({
        action: operation.action(),
        channels: operation.channels().all().map((channel) => channel.address()),
      }));

    expect(operations).toEqual([
      { action: 'receive', channels: ['conversation.message_received'] },
      { action: 'send', channels: ['conversation.message_generated'] },
      { action: 'send', channels: ['conversation.message_received.dlq'] },
    ]);
  });

  it('payloads reference the exported schema files', async () => {
    const components = raw['components'] as { messages: Record<string, { payload: unknown }> };

    expect(components.messages['messageReceived']?.payload).toEqual({ $ref: `../${RECEIVED_SCHEMA_FILE}` });
    expect(components.messages['messageGenerated']?.payload).toEqual({ $ref: `../${GENERATED_SCHEMA_FILE}` });
    expect(withoutParserAnnotations(message('messageReceived').payload()?.json())).toEqual(await readJson(RECEIVED_SCHEMA_FILE));
    expect(withoutParserAnnotations(message('messageGenerated').payload()?.json())).toEqual(await readJson(GENERATED_SCHEMA_FILE));
  });

  it('event messages are keyed by conversation_id', async () => {
    const received = await readJson(RECEIVED_SCHEMA_FILE);
    const conversationId = (
      (received['properties'] as Record<string, JsonSchemaDocument>)['data']!['properties'] as Record<string, unknown>
    )['conversation_id'];

    for (const id of ['messageReceived', 'messageGenerated']) {
      const key = message(id).bindings().get('kafka')?.value<{ key: unknown }>().key;
      expect(withoutParserAnnotations(key), id).toMatchObject({ allOf: [conversationId] });
    }
  });

  it('generated headers are required', () => {
    const headers = message('messageGenerated').headers();

    expect(headers?.required()?.slice().sort()).toEqual(['content-type', 'correlation_id', 'event_name', 'message_id', 'tenant_id']);
    expect(headers?.properties()?.['event_name']?.const()).toBe('conversation.message_generated');
  });

  it('dead-letter headers list every reason', () => {
    const headers = message('messageReceivedDeadLetter').headers();
    const reason = headers?.properties()?.['dlq_reason'];
    const reasonDescriptions = reason?.json<Record<string, unknown>>()['x-enum-descriptions'] as Record<string, string>;

    expect(headers?.required()?.slice().sort()).toEqual([
      'dlq_detail', 'dlq_failed_at', 'dlq_reason', 'dlq_source_offset', 'dlq_source_partition', 'dlq_source_topic',
    ]);
    expect(reason?.enum()?.slice().sort()).toEqual(Object.values(DeadLetterReason).sort());
    expect(Object.keys(reasonDescriptions).sort()).toEqual(Object.values(DeadLetterReason).sort());
  });

  it('dead-letter payload is the raw value', () => {
    const deadLetter = message('messageReceivedDeadLetter');

    expect(deadLetter.contentType()).toBe('application/octet-stream');
    expect(deadLetter.payload()?.type()).toBeUndefined();
  });

  it('examples pass the schemas', () => {
    const ajv = createAjv();
    const cases = [
      { id: 'messageReceived', schema: messageReceivedSchema as z.ZodType },
      { id: 'messageGenerated', schema: messageGeneratedSchema as z.ZodType },
    ];

    for (const { id, schema } of cases) {
      const current = message(id);
      const validatePayload = ajv.compile(withoutParserAnnotations(current.payload()?.json()) as JsonSchemaDocument);
      const validateHeaders = compileAsyncApiSchema(current.headers()?.json());
      const examples = current.examples().all();

      expect(examples.length, id).toBeGreaterThan(0);
      for (const example of examples) {
        const name = `${id}/${example.name() ?? 'unnamed'}`;
        expect(validatePayload(example.payload()), `${name}: ${JSON.stringify(validatePayload.errors)}`).toBe(true);
        expect(schema.safeParse(example.payload()).success, name).toBe(true);
        expect(validateHeaders(example.headers() ?? {}), `${name}: ${JSON.stringify(validateHeaders.errors)}`).toBe(true);
      }
    }
  });

  it('reply example has the derived message_id', () => {
    const payload = message('messageGenerated').examples().all()[0]?.payload() as MessageGeneratedEvent;

    expect(payload.data.message_id).toBe(deriveReplyMessageId(payload.tenant_id, payload.data.in_reply_to));
  });

  it('reply record matches headers and key', () => {
    const reply = message('messageGenerated').examples().all()[0]?.payload() as MessageGeneratedEvent;
    const record = generatedRecord(reply);
    const validateHeaders = compileAsyncApiSchema(message('messageGenerated').headers()?.json());
    const validateKey = compileAsyncApiSchema(message('messageGenerated').bindings().get('kafka')?.value<{ key: unknown }>().key);

    expect(validateHeaders(record.headers), JSON.stringify(validateHeaders.errors)).toBe(true);
    expect(validateKey(record.key), JSON.stringify(validateKey.errors)).toBe(true);
    expect(record.key).toBe(reply.data.conversation_id);
  });

  it('dead-letter record matches headers', () => {
    const validateHeaders = compileAsyncApiSchema(message('messageReceivedDeadLetter').headers()?.json());

    for (const reason of Object.values(DeadLetterReason)) {
      const letter: DeadLetter = {
        reason,
        detail: 'data.tenant_id: must not be empty',
        original: {
          topic: 'conversation.message_received',
          partition: 2,
          offset: '42',
          key: new TextEncoder().encode('conv-1'),
          value: new TextEncoder().encode('{"broken"'),
          headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
        },
        tenantId: 'tenant-a',
        correlationId: 'corr-1',
      };
      const record = deadLetterRecord(letter, new Date('2026-01-15T12:00:00.000Z'));

      expect(validateHeaders(record.headers), `${reason}: ${JSON.stringify(validateHeaders.errors)}`).toBe(true);
    }
  });

  it('dead-letter headers reject an unknown reason', () => {
    const validateHeaders = compileAsyncApiSchema(message('messageReceivedDeadLetter').headers()?.json());
    const headers = {
      dlq_reason: 'timeout',
      dlq_detail: 'x',
      dlq_source_topic: 'conversation.message_received',
      dlq_source_partition: '0',
      dlq_source_offset: '1',
      dlq_failed_at: '2026-01-15T12:00:00.000Z',
    };

    expect(validateHeaders(headers)).toBe(false);
    expect(validateHeaders({ ...headers, dlq_reason: DeadLetterReason.InvalidJson })).toBe(true);
  });
});
