import { TRPCError, type TRPC_ERROR_CODE_KEY, type TRPC_ERROR_CODE_NUMBER } from '@trpc/server';
import { z } from 'zod';

import { toFieldIssues, type FieldIssue } from '../../../domain/decode-message-received.js';
import { ErrorCode, isServiceError } from '../../../domain/errors.js';

/**
 * An error whose message is safe to send to the client, with the request's correlation id and,
 * for invalid input, every invalid field. The router converts every error of a procedure to one
 * before the error formatter runs, so no raw error message reaches the formatter from there.
 */
export class ApiError extends TRPCError {
  readonly correlationId: string;
  readonly issues: FieldIssue[] | undefined;

  constructor(options: { code: TRPC_ERROR_CODE_KEY; message: string; correlationId: string; issues?: FieldIssue[] }) {
    // No `cause`: the client-facing error must not carry the internal error along.
    super({ code: options.code, message: options.message });
    this.name = 'ApiError';
    this.correlationId = options.correlationId;
    this.issues = options.issues;
  }
}

/** The `data` of every error response of the API. */
export interface ApiErrorData {
  code: TRPC_ERROR_CODE_KEY;
  httpStatus: number;
  /** The procedure that failed, e.g. `conversation.send`. */
  path?: string;
  /** Quote it when reporting a failure: the server log carries the same id. */
  correlation_id?: string;
  /** Every invalid input field; present on BAD_REQUEST only. */
  issues?: FieldIssue[];
}

export interface ApiErrorShape {
  message: string;
  code: TRPC_ERROR_CODE_NUMBER;
  data: ApiErrorData;
}

/** Message of every unexpected failure: it names the correlation id and nothing internal. */
export function internalErrorMessage(correlationId: string): string {
  return `internal error; quote correlation_id ${correlationId} when reporting it`;
}

/** Builds the BAD_REQUEST error for a list of invalid fields. */
export function invalidInputError(issues: FieldIssue[], correlationId: string): ApiError {
  const summary = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
  return new ApiError({ code: 'BAD_REQUEST', message: `invalid input: ${summary}`, correlationId, issues });
}

/** Reads the field issues of an input validation error, or returns undefined for any other error. */
export function inputIssuesOf(error: TRPCError): FieldIssue[] | undefined {
  if (error.code !== 'BAD_REQUEST' || !(error.cause instanceof z.ZodError)) {
    return undefined;
  }
  return toFieldIssues(error.cause);
}

/**
 * Converts a failure of a store, the bus or the use case into the client-facing error:
 * MESSAGE_IN_PROGRESS becomes CONFLICT, any other retryable ServiceError SERVICE_UNAVAILABLE,
 * and everything else INTERNAL_SERVER_ERROR. Messages never include the cause's message.
 */
export function toFailureError(cause: unknown, correlationId: string): ApiError {
  if (isServiceError(cause) && cause.code === ErrorCode.MessageInProgress) {
    return new ApiError({
      code: 'CONFLICT',
      message: 'the message is being processed by another request; retry later with the same message_id',
      correlationId,
    });
  }
  if (isServiceError(cause) && cause.retryable) {
    return new ApiError({
      code: 'SERVICE_UNAVAILABLE',
      message: `service temporarily unavailable; retry later (correlation_id ${correlationId})`,
      correlationId,
    });
  }
  return new ApiError({ code: 'INTERNAL_SERVER_ERROR', message: internalErrorMessage(correlationId), correlationId });
}
