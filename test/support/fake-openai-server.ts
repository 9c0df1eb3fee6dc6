import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One HTTP request as the fake server received it. */
export interface RecordedRequest {
  method: string;
  /** URL path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  query: Record<string, string>;
  /** Header names are lowercase, as node:http delivers them. */
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or the raw text when it is not JSON. */
  body: unknown;
  /** `Date.now()` when the request arrived. */
  receivedAtMs: number;
}

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * How the server replies to one chat-completions call:
 * - `answer`: 200 with one choice. `text` defaults to `Resposta para: <last user message>`,
 *   `model` to the deployment in the path or the request's model, and `usage` to word counts
 *   (`null` leaves the usage block out).
 * - `empty`: 200 with one choice whose content is the empty string.
 * - `no-choices`: 200 with an empty `choices` array.
 * - `error`: the status with an OpenAI-style error body, e.g. 429 with `retry-after` or 500.
 * - `slow`: waits `delayMs` before sending the headers, then replies with `then` (default `answer`).
 */
export type FakeReply =
  | { kind: 'answer'; text?: string; model?: string; usage?: FakeUsage | null }
  | { kind: 'empty' }
  | { kind: 'no-choices' }
  | {
      kind: 'error';
      status: number;
      message?: string;
      type?: string;
      code?: string;
      param?: string;
      headers?: Record<string, string>;
    }
  | { kind: 'slow'; delayMs: number; then?: FakeReply };

/** Picks the reply to a chat-completions call; `request` is already in `requests`. */
export type FakeHandler = (request: RecordedRequest) => FakeReply | Promise<FakeReply>;

export interface FakeOpenAiServer {
  /** Base URL in the OpenAI form, `http://127.0.0.1:<port>/v1`: use it as LLM_BASE_URL. */
  url: string;
  /** `http://127.0.0.1:<port>`, the form an Azure resource endpoint takes. */
  origin: string;
  /** Every request received so far, in arrival order, including those to unknown paths. */
  requests: RecordedRequest[];
  /** Queues replies for the next calls, one per call; when the queue is empty the handler replies. */
  enqueue(...replies: FakeReply[]): void;
  /** Replaces the handler used once the queue is empty; `undefined` restores the default handler. */
  setHandler(handler: FakeHandler | undefined): void;
  /** Clears the recorded requests and the queue and restores the default handler. */
  reset(): void;
  /** Resolves with the requests once at least `count` have arrived; rejects after `timeoutMs`. */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Stops listening and drops open connections, including replies still waiting in `slow`. */
  close(): Promise<void>;
}

/** Chat-completions paths: OpenAI (`/v1`), a base URL without `/v1`, Azure v1 and Azure deployments. */
const CHAT_COMPLETIONS_PATH = /^(?:\/v1|\/openai\/v1|\/openai\/deployments\/([^/]+))?\/chat\/completions$/;

const DEFAULT_HANDLER: FakeHandler = () => ({ kind: 'answer' });

/**
 * Starts a local HTTP server on 127.0.0.1 (a free port) that speaks the chat-completions
 * protocol well enough for the OpenAI SDK, records every request and replies as scripted.
 */
