import { setTimeout as sleep } from 'node:timers/promises';

import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, AzureOpenAI } from 'openai';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';

import { ErrorCode, ServiceError } from '../../../domain/errors.js';
import type { Completion, CompletionRequest, LlmClient } from '../../../domain/ports/llm-client.js';
import type { Logger } from '../../../domain/ports/logger.js';

/**
 * Settings of the OpenAI-compatible adapter. The service's `LlmSettings` has these fields (plus
 * `provider`), so the composition root passes its configuration as it is.
 */
export interface OpenAiLlmSettings {
  /** Server base URL; undefined means api.openai.com. */
  baseUrl: string | undefined;
  /** Undefined for servers that take no key, such as a local Ollama or vLLM. */
  apiKey: string | undefined;
  /** Default model, or the default deployment name on Azure. */
  model: string;
  /** Set to use the Azure deployment API: `baseUrl` is then the resource endpoint. */
  azureApiVersion: string | undefined;
  /** Limit for one HTTP attempt, in milliseconds. */
  timeoutMs: number;
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Upper bound for the tokens of one reply. */
  maxTokens: number;
}

/**
 * Bearer token sent when no key is configured. Ollama, and vLLM started without `--api-key`,
 * ignore the key, but the SDK rejects a client without one.
 */
const KEYLESS_PLACEHOLDER = 'no-key-configured';

/** Statuses worth retrying, as the SDK's own retry logic picks them: timeout, conflict, rate limit. */
const RETRYABLE_STATUSES = new Set([408, 409, 429]);

/** Backoff when the server sends no Retry-After: 0.5 s doubling per retry, at most 8 s (the SDK's values). */
const INITIAL_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8000;

/** Request fields a model accepts, learned from the 400 responses of models that reject the defaults. */
interface RequestShape {
  limitField: 'max_tokens' | 'max_completion_tokens';
  sendTemperature: boolean;
}

/** Classification of a failed HTTP attempt, for the retry decision. */
interface AttemptFailure {
  retryable: boolean;
  /** The HTTP status, or what went wrong when no response arrived. */
  status: number | 'timeout' | 'connection_error' | 'unknown';
  /** The server's Retry-After (or retry-after-ms), in milliseconds. */
  retryAfterMs: number | undefined;
}

/**
 * LLM client for OpenAI and servers that speak its chat-completions API: Azure OpenAI, Ollama,
 * vLLM. Sends the prompt with the assistant's model and temperature and returns the first choice.
 *
 * Retries timeouts, connection errors, 408, 409, 429 and 5xx, at most `maxRetries` times. It
 * waits for the delay in Retry-After, else with exponential backoff. The retry loop is its own
 * (the SDK's is turned off) so that every retry is logged with the correlation id, and so that
 * the whole call, waits included, ends within `timeoutMs × (maxRetries + 1)`. The dedup lease is
 * checked against that bound. A retry whose wait would overrun the budget is not made, so with a
 * timeout near the backoff delays fewer than `maxRetries` retries can happen.
 */
export class OpenAiLlmClient implements LlmClient {
  private readonly client: OpenAI;
  private readonly shapes = new Map<string, RequestShape>();

  constructor(
    private readonly settings: OpenAiLlmSettings,
    private readonly logger: Logger,
  ) {
    this.client = createClient(settings);
  }

