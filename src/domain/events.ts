import { z } from 'zod';

import {
  EventName,
  envelopeSchema,
  identifierSchema,
  type EventEnvelope,
} from './event-envelope.js';

/** Channel the end user wrote on, e.g. `whatsapp` or `web`: a lowercase token. */
export const channelSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a lowercase token such as "whatsapp" or "web"');

/** Free-form metadata object; its depth and serialised size are checked by checkMeta. */
export const metaSchema = z.record(z.string(), z.unknown());

/** Deepest nesting of objects and arrays accepted in `meta`; gateways send flat routing data. */
export const MAX_META_DEPTH = 16;

/**
 * Returns what is wrong with a `meta` object (too deeply nested, or larger than `maxBytes` as
 * UTF-8 JSON), or undefined when it is fine. The depth is checked first, so a hostile meta
 * nested thousands of levels deep never reaches JSON.stringify's recursion.
 */
export function checkMeta(meta: Record<string, unknown>, maxBytes: number): string | undefined {
  if (nestingDepth(meta, MAX_META_DEPTH + 1) > MAX_META_DEPTH) {
    return `is nested more than ${MAX_META_DEPTH} levels deep`;
  }
  const bytes = Buffer.byteLength(JSON.stringify(meta), 'utf8');
  if (bytes > maxBytes) {
    return `is ${bytes} bytes as JSON, above the limit of ${maxBytes}`;
  }
  return undefined;
}

/** Counts nested objects and arrays, and stops counting once it passes `stopAt`. */
function nestingDepth(value: unknown, stopAt: number, depth = 0): number {
  if (typeof value !== 'object' || value === null || depth >= stopAt) {
    return depth;
  }
  let deepest = depth + 1;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, nestingDepth(child, stopAt, depth + 1));
    if (deepest >= stopAt) {
      break;
    }
  }
  return deepest;
}

export const messageReceivedDataSchema = z.object({
  conversation_id: identifierSchema,
  message_id: identifierSchema,
  text: z.string().refine((text) => text.trim().length > 0, 'must contain non-blank text'),
  assistant_id: identifierSchema,
  channel: channelSchema,
  user_id: identifierSchema,
  meta: metaSchema.optional(),
});

export const messageReceivedSchema = envelopeSchema(
  EventName.MessageReceived,
  messageReceivedDataSchema,
);

export type MessageReceivedData = z.output<typeof messageReceivedDataSchema>;
export type MessageReceivedEvent = EventEnvelope<
  typeof EventName.MessageReceived,
  MessageReceivedData
>;

/** Source of the reply text. */
export const ReplySource = {
  /** A language model generated the text. */
  Llm: 'llm',
  /** The assistant's configured fallback or error reply, because the model failed. */
  Fallback: 'fallback',
} as const;

export type ReplySource = (typeof ReplySource)[keyof typeof ReplySource];

export const messageGeneratedDataSchema = z.object({
  conversation_id: identifierSchema,
  message_id: identifierSchema,
  text: z.string().min(1),
  assistant_id: identifierSchema,
  processing_time_ms: z.number().int().nonnegative(),
  tokens_used: z.number().int().nonnegative(),
  model_name: z.string().min(1),
  has_historical_context: z.boolean(),
  meta: z.object({
    reply_source: z.enum([ReplySource.Llm, ReplySource.Fallback]),
    fallback_reason: z.string().optional(),
    locale: z.string().min(1),
    request_meta: metaSchema.optional(),
  }),
  in_reply_to: identifierSchema,
  user_id: identifierSchema,
  channel: channelSchema,
});

export const messageGeneratedSchema = envelopeSchema(
  EventName.MessageGenerated,
  messageGeneratedDataSchema,
).extend({ correlation_id: identifierSchema });

export type MessageGeneratedData = z.output<typeof messageGeneratedDataSchema>;
export type MessageGeneratedEvent = EventEnvelope<
  typeof EventName.MessageGenerated,
  MessageGeneratedData
>;
