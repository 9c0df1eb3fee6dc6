/**
 * Error taxonomy shared by every layer. Callers classify errors by `code` and `retryable`,
 * never by message text. Adapters convert these to their transport's errors once, at the edge.
 */
export const ErrorCode = {
  /** The inbound event or request is malformed; retrying the same input cannot succeed. */
  InvalidInput: 'INVALID_INPUT',
  /** No assistant is configured for the tenant and assistant id. */
  AssistantNotFound: 'ASSISTANT_NOT_FOUND',
  /** Another worker holds a live claim on the same message; retry after its lease ends. */
  MessageInProgress: 'MESSAGE_IN_PROGRESS',
  /** This worker's claim expired and another worker took the message over. */
  ClaimLost: 'CLAIM_LOST',
  /** A store (Redis, memory) failed or timed out. */
  StoreUnavailable: 'STORE_UNAVAILABLE',
  /** The event bus failed to publish or was not acknowledged. */
  PublishFailed: 'PUBLISH_FAILED',
  /** The language model call failed, timed out or was rate limited. */
  LlmFailed: 'LLM_FAILED',
  /** Configuration is invalid; the service cannot start. */
  InvalidConfiguration: 'INVALID_CONFIGURATION',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ServiceErrorOptions {
  retryable?: boolean;
  cause?: unknown;
}

/** Base error of the service: a stable string code, a retryable flag and the cause. */
export class ServiceError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: ServiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServiceError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof ServiceError;
}

/** Tells whether retrying the same operation may succeed; unknown errors count as retryable. */
export function isRetryable(error: unknown): boolean {
  return isServiceError(error) ? error.retryable : true;
}

/** Extracts a short description of any thrown value for logs, without the stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
