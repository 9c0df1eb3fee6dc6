import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { AnyTRPCRouter } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import type { Registry } from 'prom-client';

import { describeError } from '../../../domain/errors.js';
import type { Logger } from '../../../domain/ports/logger.js';
import { ApiError } from '../trpc/api-error.js';

import { DEFAULT_READINESS_TIMEOUT_MS, LIVENESS_BODY, checkReadiness, type HealthCheck } from './health.js';

export interface HttpServerOptions {
  /** Address to bind, e.g. `0.0.0.0` or `127.0.0.1`. */
  host: string;
  /** Port to bind; 0 picks a free port, which `RunningHttpServer.port` then reports. */
  port: number;
  router: AnyTRPCRouter;
  health: HealthCheck;
  metricsRegistry: Registry;
  logger: Logger;
  /** Largest tRPC request body in bytes; a larger one gets PAYLOAD_TOO_LARGE. */
  maxBodyBytes?: number;
  /** Most calls one batched tRPC request may carry. */
  maxBatchSize?: number;
  /** How long `close()` waits for requests in flight before it drops their connections, in ms. */
  shutdownTimeoutMs?: number;
  /** How long `/health/ready` waits for the health check, in ms. */
  readinessTimeoutMs?: number;
}

export interface RunningHttpServer {
  /** The port actually bound. */
  port: number;
  /**
   * Stops accepting connections, waits up to `shutdownTimeoutMs` for requests in flight, then
   * closes every remaining connection, keep-alive ones included. Calling it again returns the
   * same promise.
   */
  close(): Promise<void>;
}

/** Path prefix of the tRPC API, e.g. `/trpc/conversation.send`. */
export const TRPC_BASE_PATH = '/trpc';

// One message is at most about 20 KB as JSON with the default limits (4096 characters of text,
// 4096 bytes of meta), so 1 MiB leaves room for batches and still bounds what the server buffers.
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_MAX_BATCH_SIZE = 10;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

const PLAIN_ROUTES = ['/health/live', '/health/ready', '/metrics'] as const;

/**
 * Serves the tRPC API under `/trpc`, `GET /health/live`, `GET /health/ready` (503 when a
 * component is down) and `GET /metrics` in the Prometheus text format, on node:http.
 *
 * NOTE: the server sends no CORS headers and does not answer preflight requests, so a browser
 * frontend must reach it from the same origin (through a reverse proxy, for example).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { logger } = options;
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const readinessTimeoutMs = options.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;

  const handleTrpc = createHTTPHandler({
    router: options.router,
    basePath: `${TRPC_BASE_PATH}/`,
    maxBodySize: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
    onError: ({ error, path }) => {
      // The router already logged failures inside procedures with their ids. This line only
      // records that an error response went out.
      logger.debug('tRPC call failed', {
        procedure: path,
        code: error.code,
        correlation_id: error instanceof ApiError ? error.correlationId : undefined,
      });
    },
  });

  const inFlight = new InFlightRequests();
  let closing: Promise<void> | undefined;

  const server = createServer((request, response) => {
    inFlight.add(response);
    if (closing !== undefined) {
      // Ask keep-alive clients to reconnect elsewhere instead of sending more on this socket.
      response.setHeader('connection', 'close');
    }
    route(request, response).catch((error: unknown) => {
      logger.error('HTTP request failed', { method: request.method, path: pathOf(request), error: describeError(error) });
      if (!response.headersSent) {
        sendJson(response, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'internal error' } });
      } else {
        response.destroy();
      }
    });
  });

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = pathOf(request);

    if (path === TRPC_BASE_PATH || path.startsWith(`${TRPC_BASE_PATH}/`)) {
      handleTrpc(request, response);
      return;
    }
    if (!(PLAIN_ROUTES as readonly string[]).includes(path)) {
      sendJson(response, 404, {
        error: {
          code: 'NOT_FOUND',
          message: `no route for ${request.method ?? 'GET'} ${path}; the routes are ${TRPC_BASE_PATH}/*, ${PLAIN_ROUTES.join(', ')}`,
        },
      });
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendJson(
        response,
        405,
        { error: { code: 'METHOD_NOT_SUPPORTED', message: `${path} accepts GET and HEAD only` } },
        { allow: 'GET, HEAD' },
      );
      return;
    }

    switch (path) {
      case '/health/live':
        sendJson(response, 200, LIVENESS_BODY);
        return;
      case '/health/ready': {
        const readiness = await checkReadiness(options.health, logger, readinessTimeoutMs);
        sendJson(response, readiness.status === 'ok' ? 200 : 503, readiness);
        return;
      }
      case '/metrics': {
        const body = await options.metricsRegistry.metrics();
        response.writeHead(200, { 'content-type': options.metricsRegistry.contentType, 'cache-control': 'no-store' });
        response.end(body);
        return;
      }
    }
  }

  await listen(server, options.port, options.host);
  server.on('error', (error) => logger.error('HTTP server error', { error: describeError(error) }));
  const port = (server.address() as AddressInfo).port;
  logger.info('HTTP server listening', { host: options.host, port });

  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    inFlight.askClientsToDisconnect();

    const drained = await inFlight.waitUntilEmpty(shutdownTimeoutMs);
    if (!drained) {
      logger.warn('HTTP requests still in flight after the shutdown timeout; dropping them', {
        requests: inFlight.size,
        timeout_ms: shutdownTimeoutMs,
      });
    }
    server.closeAllConnections();
    await closed;
    logger.info('HTTP server stopped', { port });
  };

  return {
    port,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}

/** Counts the responses not yet finished or aborted. */
class InFlightRequests {
  private readonly responses = new Set<ServerResponse>();
  private readonly emptyListeners = new Set<() => void>();

  get size(): number {
    return this.responses.size;
  }

  add(response: ServerResponse): void {
    this.responses.add(response);
    // 'close' follows both a finished response and a dropped connection.
    response.once('close', () => {
      this.responses.delete(response);
      if (this.responses.size === 0) {
        for (const listener of this.emptyListeners) {
          listener();
        }
      }
    });
  }

  /** Sets `connection: close` on every response whose headers are not sent yet. */
  askClientsToDisconnect(): void {
    for (const response of this.responses) {
      if (!response.headersSent) {
        response.setHeader('connection', 'close');
      }
    }
  }

  /** Resolves true once no request is in flight, or false when `timeoutMs` passes first. */
  waitUntilEmpty(timeoutMs: number): Promise<boolean> {
    if (this.responses.size === 0) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        this.emptyListeners.delete(onEmpty);
        resolve(drained);
      };
      const onEmpty = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.emptyListeners.add(onEmpty);
    });
  }
}

function listen(server: ReturnType<typeof createServer>, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(new Error(`HTTP server cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Returns the request path without its query string. */
function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const queryStart = url.indexOf('?');
  return queryStart === -1 ? url : url.slice(0, queryStart);
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(payload);
}
