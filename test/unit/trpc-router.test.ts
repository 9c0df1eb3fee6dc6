import { randomUUID } from 'node:crypto';

import { TRPCClientError, createTRPCClient, httpLink, type TRPCClient } from '@trpc/client';
import { afterEach, describe, expect, it } from 'vitest';

import { ProcessMessage } from '../../src/application/process-message.js';
import { startHttpServer, type RunningHttpServer } from '../../src/adapters/inbound/http/http-server.js';
import type { HealthReport } from '../../src/adapters/inbound/http/health.js';
import { createAppRouter, type ApiDependencies, type AppRouter } from '../../src/adapters/inbound/trpc/router.js';
import { InMemoryAssistantRepo } from '../../src/adapters/outbound/assistants/in-memory-assistant-repo.js';
import { InMemoryDedupStore } from '../../src/adapters/outbound/dedup/in-memory-dedup-store.js';
import { InMemoryEventBus } from '../../src/adapters/outbound/event-bus/in-memory-event-bus.js';
import { OfflineLlmClient } from '../../src/adapters/outbound/llm/offline-llm-client.js';
import { InMemoryMemoryRepo } from '../../src/adapters/outbound/memory/in-memory-memory-repo.js';
import { PrometheusMetrics } from '../../src/adapters/outbound/metrics/prometheus-metrics.js';
import { DEFAULT_REPLIES } from '../../src/domain/assistant.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import { systemClock } from '../../src/domain/ports/clock.js';
import type { AssistantRepo } from '../../src/domain/ports/assistant-repo.js';
import type { MemoryRepo } from '../../src/domain/ports/memory-repo.js';
import { CapturingLogger, TEST_ASSISTANTS } from '../support/fakes.js';

const LIMITS = { maxEventBytes: 65_536, maxTextLength: 200, maxMetaBytes: 100 };
const FAQ_QUESTION = 'Qual o horário de atendimento?';
const FAQ_ANSWER = 'Atendemos de segunda a sexta, das 8h às 18h.';
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Harness {
  client: TRPCClient<AppRouter>;
  /** Base URL of the tRPC API, e.g. `http://127.0.0.1:1234/trpc`. */
  url: string;
  bus: InMemoryEventBus;
  memory: InMemoryMemoryRepo;
  logger: CapturingLogger;
  metrics: PrometheusMetrics;
}

const running: RunningHttpServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

/** Serves the API over real HTTP on 127.0.0.1, backed by the in-memory adapters. */
async function startApi(
  overrides: {
    processMessage?: ApiDependencies['processMessage'];
    memory?: MemoryRepo;
    assistants?: AssistantRepo;
    health?: () => Promise<HealthReport>;
  } = {},
): Promise<Harness> {
  const logger = new CapturingLogger();
  const metrics = new PrometheusMetrics({ collectProcessMetrics: false });
  const bus = new InMemoryEventBus({ receivedTopic: 'conversation.message_received', redeliveryDelayMs: 5 });
  const memory = new InMemoryMemoryRepo(systemClock, { maxTurnsPerConversation: 50, retentionSeconds: 3600 });
  const assistants = overrides.assistants ?? new InMemoryAssistantRepo(TEST_ASSISTANTS);
  const processMessage = new ProcessMessage(
    {
      dedup: new InMemoryDedupStore(systemClock, 3_600_000),
      memory: overrides.memory ?? memory,
      assistants,
      llm: new OfflineLlmClient(),
      bus,
      clock: systemClock,
      logger,
      metrics,
    },
    { source: 'ia-conversational', claimLeaseMs: 10_000, contextTurns: 10, historyConversations: 2, historyTurnsPerConversation: 4 },
  );
  const health =
    overrides.health ??
    (async () => ({ live: true, ready: true, components: { event_bus: { ok: true, detail: 'in-memory event bus' } } }));

  const router = createAppRouter({
    processMessage: overrides.processMessage ?? processMessage,
    assistants,
    memory: overrides.memory ?? memory,
    health,
    logger,
    metrics,
    limits: LIMITS,
    eventSource: 'api',
  });
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    router,
    health,
    metricsRegistry: metrics.registry,
    logger,
  });
  running.push(server);

  const url = `http://127.0.0.1:${server.port}/trpc`;
  const client = createTRPCClient<AppRouter>({ links: [httpLink({ url })] });
  return { client, url, bus, memory, logger, metrics };
}

