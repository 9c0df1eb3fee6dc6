import { randomUUID } from 'node:crypto';

import { initTRPC, type TRPCError } from '@trpc/server';
import { z } from 'zod';

import type { ProcessMessage } from '../../../application/process-message.js';
import type { Assistant } from '../../../domain/assistant.js';
import type { InboundLimits } from '../../../domain/decode-message-received.js';
import { describeError, isServiceError } from '../../../domain/errors.js';
import { identifierSchema } from '../../../domain/event-envelope.js';
import type { AssistantRepo } from '../../../domain/ports/assistant-repo.js';
import type { Logger } from '../../../domain/ports/logger.js';
import type { MemoryRepo } from '../../../domain/ports/memory-repo.js';
import type { Metrics } from '../../../domain/ports/metrics.js';
import { LIVENESS_BODY, checkReadiness, type HealthCheck } from '../http/health.js';

import {
  ApiError,
  internalErrorMessage,
  inputIssuesOf,
  invalidInputError,
  toFailureError,
  type ApiErrorShape,
} from './api-error.js';
import { sendInputSchema, sendMessage } from './send-message.js';

export type { HealthReport } from '../http/health.js';

export interface ApiDependencies {
  /** The ProcessMessage use case. Tests may pass any object with the same `execute`. */
  processMessage: Pick<ProcessMessage, 'execute'>;
  assistants: AssistantRepo;
  memory: MemoryRepo;
  health: HealthCheck;
  logger: Logger;
  metrics: Metrics;
  limits: InboundLimits;
  /** `source` of the events built from requests that name none. */
  eventSource: string;
}

/** Context that the error boundary adds to every call. */
interface CallContext {
  /** The caller's correlation_id when it sent a valid one, else a UUID generated for the call. */
  correlationId: string;
}

const DEFAULT_HISTORY_LIMIT = 20;
const MAX_HISTORY_LIMIT = 100;

/**
 * Builds the tRPC API of the service. Field names are snake_case like the events.
 *
 * NOTE: the API has no authentication yet. Every procedure trusts the tenant_id the caller
 * sends, so serve it only to trusted callers (behind a gateway that authenticates them).
 */
export function createAppRouter(deps: ApiDependencies) {
  const t = initTRPC.create({
    // No stack traces in responses, whatever the value of NODE_ENV (tRPC's default turns them on outside production).
    isDev: false,
    errorFormatter: ({ error, shape, path }): ApiErrorShape => formatError(error, shape, path, deps.logger),
  });

  const procedure = t.procedure.use(async ({ path, getRawInput, next }) => {
    const startedAt = performance.now();
    const rawInput = await readRawInput(getRawInput);
    const correlationId = readCorrelationId(rawInput) ?? randomUUID();

    const result = await next({ ctx: { correlationId } satisfies CallContext });
    if (result.ok || result.error instanceof ApiError) {
      return result;
    }
    throw toApiError(deps, result.error, { path, rawInput, correlationId, startedAt });
  });

  return t.router({
    conversation: t.router({
      send: procedure
        .input(sendInputSchema(deps.limits))
        .mutation(({ input, ctx }) => sendMessage(deps, input, ctx.correlationId)),

      /** Returns the newest turns of one conversation of the tenant, oldest first. */
      history: procedure
        .input(
          z.object({
            tenant_id: identifierSchema,
            conversation_id: identifierSchema,
            limit: z.number().int().min(1).max(MAX_HISTORY_LIMIT).default(DEFAULT_HISTORY_LIMIT),
          }),
        )
        .query(async ({ input }) => {
          const turns = await deps.memory.recentTurns(
            { tenantId: input.tenant_id, conversationId: input.conversation_id },
            input.limit,
          );
          return {
            conversation_id: input.conversation_id,
            turns: turns.map((turn) => ({
              message_id: turn.messageId,
              role: turn.role,
              text: turn.text,
              timestamp: turn.timestamp,
            })),
          };
        }),
    }),

    assistants: t.router({
      /**
       * Lists the tenant's assistants without their system prompts: with no authentication,
       * a caller that guesses a tenant_id should learn as little as possible.
       */
      list: procedure.input(z.object({ tenant_id: identifierSchema })).query(async ({ input, ctx }) => {
        const assistants = await deps.assistants.list(input.tenant_id);
        if (assistants.length === 0) {
          throw unknownTenantError(input.tenant_id, ctx.correlationId);
        }
        return {
          assistants: assistants.map((assistant) => ({
            id: assistant.id,
            name: assistant.name,
            locale: assistant.locale,
            /** null means the LLM adapter's configured default model. */
            model: assistant.model ?? null,
          })),
        };
      }),

      /** Returns one assistant's whole configuration. The assistants file contains no credentials. */
      get: procedure
        .input(z.object({ tenant_id: identifierSchema, assistant_id: identifierSchema }))
        .query(async ({ input, ctx }) => {
          const lookup = await deps.assistants.find(input.tenant_id, input.assistant_id);
          if (lookup.status === 'unknown_tenant') {
            throw unknownTenantError(input.tenant_id, ctx.correlationId);
          }
          if (lookup.status === 'unknown_assistant') {
            throw new ApiError({
              code: 'NOT_FOUND',
              message: `tenant ${input.tenant_id} has no assistant ${input.assistant_id}`,
              correlationId: ctx.correlationId,
            });
          }
          return toAssistantDetails(lookup.assistant);
        }),
    }),

    health: t.router({
      live: procedure.query(() => LIVENESS_BODY),
      ready: procedure.query(() => checkReadiness(deps.health, deps.logger)),
    }),
  });
}

