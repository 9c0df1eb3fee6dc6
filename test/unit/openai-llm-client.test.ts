import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { OpenAiLlmClient, type OpenAiLlmSettings } from '../../src/adapters/outbound/llm/openai-llm-client.js';
import { assistantConfigSchema, toAssistant, type Assistant } from '../../src/domain/assistant.js';
import type { PromptMessage } from '../../src/domain/conversation.js';
import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import type { CompletionRequest } from '../../src/domain/ports/llm-client.js';
import { startFakeOpenAiServer, type FakeOpenAiServer } from '../support/fake-openai-server.js';
import { CapturingLogger } from '../support/fakes.js';

const API_KEY = 'sk-test-0123456789abcdef-SECRET';
const USER_TEXT = 'Qual é o saldo da minha conta corrente?';

let server: FakeOpenAiServer;
let logger: CapturingLogger;

beforeAll(async () => {
  server = await startFakeOpenAiServer();
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
  logger = new CapturingLogger();
});

function assistant(overrides: Record<string, unknown> = {}): Assistant {
  return toAssistant(
    'tenant-test',
    assistantConfigSchema.parse({
      id: 'support',
      name: 'Suporte Teste',
      system_prompt: 'Você é o suporte do banco de teste.',
      temperature: 0.4,
      ...overrides,
    }),
  );
}

function request(target: Assistant = assistant(), text = USER_TEXT): CompletionRequest {
  const messages: PromptMessage[] = [
    { role: 'system', content: target.systemPrompt },
    { role: 'user', content: 'Oi' },
    { role: 'assistant', content: 'Olá! Como posso ajudar?' },
    { role: 'user', content: text },
  ];
  return { assistant: target, messages, correlationId: 'corr-123' };
}

function client(overrides: Partial<OpenAiLlmSettings> = {}): OpenAiLlmClient {
  return new OpenAiLlmClient(
    {
      baseUrl: server.url,
      apiKey: API_KEY,
      model: 'gpt-default',
      azureApiVersion: undefined,
      timeoutMs: 3000,
      maxRetries: 2,
      maxTokens: 256,
      ...overrides,
    },
    logger,
  );
}

/** Runs the call and returns the ServiceError it rejects with; fails the test if it resolves. */
async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  const outcome = await promise.then(
    (value) => ({ resolved: value }),
    (error: unknown) => ({ rejected: error }),
  );
  if (!('rejected' in outcome)) {
    throw new Error(`expected the call to fail, it resolved with ${JSON.stringify(outcome.resolved)}`);
  }
  expect(outcome.rejected).toBeInstanceOf(ServiceError);
  return outcome.rejected as ServiceError;
}

function body(index: number): Record<string, unknown> {
  return server.requests[index]!.body as Record<string, unknown>;
}

function warnLines(): CapturingLogger['lines'] {
  return logger.lines.filter((line) => line.level === 'warn');
}

