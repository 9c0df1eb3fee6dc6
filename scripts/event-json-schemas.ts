import { z } from 'zod';

import { EventName } from '../src/domain/event-envelope.js';
import { messageGeneratedSchema, messageReceivedSchema } from '../src/domain/events.js';

/** A JSON Schema document: plain JSON, so that it can be compared and written as is. */
export type JsonSchemaDocument = Record<string, unknown>;

export interface EventSchemaFile {
  /** Path relative to the repository root. */
  path: string;
  schema: JsonSchemaDocument;
}

/**
 * JSON Schema replacements for zod refinements (`.refine`, `.check`), keyed by the JSON Pointer
 * of the property. `z.toJSONSchema` silently drops refinements, which would let the exported
 * schema accept values the service rejects.
 */
type RefinementReplacements = Record<string, JsonSchemaDocument>;

/**
 * Characters that `String.prototype.trim` removes (ECMAScript WhiteSpace and LineTerminator:
 * tab, LF, VT, FF, CR, U+FEFF, U+2028, U+2029 and the Zs category, unchanged since Unicode 6.3).
 * Spelled out instead of `\s` because regex engines outside JavaScript disagree on what `\s`
 * matches.
 */
const TRIMMED_CHARACTERS =
  '\\t\\n\\u000b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff';

/** Pattern of a string that contains at least one character `trim()` keeps. */
export const NON_BLANK_PATTERN = `[^${TRIMMED_CHARACTERS}]`;

/** Limits the service applies from its configuration, so no schema can state them. */
const RUNTIME_LIMITS_NOTE =
  'The service also rejects events larger than MAX_EVENT_BYTES, a data.text longer than ' +
  'MAX_TEXT_LENGTH and a data.meta larger than MAX_META_BYTES serialised. Those limits come ' +
  'from its configuration.';

const RECEIVED_FILE = `schemas/${EventName.MessageReceived}.schema.json`;
const GENERATED_FILE = `schemas/${EventName.MessageGenerated}.schema.json`;

/** Builds every event JSON Schema file from the zod schemas in src/domain/events.ts. */
export function buildEventSchemaFiles(): EventSchemaFile[] {
  return [
    {
      path: RECEIVED_FILE,
      schema: exportSchema(messageReceivedSchema, {
        id: schemaId(EventName.MessageReceived),
        title: `${EventName.MessageReceived} event`,
        description:
          'A message an end user wrote, as a channel gateway publishes it on the ' +
          `${EventName.MessageReceived} topic, keyed by data.conversation_id. ` +
          'correlation_id is optional: the service generates one when it is missing. ' +
          RUNTIME_LIMITS_NOTE,
        refinements: {
          '/properties/data/properties/text': { pattern: NON_BLANK_PATTERN },
        },
      }),
    },
    {
      path: GENERATED_FILE,
      schema: exportSchema(messageGeneratedSchema, {
        id: schemaId(EventName.MessageGenerated),
        title: `${EventName.MessageGenerated} event`,
        description:
          'The reply the service publishes on the ' +
          `${EventName.MessageGenerated} topic for one ${EventName.MessageReceived} event, ` +
          'keyed by data.conversation_id.',
        refinements: {},
      }),
    },
  ];
}

/** Serialises a schema the way the committed files are written. */
export function renderSchema(schema: JsonSchemaDocument): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

function schemaId(eventName: string): string {
  return `urn:ia-conversational:schema:${eventName}:1`;
}

interface ExportOptions {
  id: string;
  title: string;
  description: string;
  refinements: RefinementReplacements;
}

/**
 * Converts a zod schema to draft 2020-12 JSON Schema, input side: the timestamp's transform
 * normalises the value after validation, and a producer sends the input. Throws when a
 * refinement has no replacement, or when a replacement is never used.
 */
function exportSchema(schema: z.ZodType, options: ExportOptions): JsonSchemaDocument {
  const used = new Set<string>();

  const generated = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'throw',
    override: ({ zodSchema, jsonSchema, path }) => {
      if (!hasRefinement(zodSchema)) {
        return;
      }
      const pointer = toJsonPointer(path);
      const replacement = options.refinements[pointer];
      if (replacement === undefined) {
        throw new Error(
          `${options.title}: the zod schema at ${pointer} has a refinement that JSON Schema export drops. ` +
            'Add its JSON Schema equivalent to the refinements in scripts/event-json-schemas.ts.',
        );
      }
      Object.assign(jsonSchema, replacement);
      used.add(pointer);
    },
  });

  const unused = Object.keys(options.refinements).filter((pointer) => !used.has(pointer));
  if (unused.length > 0) {
    throw new Error(`${options.title}: no refinement found at ${unused.join(', ')}. Remove the stale replacement.`);
  }

  const { $schema, ...body } = generated as JsonSchemaDocument;
  return {
    $schema,
    $id: options.id,
    title: options.title,
    description: options.description,
    ...body,
  };
}

/** True when the schema carries a custom check, which is what `.refine` and `.check` add. */
function hasRefinement(schema: z.core.$ZodType): boolean {
  const checks = schema._zod.def.checks ?? [];
  return checks.some((check) => check._zod.def.check === 'custom');
}

function toJsonPointer(path: ReadonlyArray<string | number>): string {
  return path.map((segment) => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}