export async function startFakeOpenAiServer(): Promise<FakeOpenAiServer> {
  const requests: RecordedRequest[] = [];
  const queue: FakeReply[] = [];
  const waiters = new Set<() => void>();
  const pendingTimers = new Set<NodeJS.Timeout>();
  let handler: FakeHandler = DEFAULT_HANDLER;

  const server = createServer((incoming, response) => {
    void handle(incoming, response).catch((error: unknown) => {
      if (!response.headersSent) {
        sendJson(response, 500, { error: { message: `fake server failed: ${String(error)}`, type: 'server_error' } });
      }
    });
  });

  async function handle(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const recorded = await record(incoming);
    requests.push(recorded);
    for (const notify of waiters) {
      notify();
    }

    const match = CHAT_COMPLETIONS_PATH.exec(recorded.path);
    if (recorded.method !== 'POST' || match === null) {
      sendJson(response, 404, {
        error: { message: `no route for ${recorded.method} ${recorded.path}`, type: 'invalid_request_error' },
      });
      return;
    }

    const reply = queue.shift() ?? (await handler(recorded));
    await sendReply(response, reply, recorded, match[1]);
  }

  async function sendReply(
    response: ServerResponse,
    reply: FakeReply,
    request: RecordedRequest,
    deployment: string | undefined,
  ): Promise<void> {
    switch (reply.kind) {
      case 'answer':
        sendJson(response, 200, completionBody(request, deployment, reply));
        return;
      case 'empty':
        sendJson(response, 200, completionBody(request, deployment, { kind: 'answer', text: '' }));
        return;
      case 'no-choices':
        sendJson(response, 200, { ...completionBody(request, deployment, { kind: 'answer' }), choices: [] });
        return;
      case 'error':
        sendJson(
          response,
          reply.status,
          {
            error: {
              message: reply.message ?? `fake error with status ${reply.status}`,
              type: reply.type ?? (reply.status >= 500 ? 'server_error' : 'invalid_request_error'),
              param: reply.param ?? null,
              code: reply.code ?? null,
            },
          },
          reply.headers,
        );
        return;
      case 'slow':
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            pendingTimers.delete(timer);
            resolve();
          }, reply.delayMs);
          pendingTimers.add(timer);
        });
        // The client usually gave up and closed the connection while the server waited.
        if (response.destroyed) {
          return;
        }
        await sendReply(response, reply.then ?? { kind: 'answer' }, request, deployment);
        return;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  return {
    url: `${origin}/v1`,
    origin,
    requests,
    enqueue(...replies) {
      queue.push(...replies);
    },
    setHandler(next) {
      handler = next ?? DEFAULT_HANDLER;
    },
    reset() {
      requests.length = 0;
      queue.length = 0;
      handler = DEFAULT_HANDLER;
    },
    waitForRequests(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        if (requests.length >= count) {
          resolve([...requests]);
          return;
        }
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`fake OpenAI server: expected ${count} requests within ${timeoutMs} ms, got ${requests.length}`));
        }, timeoutMs);
        const check = (): void => {
          if (requests.length >= count) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve([...requests]);
          }
        };
        waiters.add(check);
      });
    },
    async close() {
      for (const timer of pendingTimers) {
        clearTimeout(timer);
      }
      pendingTimers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

async function record(incoming: IncomingMessage): Promise<RecordedRequest> {
  const receivedAtMs = Date.now();
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) {
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');

  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON: keep the raw text so a test can still inspect it.
  }

  const url = new URL(incoming.url ?? '/', 'http://127.0.0.1');
  return {
    method: incoming.method ?? 'GET',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: incoming.headers,
    body,
    receivedAtMs,
  };
}

function completionBody(
  request: RecordedRequest,
  deployment: string | undefined,
  reply: Extract<FakeReply, { kind: 'answer' }>,
): Record<string, unknown> {
  const messages = requestMessages(request.body);
  const text = reply.text ?? `Resposta para: ${lastUserText(messages)}`;
  const promptTokens = messages.reduce((sum, message) => sum + countWords(message.content), 0);
  const completionTokens = countWords(text);
  const usage =
    reply.usage === undefined
      ? { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens }
      : reply.usage;

  return {
    id: `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: reply.model ?? deployment ?? requestModel(request.body) ?? 'fake-model',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
    ...(usage === null ? {} : { usage }),
  };
}

function requestMessages(body: unknown): Array<{ role: string; content: string }> {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { messages?: unknown }).messages)) {
    return [];
  }
  return ((body as { messages: unknown[] }).messages).flatMap((message) => {
    if (typeof message !== 'object' || message === null) {
      return [];
    }
    const { role, content } = message as { role?: unknown; content?: unknown };
    return typeof role === 'string' && typeof content === 'string' ? [{ role, content }] : [];
  });
}

function requestModel(body: unknown): string | undefined {
  const model = typeof body === 'object' && body !== null ? (body as { model?: unknown }).model : undefined;
  return typeof model === 'string' && model !== '' ? model : undefined;
}

function lastUserText(messages: Array<{ role: string; content: string }>): string {
  return messages.findLast((message) => message.role === 'user')?.content ?? '';
}

function countWords(text: string): number {
  return text.split(/\s+/).filter((word) => word !== '').length;
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-request-id': `req_${randomUUID()}`,
    ...headers,
  });
  response.end(payload);
}