describe('OpenAiLlmClient', () => {
  it('success returns text, tokens and model', async () => {
    server.enqueue({
      kind: 'answer',
      text: '  Seu saldo está no app.\n',
      model: 'gpt-default-2024-07-18',
      usage: { prompt_tokens: 31, completion_tokens: 6, total_tokens: 37 },
    });

    const completion = await client().complete(request());

    expect(completion.text).toBe('Seu saldo está no app.');
    expect(completion.tokensUsed).toBe(37);
    expect(completion.modelName).toBe('gpt-default-2024-07-18');
    expect(server.requests).toHaveLength(1);
  });

  it('default fake answer echoes the user text', async () => {
    const completion = await client().complete(request());

    expect(completion.text).toBe(`Resposta para: ${USER_TEXT}`);
    expect(completion.tokensUsed).toBeGreaterThan(0);
    expect(completion.modelName).toBe('gpt-default');
  });

  it('request carries model, temperature, messages, key', async () => {
    const target = assistant({ model: 'gpt-assistant', temperature: 0.7 });
    const sent = request(target);

    await client().complete(sent);

    const recorded = server.requests[0]!;
    expect(recorded.method).toBe('POST');
    expect(recorded.path).toBe('/v1/chat/completions');
    expect(recorded.headers['authorization']).toBe(`Bearer ${API_KEY}`);
    expect(body(0)['model']).toBe('gpt-assistant');
    expect(body(0)['temperature']).toBe(0.7);
    expect(body(0)['messages']).toEqual(sent.messages);
    expect(body(0)['max_tokens']).toBe(256);
    expect(body(0)).not.toHaveProperty('max_completion_tokens');
    expect(body(0)['stream']).toBeUndefined();
  });

  it('default model when the assistant has none', async () => {
    await client().complete(request(assistant()));

    expect(body(0)['model']).toBe('gpt-default');
  });

  it('missing usage counts 0 tokens', async () => {
    server.enqueue({ kind: 'answer', text: 'ok', usage: null });

    const completion = await client().complete(request());

    expect(completion.tokensUsed).toBe(0);
  });

  it('empty response model falls back to requested', async () => {
    server.enqueue({ kind: 'answer', text: 'ok', model: '' });

    const completion = await client().complete(request(assistant({ model: 'gpt-assistant' })));

    expect(completion.modelName).toBe('gpt-assistant');
  });

  it('429 with Retry-After then success', async () => {
    server.enqueue({ kind: 'error', status: 429, message: 'Rate limit reached', headers: { 'retry-after': '1' } });

    const completion = await client().complete(request());

    expect(completion.text).toBe(`Resposta para: ${USER_TEXT}`);
    expect(server.requests).toHaveLength(2);
    const gapMs = server.requests[1]!.receivedAtMs - server.requests[0]!.receivedAtMs;
    expect(gapMs).toBeGreaterThanOrEqual(950);
    expect(gapMs).toBeLessThan(2000);

    const warnings = warnLines();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({
      correlation_id: 'corr-123',
      attempt: 1,
      max_attempts: 3,
      status: 429,
      delay_ms: 1000,
    });
  });

  it('retry-after-ms takes precedence', async () => {
    server.enqueue({
      kind: 'error',
      status: 429,
      headers: { 'retry-after-ms': '200', 'retry-after': '5' },
    });

    const startedAt = performance.now();
    await client().complete(request());

    expect(performance.now() - startedAt).toBeLessThan(2000);
    expect(warnLines()[0]!.fields['delay_ms']).toBe(200);
  });

  it('500 repeatedly fails after maxRetries + 1 calls', async () => {
    server.setHandler(() => ({ kind: 'error', status: 500, message: 'The server had an error' }));

    const error = await failure(client({ maxRetries: 2 }).complete(request()));

    expect(error.code).toBe(ErrorCode.LlmFailed);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('3 attempts');
    expect(error.cause).toBeDefined();
    expect(server.requests).toHaveLength(3);

    const warnings = warnLines();
    expect(warnings.map((line) => line.fields['attempt'])).toEqual([1, 2]);
    expect(warnings.every((line) => line.fields['status'] === 500)).toBe(true);
    expect(warnings.every((line) => line.fields['correlation_id'] === 'corr-123')).toBe(true);
  });

  it('maxRetries 0 makes one call', async () => {
    server.setHandler(() => ({ kind: 'error', status: 503 }));

    const error = await failure(client({ maxRetries: 0 }).complete(request()));

    expect(error.retryable).toBe(true);
    expect(server.requests).toHaveLength(1);
    expect(warnLines()).toHaveLength(0);
  });

  it('slow server times out within the budget', async () => {
    // Budget 2 × 800 ms: the first attempt times out at 800 ms, the backoff (375-500 ms) leaves
    // 300-425 ms, and the second attempt times out when the budget ends, at about 1600 ms. Two
    // full attempts would take at least 800 + 375 + 800 = 1975 ms.
    server.setHandler(() => ({ kind: 'slow', delayMs: 5000 }));

    const startedAt = performance.now();
    const error = await failure(client({ timeoutMs: 800, maxRetries: 1 }).complete(request()));
    const elapsedMs = performance.now() - startedAt;

    expect(error.code).toBe(ErrorCode.LlmFailed);
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/timed out/i);
    expect(elapsedMs).toBeGreaterThanOrEqual(1500);
    expect(elapsedMs).toBeLessThan(1900);
    expect(server.requests).toHaveLength(2);
    expect(warnLines()[0]!.fields['status']).toBe('timeout');
  });

  it('slow server with no retries times out once', async () => {
    server.setHandler(() => ({ kind: 'slow', delayMs: 5000 }));

    const startedAt = performance.now();
    const error = await failure(client({ timeoutMs: 400, maxRetries: 0 }).complete(request()));
    const elapsedMs = performance.now() - startedAt;

    expect(error.retryable).toBe(true);
    expect(elapsedMs).toBeGreaterThanOrEqual(380);
    expect(elapsedMs).toBeLessThan(1200);
    expect(server.requests).toHaveLength(1);
  });

  it('Retry-After beyond the budget fails at once', async () => {
    server.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '30' } });

    const startedAt = performance.now();
    const error = await failure(client({ timeoutMs: 1000, maxRetries: 2 }).complete(request()));

    expect(performance.now() - startedAt).toBeLessThan(900);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('time budget');
    expect(server.requests).toHaveLength(1);
  });

  it('empty answer fails without retry', async () => {
    server.enqueue({ kind: 'empty' });

    const error = await failure(client().complete(request()));

    expect(error.code).toBe(ErrorCode.LlmFailed);
    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('no choices fails without retry', async () => {
    server.enqueue({ kind: 'no-choices' });

    const error = await failure(client().complete(request()));

    expect(error.code).toBe(ErrorCode.LlmFailed);
    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it.each([400, 401, 403, 404, 422])('status %i fails without retry', async (status) => {
    server.enqueue({ kind: 'error', status, message: 'rejected by the fake server' });

    const error = await failure(client().complete(request()));

    expect(error.code).toBe(ErrorCode.LlmFailed);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(String(status));
    expect(server.requests).toHaveLength(1);
  });

  it('insufficient_quota 429 fails without retry', async () => {
    server.enqueue({ kind: 'error', status: 429, code: 'insufficient_quota', type: 'insufficient_quota' });

    const error = await failure(client().complete(request()));

    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('connection refused is retried then fails', async () => {
    const closed = await startFakeOpenAiServer();
    await closed.close();

    const error = await failure(client({ baseUrl: closed.url, maxRetries: 1 }).complete(request()));

    expect(error.code).toBe(ErrorCode.LlmFailed);
    expect(error.retryable).toBe(true);
    expect(warnLines()).toHaveLength(1);
    expect(warnLines()[0]!.fields['status']).toBe('connection_error');
  });

  it('rejected max_tokens switches to max_completion_tokens', async () => {
    server.enqueue({
      kind: 'error',
      status: 400,
      message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      param: 'max_tokens',
      code: 'unsupported_parameter',
    });
    const llm = client();

    const first = await llm.complete(request(assistant({ model: 'o-reasoning' })));
    await llm.complete(request(assistant({ model: 'o-reasoning' })));
    await llm.complete(request(assistant({ model: 'gpt-other' })));

    expect(first.text).toBe(`Resposta para: ${USER_TEXT}`);
    expect(server.requests).toHaveLength(4);
    expect(body(0)['max_tokens']).toBe(256);
    expect(body(1)['max_completion_tokens']).toBe(256);
    expect(body(1)).not.toHaveProperty('max_tokens');
    expect(body(2)['max_completion_tokens']).toBe(256);
    expect(body(3)['max_tokens']).toBe(256);
    expect(warnLines()).toHaveLength(0);
  });

  it('rejected temperature is dropped', async () => {
    server.enqueue({
      kind: 'error',
      status: 400,
      message: "Unsupported value: 'temperature' does not support 0.4 with this model.",
      param: 'temperature',
      code: 'unsupported_value',
    });

    await client().complete(request());

    expect(server.requests).toHaveLength(2);
    expect(body(0)['temperature']).toBe(0.4);
    expect(body(1)).not.toHaveProperty('temperature');
  });

  it('no key or prompt in errors and logs', async () => {
    server.enqueue(
      { kind: 'error', status: 500, message: `upstream rejected key ${API_KEY}` },
      { kind: 'error', status: 401, message: `Incorrect API key provided: ${API_KEY}` },
    );

    const error = await failure(client().complete(request()));

    expect(error.retryable).toBe(false);
    expect(error.message).toContain('401');
    expect(error.message).not.toContain(API_KEY);
    expect(String((error.cause as Error | undefined)?.message)).not.toContain(API_KEY);
    expect(server.requests).toHaveLength(2);

    const logged = JSON.stringify(logger.lines);
    expect(warnLines()).toHaveLength(1);
    expect(logged).toContain('[redacted]');
    expect(logged).not.toContain(API_KEY);
    expect(logged).not.toContain(USER_TEXT);
  });

  it('keyless server gets a placeholder bearer', async () => {
    await client({ apiKey: undefined }).complete(request());

    const authorization = server.requests[0]!.headers['authorization'];
    expect(authorization).toMatch(/^Bearer \S+$/);
  });

  it('requires a key or base URL', () => {
    expect(() => client({ apiKey: undefined, baseUrl: undefined })).toThrow(ServiceError);
  });

  describe('Azure', () => {
    it('deployment API uses api-key and api-version', async () => {
      const azure = client({ baseUrl: server.origin, azureApiVersion: '2024-10-21', model: 'my-deployment' });

      const completion = await azure.complete(request());

      const recorded = server.requests[0]!;
      expect(recorded.path).toBe('/openai/deployments/my-deployment/chat/completions');
      expect(recorded.query['api-version']).toBe('2024-10-21');
      expect(recorded.headers['api-key']).toBe(API_KEY);
      expect(recorded.headers['authorization']).toBeUndefined();
      expect(completion.modelName).toBe('my-deployment');
    });

    it('assistant model picks the deployment', async () => {
      const azure = client({ baseUrl: `${server.origin}/openai/`, azureApiVersion: '2024-10-21' });

      await azure.complete(request(assistant({ model: 'other-deployment' })));

      expect(server.requests[0]!.path).toBe('/openai/deployments/other-deployment/chat/completions');
    });

    it('v1 endpoint works with the plain client', async () => {
      const azureV1 = client({ baseUrl: `${server.origin}/openai/v1/`, model: 'my-deployment' });

      await azureV1.complete(request());

      const recorded = server.requests[0]!;
      expect(recorded.path).toBe('/openai/v1/chat/completions');
      expect(recorded.query['api-version']).toBeUndefined();
      expect(recorded.headers['authorization']).toBe(`Bearer ${API_KEY}`);
      expect(body(0)['model']).toBe('my-deployment');
    });

    it('retries a 429 like the plain client', async () => {
      server.enqueue({ kind: 'error', status: 429, headers: { 'retry-after-ms': '100' } });
      const azure = client({ baseUrl: server.origin, azureApiVersion: '2024-10-21', model: 'my-deployment' });

      await azure.complete(request());

      expect(server.requests).toHaveLength(2);
      expect(warnLines()[0]!.fields['status']).toBe(429);
    });

    it('requires base URL and key', () => {
      expect(() => client({ azureApiVersion: '2024-10-21', baseUrl: undefined })).toThrow(ServiceError);
      expect(() => client({ azureApiVersion: '2024-10-21', apiKey: undefined })).toThrow(ServiceError);
    });
  });
});
