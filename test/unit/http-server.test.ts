import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from '../../src/adapters/inbound/http/http-server.js';
import type { HealthReport } from '../../src/adapters/inbound/http/health.js';
import { createAppRouter, type ApiDependencies } from '../../src/adapters/inbound/trpc/router.js';
import type { ProcessOutcome } from '../../src/application/process-message.js';
import { InMemoryAssistantRepo } from '../../src/adapters/outbound/assistants/in-memory-assistant-repo.js';
import { InMemoryMemoryRepo } from '../../src/adapters/outbound/memory/in-memory-memory-repo.js';
import { PrometheusMetrics } from '../../src/adapters/outbound/metrics/prometheus-metrics.js';
import { EventName } from '../../src/domain/event-envelope.js';
import type { MessageReceivedEvent } from '../../src/domain/events.js';
import { systemClock } from '../../src/domain/ports/clock.js';
import { CapturingLogger, TEST_ASSISTANTS } from '../support/fakes.js';

const HEALTHY: HealthReport = {
  live: true,
  ready: true,
  components: { event_bus: { ok: true, detail: 'connected' }, redis: { ok: true, detail: 'PONG' } },
};

interface Started {
  server: RunningHttpServer;
  base: string;
  logger: CapturingLogger;
  metrics: PrometheusMetrics;
}

const running: RunningHttpServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

async function start(
  options: {
    health?: () => Promise<HealthReport>;
    processMessage?: ApiDependencies['processMessage'];
  } & Partial<Pick<HttpServerOptions, 'shutdownTimeoutMs' | 'readinessTimeoutMs' | 'port'>> = {},
): Promise<Started> {
  const logger = new CapturingLogger();
  const metrics = new PrometheusMetrics({ collectProcessMetrics: false });
  const health = options.health ?? (async () => HEALTHY);
  const router = createAppRouter({
    processMessage: options.processMessage ?? { execute: async (event) => answered(event) },
    assistants: new InMemoryAssistantRepo(TEST_ASSISTANTS),
    memory: new InMemoryMemoryRepo(systemClock, { maxTurnsPerConversation: 10, retentionSeconds: 60 }),
    health,
    logger,
    metrics,
    limits: { maxEventBytes: 65_536, maxTextLength: 4096, maxMetaBytes: 4096 },
    eventSource: 'api',
  });
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    router,
    health,
    metricsRegistry: metrics.registry,
    logger,
    ...(options.shutdownTimeoutMs === undefined ? {} : { shutdownTimeoutMs: options.shutdownTimeoutMs }),
    ...(options.readinessTimeoutMs === undefined ? {} : { readinessTimeoutMs: options.readinessTimeoutMs }),
  });
  running.push(server);
  return { server, base: `http://127.0.0.1:${server.port}`, logger, metrics };
}

/** A processed outcome for `event`, as ProcessMessage would return it. */
function answered(event: MessageReceivedEvent): ProcessOutcome {
  return {
    kind: 'processed',
    replayed: false,
    reply: {
      event_name: EventName.MessageGenerated,
      version: '1.0',
      timestamp: new Date().toISOString(),
      tenant_id: event.tenant_id,
      correlation_id: event.correlation_id,
      source: 'ia-conversational',
      data: {
        conversation_id: event.data.conversation_id,
        message_id: `reply-${event.data.message_id}`,
        text: 'ok',
        assistant_id: event.data.assistant_id,
        processing_time_ms: 1,
        tokens_used: 0,
        model_name: 'test-model',
        has_historical_context: false,
        meta: { reply_source: 'llm', locale: 'pt-BR' },
        in_reply_to: event.data.message_id,
        user_id: event.data.user_id,
        channel: event.data.channel,
      },
    },
  };
}

const SEND_BODY = JSON.stringify({
  tenant_id: 'tenant-a',
  conversation_id: 'conv-1',
  message_id: 'm-1',
  text: 'oi',
  assistant_id: 'support',
  user_id: 'user-1',
});