/** Type of the router, for TypeScript clients: `createTRPCClient<AppRouter>(...)`. */
export type AppRouter = ReturnType<typeof createAppRouter>;

function unknownTenantError(tenantId: string, correlationId: string): ApiError {
  return new ApiError({ code: 'NOT_FOUND', message: `tenant ${tenantId} has no assistants configured`, correlationId });
}

function toAssistantDetails(assistant: Assistant) {
  return {
    tenant_id: assistant.tenantId,
    id: assistant.id,
    name: assistant.name,
    system_prompt: assistant.systemPrompt,
    /** null means the LLM adapter's configured default model. */
    model: assistant.model ?? null,
    temperature: assistant.temperature,
    locale: assistant.locale,
    greeting: assistant.greeting ?? null,
    fallback_reply: assistant.fallbackReply,
    error_reply: assistant.errorReply,
    faq: assistant.faq.map((entry) => ({ question: entry.question, answer: entry.answer, keywords: entry.keywords })),
  };
}

interface FailedCall {
  path: string;
  rawInput: unknown;
  correlationId: string;
  startedAt: number;
}

/**
 * Converts an error that a procedure ended with, other than an ApiError, into one: invalid
 * input into BAD_REQUEST with every field path, a failing store into SERVICE_UNAVAILABLE, and
 * anything unexpected into INTERNAL_SERVER_ERROR, logged here with its cause and stack.
 */
function toApiError(deps: ApiDependencies, error: TRPCError, call: FailedCall): ApiError {
  const durationMs = Math.round(performance.now() - call.startedAt);
  const ids = { procedure: call.path, correlation_id: call.correlationId, ...readIds(call.rawInput) };

  const issues = inputIssuesOf(error);
  if (issues !== undefined) {
    if (call.path === 'conversation.send') {
      deps.metrics.recordMessage('rejected', 'schema_invalid', durationMs);
    }
    deps.logger.info('request rejected: invalid input', {
      ...ids,
      outcome: 'rejected',
      invalid_fields: issues.map((issue) => issue.path),
      processing_time_ms: durationMs,
    });
    return invalidInputError(issues, call.correlationId);
  }

  if (error.code !== 'INTERNAL_SERVER_ERROR') {
    // tRPC's own client errors, such as a body that is not JSON, have messages written for callers.
    if (call.path === 'conversation.send') {
      deps.metrics.recordMessage('rejected', 'schema_invalid', durationMs);
    }
    deps.logger.info('request rejected', {
      ...ids,
      outcome: 'rejected',
      response_code: error.code,
      processing_time_ms: durationMs,
    });
    return new ApiError({ code: error.code, message: error.message, correlationId: call.correlationId });
  }

  const cause = error.cause ?? error;
  const apiError = toFailureError(cause, call.correlationId);
  const fields = {
    ...ids,
    error: describeError(cause),
    error_code: isServiceError(cause) ? cause.code : undefined,
    response_code: apiError.code,
    processing_time_ms: durationMs,
  };
  if (apiError.code === 'INTERNAL_SERVER_ERROR') {
    deps.logger.error('request failed', { ...fields, stack: cause instanceof Error ? cause.stack : undefined });
  } else {
    deps.logger.warn('request failed; the client may retry', fields);
  }
  return apiError;
}

/**
 * Shapes every error response: code, HTTP status, procedure path, correlation id and field
 * issues, and never a stack. An internal error that did not pass through a procedure's
 * boundary (a failure while encoding the response, for example) gets a generic message.
 */
function formatError(
  error: TRPCError,
  shape: { code: ApiErrorShape['code']; message: string; data: { httpStatus: number; path?: string } },
  path: string | undefined,
  logger: Logger,
): ApiErrorShape {
  let message = shape.message;
  let correlationId: string | undefined;
  let issues: ApiErrorShape['data']['issues'];

  if (error instanceof ApiError) {
    correlationId = error.correlationId;
    issues = error.issues;
  } else if (error.code === 'INTERNAL_SERVER_ERROR') {
    correlationId = randomUUID();
    message = internalErrorMessage(correlationId);
    logger.error('request failed outside a procedure', {
      procedure: path,
      correlation_id: correlationId,
      error: describeError(error.cause ?? error),
      stack: error.cause instanceof Error ? error.cause.stack : error.stack,
    });
  }

  return {
    message,
    code: shape.code,
    data: {
      code: error.code,
      httpStatus: shape.data.httpStatus,
      ...(path === undefined ? {} : { path }),
      ...(correlationId === undefined ? {} : { correlation_id: correlationId }),
      ...(issues === undefined ? {} : { issues }),
    },
  };
}

async function readRawInput(getRawInput: () => Promise<unknown>): Promise<unknown> {
  try {
    return await getRawInput();
  } catch {
    // The input middleware reads it again and reports the error to the caller.
    return undefined;
  }
}

/** Reads the caller's correlation_id when it is a valid identifier. */
function readCorrelationId(rawInput: unknown): string | undefined {
  if (typeof rawInput !== 'object' || rawInput === null) {
    return undefined;
  }
  const parsed = identifierSchema.safeParse((rawInput as Record<string, unknown>)['correlation_id']);
  return parsed.success ? parsed.data : undefined;
}

/** Reads the ids a log line carries from the raw input, keeping only valid identifiers. */
function readIds(rawInput: unknown): Record<string, string> {
  if (typeof rawInput !== 'object' || rawInput === null) {
    return {};
  }
  const ids: Record<string, string> = {};
  for (const field of ['tenant_id', 'conversation_id', 'message_id'] as const) {
    const parsed = identifierSchema.safeParse((rawInput as Record<string, unknown>)[field]);
    if (parsed.success) {
      ids[field] = parsed.data;
    }
  }
  return ids;
}