  async complete(request: CompletionRequest): Promise<Completion> {
    const model = request.assistant.model ?? this.settings.model;
    const maxAttempts = this.settings.maxRetries + 1;
    const startedAt = performance.now();
    const deadline = startedAt + this.settings.timeoutMs * maxAttempts;

    for (let attempt = 1; ; ) {
      const attemptTimeoutMs = Math.max(1, Math.min(this.settings.timeoutMs, Math.ceil(deadline - performance.now())));

      let response: ChatCompletion;
      try {
        response = await this.client.chat.completions.create(this.requestBody(request, model), {
          timeout: attemptTimeoutMs,
          maxRetries: 0,
        });
      } catch (error) {
        if (this.learnRejectedField(error, model, request.correlationId)) {
          continue;
        }

        const failure = classify(error);
        const description = this.redact(describe(error));
        if (!failure.retryable) {
          throw new ServiceError(ErrorCode.LlmFailed, `LLM call to model ${model} failed: ${description}`, {
            retryable: false,
            cause: this.safeCause(error),
          });
        }
        if (attempt >= maxAttempts) {
          throw new ServiceError(
            ErrorCode.LlmFailed,
            `LLM call to model ${model} failed after ${attempt} attempts: ${description}`,
            { retryable: true, cause: this.safeCause(error) },
          );
        }

        const delayMs = failure.retryAfterMs ?? backoffDelayMs(attempt);
        const leftAfterWaitMs = deadline - performance.now() - delayMs;
        if (leftAfterWaitMs <= 0) {
          throw new ServiceError(
            ErrorCode.LlmFailed,
            `LLM call to model ${model} failed after ${attempt} attempts: ${description}; ` +
              `waiting ${Math.round(delayMs)} ms for a retry would exceed the time budget of ${this.settings.timeoutMs * maxAttempts} ms`,
            { retryable: true, cause: this.safeCause(error) },
          );
        }

        this.logger.warn('LLM call failed; retrying', {
          tenant_id: request.assistant.tenantId,
          assistant_id: request.assistant.id,
          correlation_id: request.correlationId,
          model,
          attempt,
          max_attempts: maxAttempts,
          status: failure.status,
          delay_ms: Math.round(delayMs),
          error: description,
        });
        await sleep(delayMs);
        attempt += 1;
        continue;
      }

      const completion = toCompletion(response, model);
      this.logger.debug('LLM call succeeded', {
        correlation_id: request.correlationId,
        model: completion.modelName,
        attempts: attempt,
        tokens_used: completion.tokensUsed,
        duration_ms: Math.round(performance.now() - startedAt),
      });
      return completion;
    }
  }

  /**
   * Builds the request body. The reply limit goes in `max_tokens` by default because every target
   * server honours it: OpenAI and Azure accept it for chat models (openai 7.55.0 marks it
   * deprecated), vLLM's request schema has both names, and Ollama's OpenAI endpoint honours only
   * `max_tokens` (Ollama 0.32.5 silently ignores `max_completion_tokens`). OpenAI reasoning models
   * reject `max_tokens`, and any temperature but the default, with a 400 that names the field.
   * `learnRejectedField` then switches that model to `max_completion_tokens` or drops the
   * temperature.
   */
  private requestBody(request: CompletionRequest, model: string): ChatCompletionCreateParamsNonStreaming {
    const shape = this.shapeFor(model);
    return {
      model,
      messages: request.messages.map((message) => ({ role: message.role, content: message.content })),
      ...(shape.sendTemperature ? { temperature: request.assistant.temperature } : {}),
      ...(shape.limitField === 'max_tokens'
        ? { max_tokens: this.settings.maxTokens }
        : { max_completion_tokens: this.settings.maxTokens }),
    };
  }

  private shapeFor(model: string): RequestShape {
    let shape = this.shapes.get(model);
    if (shape === undefined) {
      shape = { limitField: 'max_tokens', sendTemperature: true };
      this.shapes.set(model, shape);
    }
    return shape;
  }

  /**
   * Changes the request shape of `model` when the server rejected a field that has an
   * alternative, and returns true when the call should be sent again at once with the new shape.
   * Each field changes at most once per model, so the resending cannot loop.
   */
  private learnRejectedField(error: unknown, model: string, correlationId: string): boolean {
    if (!(error instanceof APIError) || error.status !== 400) {
      return false;
    }
    const shape = this.shapeFor(model);
    if (error.param === 'max_tokens' && shape.limitField === 'max_tokens') {
      shape.limitField = 'max_completion_tokens';
    } else if (error.param === 'temperature' && shape.sendTemperature) {
      shape.sendTemperature = false;
    } else {
      return false;
    }
    this.logger.info('model rejected a request field; sending the request again without it', {
      correlation_id: correlationId,
      model,
      rejected_field: error.param,
    });
    return true;
  }

  /** Removes the API key from text that came from the server or the SDK. */
  private redact(text: string): string {
    const key = this.settings.apiKey;
    return key === undefined || key === '' ? text : text.split(key).join('[redacted]');
  }

  /** Returns the error to attach as cause: the SDK's own, unless its message contains the key. */
  private safeCause(error: unknown): unknown {
    const message = describe(error);
    return this.redact(message) === message ? error : new Error(this.redact(message));
  }
}

