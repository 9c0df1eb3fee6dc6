import { z } from 'zod';

/** Major version of the envelope this service reads and writes. */
export const SUPPORTED_MAJOR_VERSION = 1;

/** Version written into every event this service publishes. */
export const PUBLISHED_EVENT_VERSION = '1.0';

export const EventName = {
  MessageReceived: 'conversation.message_received',
  MessageGenerated: 'conversation.message_generated',
} as const;

export type EventName = (typeof EventName)[keyof typeof EventName];

/** Identifier fields: non-empty, at most 256 characters, no control characters. */
export const identifierSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

/** Version string `MAJOR`, `MAJOR.MINOR` or `MAJOR.MINOR.PATCH`; only major 1 is accepted. */
export const versionSchema = z
  .string()
  .regex(
    /^1(\.\d+){0,2}$/,
    `must be a string "1", "1.MINOR" or "1.MINOR.PATCH": this service reads major version ${SUPPORTED_MAJOR_VERSION}`,
  );

/** ISO-8601 date-time with `Z` or an offset, normalised to UTC (`toISOString`). */
export const timestampSchema = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value).toISOString());

/**
 * Builds the envelope schema shared by every event: the fields the ecosystem already sends, in
 * snake_case. `correlation_id` is optional on input; the inbound edge generates one when absent.
 */
export function envelopeSchema<Name extends EventName, Data extends z.ZodType>(
  eventName: Name,
  data: Data,
) {
  return z.object({
    event_name: z.literal(eventName),
    version: versionSchema,
    timestamp: timestampSchema,
    tenant_id: identifierSchema,
    correlation_id: identifierSchema.optional(),
    source: z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters'),
    data,
  });
}

/** Envelope of an event after validation, with the correlation id always present. */
export interface EventEnvelope<Name extends EventName, Data> {
  event_name: Name;
  version: string;
  timestamp: string;
  tenant_id: string;
  correlation_id: string;
  source: string;
  data: Data;
}

/**
 * Reads the major version of a `version` field, or returns undefined when the field is not a
 * `MAJOR[.MINOR[.PATCH]]` string. Lets the inbound edge tell an unsupported major from a
 * malformed field.
 */
export function readMajorVersion(version: unknown): number | undefined {
  if (typeof version !== 'string') {
    return undefined;
  }
  const match = /^(\d+)(\.\d+){0,2}$/.exec(version);
  return match ? Number(match[1]) : undefined;
}
