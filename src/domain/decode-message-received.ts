import type { z } from 'zod';

import { DeadLetterReason } from './dead-letter.js';
import { EventName, SUPPORTED_MAJOR_VERSION, readMajorVersion } from './event-envelope.js';
import { checkMeta, messageReceivedSchema, type MessageReceivedEvent } from './events.js';

/** Size limits on inbound events; every value comes from configuration. */
export interface InboundLimits {
  /** Maximum size of the raw event in bytes (UTF-8). */
  maxEventBytes: number;
  /** Maximum length of `data.text` in characters (UTF-16 code units, as JavaScript counts). */
  maxTextLength: number;
  /** Maximum size of `data.meta` serialised as JSON, in bytes. */
  maxMetaBytes: number;
}

export interface FieldIssue {
  /** Dotted field path, e.g. `data.message_id`. */
  path: string;
  message: string;
}

export type DecodeResult =
  | { ok: true; event: MessageReceivedEvent; correlationIdGenerated: boolean }
  | {
      ok: false;
      reason: DeadLetterReason;
      detail: string;
      issues: FieldIssue[];
      /** Read from the raw JSON when present, for logs and dead-letter headers. */
      tenantId?: string;
      correlationId?: string;
      conversationId?: string;
      messageId?: string;
    };

type Rejection = Extract<DecodeResult, { ok: false }>;

/**
 * Decodes and validates one raw `conversation.message_received` event. Never throws: every
 * failure comes back as a reason code and detail for the dead-letter topic.
 */
export function decodeMessageReceived(
  raw: Uint8Array | string,
  limits: InboundLimits,
  generateCorrelationId: () => string,
): DecodeResult {
  const byteLength = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.byteLength;
  if (byteLength > limits.maxEventBytes) {
    return reject(
      DeadLetterReason.LimitExceeded,
      `event is ${byteLength} bytes, above the limit of ${limits.maxEventBytes} bytes`,
    );
  }

  const json = parseJson(raw);
  if (!json.ok) {
    return reject(DeadLetterReason.InvalidJson, json.error);
  }
  try {
    return validateEvent(json.value, limits, generateCorrelationId);
  } catch (error) {
    // A hostile shape that breaks validation itself (say, a stack overflow) is still a bad event.
    return reject(DeadLetterReason.SchemaInvalid, `event could not be validated: ${(error as Error).message}`);
  }
}

/** Validates an already parsed event object (the tRPC edge and tests start here). */
export function validateEvent(
  value: unknown,
  limits: InboundLimits,
  generateCorrelationId: () => string,
): DecodeResult {
  const known = readKnownFields(value);

  if (known.eventName !== undefined && known.eventName !== EventName.MessageReceived) {
    return reject(
      DeadLetterReason.UnsupportedEvent,
      `event_name "${truncate(known.eventName)}" is not ${EventName.MessageReceived}`,
      known,
    );
  }

  const major = readMajorVersion(known.version);
  if (major !== undefined && major !== SUPPORTED_MAJOR_VERSION) {
    return reject(
      DeadLetterReason.UnsupportedVersion,
      `version "${truncate(String(known.version))}" is not supported: this service reads ${SUPPORTED_MAJOR_VERSION}.x`,
      known,
    );
  }

  const parsed = messageReceivedSchema.safeParse(value);
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error);
    const detail = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
    return { ...reject(DeadLetterReason.SchemaInvalid, detail, known), issues };
  }

  const data = parsed.data.data;
  if (data.text.length > limits.maxTextLength) {
    return reject(
      DeadLetterReason.LimitExceeded,
      `data.text has ${data.text.length} characters, above the limit of ${limits.maxTextLength}`,
      known,
    );
  }
  const metaProblem = data.meta === undefined ? undefined : checkMeta(data.meta, limits.maxMetaBytes);
  if (metaProblem !== undefined) {
    return reject(DeadLetterReason.LimitExceeded, `data.meta ${metaProblem}`, known);
  }

  const correlationIdGenerated = parsed.data.correlation_id === undefined;
  const event: MessageReceivedEvent = {
    ...parsed.data,
    correlation_id: parsed.data.correlation_id ?? generateCorrelationId(),
  };
  return { ok: true, event, correlationIdGenerated };
}

interface KnownFields {
  eventName?: string;
  version?: unknown;
  tenantId?: string;
  correlationId?: string;
  conversationId?: string;
  messageId?: string;
}

function reject(reason: DeadLetterReason, detail: string, known: KnownFields = {}): Rejection {
  const rejection: Rejection = { ok: false, reason, detail, issues: [] };
  if (known.tenantId !== undefined) rejection.tenantId = known.tenantId;
  if (known.correlationId !== undefined) rejection.correlationId = known.correlationId;
  if (known.conversationId !== undefined) rejection.conversationId = known.conversationId;
  if (known.messageId !== undefined) rejection.messageId = known.messageId;
  return rejection;
}

function parseJson(raw: Uint8Array | string): { ok: true; value: unknown } | { ok: false; error: string } {
  let text: string;
  try {
    // TextDecoder drops a leading byte order mark; do the same for text, so both inputs agree.
    text = typeof raw === 'string' ? raw.replace(/^\uFEFF/, '') : new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return { ok: false, error: 'value is not valid UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, error: `value is not valid JSON: ${(error as Error).message}` };
  }
}

/** Reads the identifying fields that are strings, whatever the rest of the event looks like. */
function readKnownFields(value: unknown): KnownFields {
  if (!isRecord(value)) {
    return {};
  }
  const data = isRecord(value['data']) ? value['data'] : {};
  const fields: KnownFields = { version: value['version'] };
  assignString(fields, 'eventName', value['event_name']);
  assignString(fields, 'tenantId', value['tenant_id']);
  assignString(fields, 'correlationId', value['correlation_id']);
  assignString(fields, 'conversationId', data['conversation_id']);
  assignString(fields, 'messageId', data['message_id']);
  return fields;
}

function assignString(target: KnownFields, field: Exclude<keyof KnownFields, 'version'>, value: unknown): void {
  if (typeof value === 'string' && value.length > 0 && value.length <= 256) {
    target[field] = value;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Converts zod issues to dotted paths, e.g. `data.message_id`. */
export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)',
    message: issue.message,
  }));
}

function truncate(value: string, maxLength = 64): string {
  return value.length > maxLength ? `${value.slice(0, maxLength)}…` : value;
}