function sendInput(overrides: Record<string, unknown> = {}) {
  return {
    tenant_id: 'tenant-a',
    conversation_id: 'conv-1',
    message_id: randomUUID(),
    text: FAQ_QUESTION,
    assistant_id: 'support',
    user_id: 'user-1',
    ...overrides,
  };
}

/** Calls a mutation with raw JSON, bypassing the client's types, and returns status and body. */
async function postRaw(url: string, procedure: string, input: unknown): Promise<{ status: number; text: string; body: RawError }> {
  const response = await fetch(`${url}/${procedure}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) as RawError };
}

interface RawError {
  error: {
    message: string;
    code: number;
    data: { code: string; httpStatus: number; path?: string; correlation_id?: string; issues?: Array<{ path: string; message: string }> };
  };
}

/** Runs a call that must fail and returns the client error. */
async function expectFailure(call: Promise<unknown>): Promise<TRPCClientError<AppRouter>> {
  try {
    await call;
  } catch (error) {
    if (error instanceof TRPCClientError) {
      return error as TRPCClientError<AppRouter>;
    }
    throw error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

describe('tRPC API: conversation.send', () => {
  it('send returns the reply and publishes it once', async () => {
    const api = await startApi();
    const input = sendInput({ correlation_id: 'corr-send-1' });

    const reply = await api.client.conversation.send.mutate(input);

    expect(reply.text).toBe(FAQ_ANSWER);
    expect(reply.duplicate).toBe(false);
    expect(reply.in_reply_to).toBe(input.message_id);
    expect(reply.conversation_id).toBe('conv-1');
    expect(reply.correlation_id).toBe('corr-send-1');
    expect(reply.model_name).toBe('offline-faq');
    expect(reply.tokens_used).toBe(0);
    expect(reply.has_historical_context).toBe(false);
    expect(reply.processing_time_ms).toBeGreaterThanOrEqual(0);
    expect(api.bus.generated).toHaveLength(1);
    expect(api.bus.generated[0]!.data.message_id).toBe(reply.message_id);
    expect(api.bus.generated[0]!.data.channel).toBe('web');
    expect(api.bus.generated[0]!.correlation_id).toBe('corr-send-1');
  });

  it('send generates missing message and correlation ids', async () => {
    const api = await startApi();
    const { message_id: _omitted, ...input } = sendInput();

    const reply = await api.client.conversation.send.mutate(input);

    expect(reply.in_reply_to).toMatch(UUID_PATTERN);
    expect(reply.correlation_id).toMatch(UUID_PATTERN);
    expect(api.bus.generated[0]!.data.in_reply_to).toBe(reply.in_reply_to);
    expect(api.bus.generated[0]!.correlation_id).toBe(reply.correlation_id);
  });

  it('send marks a repeated message_id as duplicate', async () => {
    const api = await startApi();
    const input = sendInput();

    const first = await api.client.conversation.send.mutate(input);
    const second = await api.client.conversation.send.mutate({ ...input, text: 'oi' });

    expect(second.duplicate).toBe(true);
    expect(second.text).toBe(first.text);
    expect(second.message_id).toBe(first.message_id);
    expect(api.bus.generated).toHaveLength(1);
  });

  it('send replies per tenant for one message_id', async () => {
    const api = await startApi();
    const input = sendInput();

    const replyA = await api.client.conversation.send.mutate(input);
    const replyB = await api.client.conversation.send.mutate({ ...input, tenant_id: 'tenant-b' });

    expect(replyB.duplicate).toBe(false);
    expect(replyB.text).toBe(DEFAULT_REPLIES.en.fallbackReply);
    expect(replyB.message_id).not.toBe(replyA.message_id);
    expect(api.bus.generated.map((event) => event.tenant_id)).toEqual(['tenant-a', 'tenant-b']);
  });

  it('send rejects an unknown tenant with NOT_FOUND', async () => {
    const api = await startApi();

    const error = await expectFailure(api.client.conversation.send.mutate(sendInput({ tenant_id: 'tenant-unknown' })));

    expect(error.data?.code).toBe('NOT_FOUND');
    expect(error.data?.httpStatus).toBe(404);
    expect(error.message).toBe('tenant tenant-unknown has no assistants configured');
    expect(api.bus.generated).toHaveLength(0);
  });

  it('send rejects an unknown assistant with NOT_FOUND', async () => {
    const api = await startApi();

    const error = await expectFailure(api.client.conversation.send.mutate(sendInput({ assistant_id: 'sales' })));

    expect(error.data?.code).toBe('NOT_FOUND');
    expect(error.message).toBe('tenant tenant-a has no assistant sales');
  });

  it('send lists every invalid field', async () => {
    const api = await startApi();
    const { user_id: _missing, ...input } = sendInput({ tenant_id: '', text: '   ', channel: 'Web Chat', limit: 3 });

    const response = await postRaw(api.url, 'conversation.send', input);

    expect(response.status).toBe(400);
    expect(response.body.error.data.code).toBe('BAD_REQUEST');
    // An empty tenant_id breaks two rules (length and characters), so its path comes twice.
    const paths = new Set(response.body.error.data.issues?.map((issue) => issue.path));
    expect([...paths].sort()).toEqual(['channel', 'tenant_id', 'text', 'user_id']);
    expect(response.body.error.message).toContain('tenant_id: must not be empty');
    expect(response.body.error.data.correlation_id).toMatch(UUID_PATTERN);
    expect(api.bus.generated).toHaveLength(0);
  });

  it('send rejects text above the limit', async () => {
    const api = await startApi();

    const error = await expectFailure(api.client.conversation.send.mutate(sendInput({ text: 'x'.repeat(LIMITS.maxTextLength + 1) })));

    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.data?.issues?.map((issue) => issue.path)).toEqual(['text']);
    expect(api.bus.generated).toHaveLength(0);
  });

  it('send accepts text at the limit', async () => {
    const api = await startApi();

    const reply = await api.client.conversation.send.mutate(sendInput({ text: 'x'.repeat(LIMITS.maxTextLength) }));

    expect(reply.duplicate).toBe(false);
  });

  it('send rejects meta above the limit', async () => {
    const api = await startApi();

    const error = await expectFailure(
      api.client.conversation.send.mutate(sendInput({ meta: { note: 'y'.repeat(LIMITS.maxMetaBytes) } })),
    );

    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.data?.issues?.map((issue) => issue.path)).toEqual(['meta']);
  });

  it('send rejects deeply nested meta', async () => {
    const api = await startApi();
    let meta: Record<string, unknown> = { leaf: true };
    for (let level = 0; level < 40; level += 1) meta = { nested: meta };

    const error = await expectFailure(api.client.conversation.send.mutate(sendInput({ meta })));

    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.data?.issues?.map((issue) => issue.path)).toEqual(['meta']);
    expect(error.data?.issues?.[0]?.message).toContain('nested');
  });

  it('send hides an unexpected error', async () => {
    const secret = 'connect ECONNREFUSED redis-7.internal.example:6379';
    const api = await startApi({
      processMessage: {
        execute: async () => {
          throw new TypeError(secret);
        },
      },
    });

    const response = await postRaw(api.url, 'conversation.send', sendInput({ correlation_id: 'corr-boom' }));

    expect(response.status).toBe(500);
    expect(response.body.error.data.code).toBe('INTERNAL_SERVER_ERROR');
    expect(response.body.error.data.correlation_id).toBe('corr-boom');
    expect(response.body.error.message).toContain('corr-boom');
    expect(response.text).not.toContain(secret);
    expect(response.text).not.toContain('redis-7');
    expect(response.text).not.toContain('stack');
    expect(response.text).not.toMatch(/\bat /);
    expect(response.text).not.toContain('TypeError');

    const logged = api.logger.lines.find((line) => line.level === 'error' && line.fields['correlation_id'] === 'corr-boom');
    expect(logged?.fields['error']).toBe(secret);
  });

  it('send hides a failing port behind a correlation id', async () => {
    const failing: MemoryRepo = {
      appendTurns: async () => {},
      recentTurns: async () => {
        throw new Error('memory exploded at node-3.internal');
      },
      userHistory: async () => ({ conversations: [] }),
    };
    const api = await startApi({ memory: failing });

    const response = await postRaw(api.url, 'conversation.send', sendInput());

    expect(response.status).toBe(500);
    const correlationId = response.body.error.data.correlation_id;
    expect(correlationId).toMatch(UUID_PATTERN);
    expect(response.body.error.message).toContain(correlationId!);
    expect(response.text).not.toContain('node-3.internal');
    expect(response.text).not.toMatch(/\bat /);
    const logged = api.logger.lines.find((line) => line.level === 'error' && line.fields['correlation_id'] === correlationId);
    expect(logged?.fields['error']).toBe('memory exploded at node-3.internal');
  });

  it('send maps a store outage to SERVICE_UNAVAILABLE', async () => {
    const api = await startApi({
      processMessage: {
        execute: async () => {
          throw new ServiceError(ErrorCode.StoreUnavailable, 'redis at 10.0.0.7 timed out', { retryable: true });
        },
      },
    });

    const response = await postRaw(api.url, 'conversation.send', sendInput());

    expect(response.status).toBe(503);
    expect(response.body.error.data.code).toBe('SERVICE_UNAVAILABLE');
    expect(response.text).not.toContain('10.0.0.7');
  });

  it('send maps MESSAGE_IN_PROGRESS to CONFLICT', async () => {
    const api = await startApi({
      processMessage: {
        execute: async () => {
          throw new ServiceError(ErrorCode.MessageInProgress, 'held by worker-2', { retryable: true });
        },
      },
    });

    const error = await expectFailure(api.client.conversation.send.mutate(sendInput()));

    expect(error.data?.code).toBe('CONFLICT');
    expect(error.data?.httpStatus).toBe(409);
    expect(error.message).toContain('retry later');
  });

  it('send logs ids but no text above debug', async () => {
    const api = await startApi();
    const text = 'meu segredo 4242 qual o horário?';
    const input = sendInput({ text, correlation_id: 'corr-log' });

    const reply = await api.client.conversation.send.mutate(input);
    await expectFailure(api.client.conversation.send.mutate(sendInput({ text, tenant_id: 'tenant-unknown' })));
    await postRaw(api.url, 'conversation.send', { ...input, text: `${text}${'!'.repeat(LIMITS.maxTextLength)}` });

    const processed = api.logger.lines.find((line) => line.message === 'message processed' && line.fields['procedure'] === undefined);
    expect(processed?.fields).toMatchObject({
      tenant_id: 'tenant-a',
      correlation_id: 'corr-log',
      conversation_id: 'conv-1',
      message_id: input.message_id,
      outcome: 'processed',
    });
    expect(typeof processed?.fields['processing_time_ms']).toBe('number');
    const aboveDebug = api.logger.lines.filter((line) => line.level !== 'debug');
    expect(aboveDebug.length).toBeGreaterThan(0);
    expect(JSON.stringify(aboveDebug)).not.toContain('segredo');
    expect(JSON.stringify(aboveDebug)).not.toContain(reply.text);
  });

  it('send counts outcomes in ia_messages_total', async () => {
    const api = await startApi();
    const input = sendInput();

    await api.client.conversation.send.mutate(input);
    await api.client.conversation.send.mutate(input);
    await expectFailure(api.client.conversation.send.mutate(sendInput({ tenant_id: 'tenant-unknown' })));
    await postRaw(api.url, 'conversation.send', sendInput({ tenant_id: '' }));

    const exposition = await api.metrics.registry.metrics();
    expect(exposition).toMatch(/^ia_messages_total\{outcome="processed",reason=""\} 1$/m);
    expect(exposition).toMatch(/^ia_messages_total\{outcome="duplicate",reason=""\} 1$/m);
    expect(exposition).toMatch(/^ia_messages_total\{outcome="rejected",reason="unknown_tenant"\} 1$/m);
    expect(exposition).toMatch(/^ia_messages_total\{outcome="rejected",reason="schema_invalid"\} 1$/m);
  });
});

describe('tRPC API: conversation.history', () => {
  it('history returns both turns oldest first', async () => {
    const api = await startApi();
    const input = sendInput({ conversation_id: 'conv-h' });
    const reply = await api.client.conversation.send.mutate(input);

    const history = await api.client.conversation.history.query({ tenant_id: 'tenant-a', conversation_id: 'conv-h' });

    expect(history.turns.map((turn) => [turn.role, turn.message_id, turn.text])).toEqual([
      ['user', input.message_id, FAQ_QUESTION],
      ['assistant', reply.message_id, FAQ_ANSWER],
    ]);
  });

  it('history shows nothing of another tenant', async () => {
    const api = await startApi();
    await api.client.conversation.send.mutate(sendInput({ conversation_id: 'conv-shared' }));
    await api.client.conversation.send.mutate(sendInput({ tenant_id: 'tenant-b', conversation_id: 'conv-shared', text: 'hello' }));

    const historyA = await api.client.conversation.history.query({ tenant_id: 'tenant-a', conversation_id: 'conv-shared' });
    const historyC = await api.client.conversation.history.query({ tenant_id: 'tenant-c', conversation_id: 'conv-shared' });

    expect(historyA.turns.map((turn) => turn.text)).toEqual([FAQ_QUESTION, FAQ_ANSWER]);
    expect(historyC.turns).toEqual([]);
  });

  it('history honours the limit', async () => {
    const api = await startApi();
    await api.client.conversation.send.mutate(sendInput({ conversation_id: 'conv-l' }));
    await api.client.conversation.send.mutate(sendInput({ conversation_id: 'conv-l', text: 'oi' }));

    const history = await api.client.conversation.history.query({ tenant_id: 'tenant-a', conversation_id: 'conv-l', limit: 1 });

    expect(history.turns.map((turn) => turn.text)).toEqual(['Olá! Aqui é o suporte A.']);
  });

  it('history rejects a limit out of range', async () => {
    const api = await startApi();

    const error = await expectFailure(
      api.client.conversation.history.query({ tenant_id: 'tenant-a', conversation_id: 'conv-1', limit: 101 }),
    );

    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.data?.issues?.map((issue) => issue.path)).toEqual(['limit']);
  });

  it('history hides a store failure', async () => {
    const failing: MemoryRepo = {
      appendTurns: async () => {},
      recentTurns: async () => {
        throw new RangeError('bad offset at shard-9.internal');
      },
      userHistory: async () => ({ conversations: [] }),
    };
    const api = await startApi({ memory: failing });

    const error = await expectFailure(api.client.conversation.history.query({ tenant_id: 'tenant-a', conversation_id: 'conv-1' }));

    expect(error.data?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error.message).toContain(error.data?.correlation_id ?? 'missing correlation id');
    expect(error.message).not.toContain('shard-9');
    const logged = api.logger.lines.find((line) => line.level === 'error' && line.fields['procedure'] === 'conversation.history');
    expect(logged?.fields['correlation_id']).toBe(error.data?.correlation_id);
  });
});

describe('tRPC API: assistants', () => {
  it('assistants.list leaves out system prompts', async () => {
    const api = await startApi();

    const result = await api.client.assistants.list.query({ tenant_id: 'tenant-a' });

    expect(result.assistants).toEqual([{ id: 'support', name: 'Suporte A', locale: 'pt-BR', model: null }]);
  });

  it('assistants.list rejects an unknown tenant', async () => {
    const api = await startApi();

    const error = await expectFailure(api.client.assistants.list.query({ tenant_id: 'tenant-unknown' }));

    expect(error.data?.code).toBe('NOT_FOUND');
  });

  it('assistants.get returns the whole configuration', async () => {
    const api = await startApi();

    const assistant = await api.client.assistants.get.query({ tenant_id: 'tenant-b', assistant_id: 'support' });

    expect(assistant).toMatchObject({
      tenant_id: 'tenant-b',
      id: 'support',
      name: 'Support B',
      system_prompt: 'You are the support assistant of company B.',
      locale: 'en',
      temperature: 0.2,
      greeting: null,
      fallback_reply: DEFAULT_REPLIES.en.fallbackReply,
      error_reply: DEFAULT_REPLIES.en.errorReply,
      faq: [],
    });
  });

  it('assistants.get rejects unknown ids', async () => {
    const api = await startApi();

    const unknownAssistant = await expectFailure(api.client.assistants.get.query({ tenant_id: 'tenant-a', assistant_id: 'sales' }));
    const unknownTenant = await expectFailure(api.client.assistants.get.query({ tenant_id: 'tenant-x', assistant_id: 'support' }));

    expect(unknownAssistant.data?.code).toBe('NOT_FOUND');
    expect(unknownAssistant.message).toBe('tenant tenant-a has no assistant sales');
    expect(unknownTenant.data?.code).toBe('NOT_FOUND');
    expect(unknownTenant.message).toBe('tenant tenant-x has no assistants configured');
  });
});

describe('tRPC API: errors outside procedures', () => {
  it('unencodable output gets a generic error', async () => {
    const repo = new InMemoryAssistantRepo(TEST_ASSISTANTS);
    // JSON cannot encode a BigInt, so the response fails after the procedure returned.
    const unencodable: AssistantRepo = {
      list: (tenantId) => repo.list(tenantId),
      find: async (tenantId, assistantId) => {
        const lookup = await repo.find(tenantId, assistantId);
        return lookup.status === 'found'
          ? { status: 'found', assistant: { ...lookup.assistant, temperature: 1n as unknown as number } }
          : lookup;
      },
    };
    const api = await startApi({ assistants: unencodable });

    const response = await fetch(`${api.url}/assistants.get?input=${encodeURIComponent(JSON.stringify({ tenant_id: 'tenant-a', assistant_id: 'support' }))}`);
    const text = await response.text();

    expect(response.status).toBe(500);
    const body = JSON.parse(text) as RawError;
    const correlationId = body.error.data.correlation_id;
    expect(correlationId).toMatch(UUID_PATTERN);
    expect(body.error.message).toContain(correlationId!);
    expect(text).not.toContain('BigInt');
    expect(text).not.toMatch(/\bat /);
    const logged = api.logger.lines.find((line) => line.level === 'error' && line.fields['correlation_id'] === correlationId);
    expect(String(logged?.fields['error'])).toContain('BigInt');
  });
});

describe('tRPC API: health', () => {
  it('health queries report live and ready', async () => {
    const api = await startApi();

    expect(await api.client.health.live.query()).toEqual({ status: 'ok' });
    expect(await api.client.health.ready.query()).toEqual({
      status: 'ok',
      components: { event_bus: { ok: true, detail: 'in-memory event bus' } },
    });
  });

  it('health.ready reports a component that is down', async () => {
    const api = await startApi({
      health: async () => ({
        live: true,
        ready: false,
        components: { event_bus: { ok: true, detail: 'connected' }, redis: { ok: false, detail: 'PING timed out' } },
      }),
    });

    const readiness = await api.client.health.ready.query();

    expect(readiness.status).toBe('unavailable');
    expect(readiness.components['redis']).toEqual({ ok: false, detail: 'PING timed out' });
  });
});