function postSend(base: string): Promise<Response> {
  return fetch(`${base}/trpc/conversation.send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: SEND_BODY,
  });
}

/** Sends one request on a fresh connection (no pooling) and returns the status, or the error. */
function requestOnNewConnection(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${base}${path}`, { agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.once('error', reject);
    request.end();
  });
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

describe('HTTP server: routes', () => {
  it('port 0 binds a free port', async () => {
    const { server } = await start();

    expect(server.port).toBeGreaterThan(0);
    expect(await requestOnNewConnection(`http://127.0.0.1:${server.port}`, '/health/live')).toBe(200);
  });

  it('/health/live returns ok', async () => {
    const { base } = await start({
      health: async () => {
        throw new Error('liveness must not run the component checks');
      },
    });

    const response = await fetch(`${base}/health/live`);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/health/ready returns the components', async () => {
    const { base } = await start();

    const response = await fetch(`${base}/health/ready`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({ status: 'ok', components: HEALTHY.components });
  });

  it('/health/ready returns 503 when a component is down', async () => {
    const components = { event_bus: { ok: true, detail: 'connected' }, redis: { ok: false, detail: 'ECONNREFUSED' } };
    const { base } = await start({ health: async () => ({ live: true, ready: false, components }) });

    const response = await fetch(`${base}/health/ready`);

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'unavailable', components });
  });

  it('/health/ready returns 503 when the check throws', async () => {
    const { base, logger } = await start({
      health: async () => {
        throw new Error('admin client crashed');
      },
    });

    const response = await fetch(`${base}/health/ready`);

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ status: 'unavailable', components: {}, detail: 'health check failed' });
    expect(logger.lines.some((line) => line.level === 'error' && line.fields['error'] === 'admin client crashed')).toBe(true);
  });

  it('/health/ready returns 503 when the check hangs', async () => {
    const never = deferred<HealthReport>();
    const { base } = await start({ health: () => never.promise, readinessTimeoutMs: 50 });

    const response = await fetch(`${base}/health/ready`);

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: 'unavailable',
      components: {},
      detail: 'health check timed out after 50 ms',
    });
  });

  it('/metrics returns the Prometheus text', async () => {
    const { base, metrics } = await start();
    expect((await postSend(base)).status).toBe(200);

    const response = await fetch(`${base}/metrics`);
    const text = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(metrics.registry.contentType);
    expect(text).toContain('# TYPE ia_messages_total counter');
    expect(text).toMatch(/^ia_messages_total\{outcome="processed",reason=""\} 1$/m);
  });

  it('unknown path returns 404 JSON', async () => {
    const { base } = await start();

    const response = await fetch(`${base}/admin?x=1`);

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/json');
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NOT_FOUND');
    expect(body.error.message).toContain('GET /admin');
  });

  it('POST to a health route returns 405', async () => {
    const { base } = await start();

    const response = await fetch(`${base}/health/ready`, { method: 'POST' });

    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });

  it('tRPC calls are served under /trpc', async () => {
    const { base } = await start();

    const response = await postSend(base);
    const body = (await response.json()) as { result: { data: { message_id: string; duplicate: boolean } } };

    expect(response.status).toBe(200);
    expect(body.result.data).toMatchObject({ message_id: 'reply-m-1', duplicate: false });
  });

  it('busy port fails the start', async () => {
    const { server } = await start();

    await expect(start({ port: server.port })).rejects.toThrow(`cannot listen on 127.0.0.1:${server.port}`);
  });
});

describe('HTTP server: close', () => {
  it('close waits for a request in flight', async () => {
    const release = deferred<void>();
    const entered = deferred<void>();
    const { server, base } = await start({
      processMessage: {
        execute: async (event) => {
          entered.resolve();
          await release.promise;
          return answered(event);
        },
      },
    });

    const inFlight = postSend(base);
    await entered.promise;
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });

    await expect(requestOnNewConnection(base, '/health/live')).rejects.toThrow(/ECONNREFUSED/);
    expect(closed).toBe(false);
    release.resolve();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.headers.get('connection')).toBe('close');
    await closing;
    expect(closed).toBe(true);
  });

  it('close drops a request past the timeout', async () => {
    const entered = deferred<void>();
    const never = deferred<ProcessOutcome>();
    const { server, base, logger } = await start({
      shutdownTimeoutMs: 100,
      processMessage: {
        execute: () => {
          entered.resolve();
          return never.promise;
        },
      },
    });

    const inFlight = postSend(base);
    await entered.promise;
    await server.close();

    await expect(inFlight).rejects.toThrow();
    expect(logger.lines.some((line) => line.level === 'warn' && line.fields['requests'] === 1)).toBe(true);
  });

  it('close ends idle keep-alive connections', async () => {
    const { server, base } = await start({ shutdownTimeoutMs: 60_000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });

    const socket = await new Promise<Socket>((resolve, reject) => {
      const request = httpRequest(`${base}/health/live`, { agent }, (response: IncomingMessage) => {
        response.resume();
        response.once('end', () => resolve(request.socket as Socket));
      });
      request.once('error', reject);
      request.end();
    });
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));

    await server.close();
    await socketClosed;

    expect(socket.destroyed).toBe(true);
    agent.destroy();
  });
});