function createClient(settings: OpenAiLlmSettings): OpenAI {
  // Retries and logging are done by OpenAiLlmClient; the SDK must not log prompts to the console
  // when OPENAI_LOG is set in the environment.
  const common = { timeout: settings.timeoutMs, maxRetries: 0, logLevel: 'off' as const };

  if (settings.azureApiVersion === undefined) {
    if (settings.baseUrl === undefined && settings.apiKey === undefined) {
      throw new ServiceError(
        ErrorCode.InvalidConfiguration,
        'the OpenAI LLM client needs an API key for api.openai.com, or a base URL of a server that takes no key',
      );
    }
    return new OpenAI({
      ...common,
      apiKey: settings.apiKey ?? KEYLESS_PLACEHOLDER,
      baseURL: settings.baseUrl ?? 'https://api.openai.com/v1',
    });
  }

  // Azure's v1 endpoint (https://<resource>.openai.azure.com/openai/v1/) needs no API version and
  // works with the plain client above. The deployment API below needs the version, and its path
  // names the deployment, which is the request's model.
  if (settings.baseUrl === undefined || settings.apiKey === undefined) {
    throw new ServiceError(
      ErrorCode.InvalidConfiguration,
      'the Azure OpenAI client needs the resource endpoint as base URL (https://<resource>.openai.azure.com) and an API key',
    );
  }
  const hasPath = new URL(settings.baseUrl).pathname.replace(/\/+$/, '') !== '';
  return new AzureOpenAI({
    ...common,
    apiKey: settings.apiKey,
    apiVersion: settings.azureApiVersion,
    // A bare resource URL is an endpoint: the SDK appends /openai. A URL with a path, such as
    // .../openai or .../openai/deployments/<name>, is used as the base URL as it is.
    ...(hasPath ? { baseURL: settings.baseUrl } : { endpoint: settings.baseUrl }),
  });
}

function classify(error: unknown): AttemptFailure {
  // APIConnectionTimeoutError extends APIConnectionError, which extends APIError: test it first.
  if (error instanceof APIConnectionTimeoutError) {
    return { retryable: true, status: 'timeout', retryAfterMs: undefined };
  }
  if (error instanceof APIConnectionError) {
    return { retryable: true, status: 'connection_error', retryAfterMs: undefined };
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    // OpenAI reports an exhausted balance as 429 too, and waiting does not refill it.
    const quotaExhausted = error.status === 429 && error.code === 'insufficient_quota';
    return {
      retryable: !quotaExhausted && (RETRYABLE_STATUSES.has(error.status) || error.status >= 500),
      status: error.status,
      retryAfterMs: retryAfterMs(error.headers),
    };
  }
  return { retryable: false, status: 'unknown', retryAfterMs: undefined };
}

/** Reads `retry-after-ms` (which the SDK honours too) or `retry-after` (seconds or an HTTP date). */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const milliseconds = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(milliseconds) && milliseconds >= 0) {
    return milliseconds;
  }

  const value = headers?.get('retry-after');
  if (value === undefined || value === null) {
    return undefined;
  }
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds)) {
    return seconds >= 0 ? seconds * 1000 : undefined;
  }
  const untilDate = Date.parse(value) - Date.now();
  return Number.isFinite(untilDate) ? Math.max(0, untilDate) : undefined;
}

/** Exponential backoff with up to 25 % jitter; `attempt` is the number of the attempt that failed. */
function backoffDelayMs(attempt: number): number {
  const delay = Math.min(INITIAL_RETRY_DELAY_MS * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
  return delay * (1 - Math.random() * 0.25);
}

function toCompletion(response: ChatCompletion, requestedModel: string): Completion {
  const choice = response.choices?.[0];
  const text = choice?.message?.content?.trim() ?? '';
  if (text === '') {
    throw new ServiceError(
      ErrorCode.LlmFailed,
      `LLM model ${requestedModel} returned no text (finish_reason ${choice?.finish_reason ?? 'none'}, ${response.choices?.length ?? 0} choices)`,
      { retryable: false },
    );
  }

  const totalTokens = response.usage?.total_tokens;
  return {
    text,
    tokensUsed: typeof totalTokens === 'number' && Number.isInteger(totalTokens) && totalTokens >= 0 ? totalTokens : 0,
    modelName: typeof response.model === 'string' && response.model !== '' ? response.model : requestedModel,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
