import { readFileSync } from 'node:fs';
import { extname } from 'node:path';

import { parse as parseYaml } from 'yaml';

import { assistantsFileSchema, type AssistantsFile } from '../../../domain/assistant.js';
import { ErrorCode, ServiceError } from '../../../domain/errors.js';
import { toFieldIssues } from '../../../domain/decode-message-received.js';

/**
 * Reads and validates the assistants file (`.json`, `.yaml` or `.yml`). Throws an
 * INVALID_CONFIGURATION error that names the file and every invalid field.
 */
export function loadAssistantsFile(path: string): AssistantsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ServiceError(
      ErrorCode.InvalidConfiguration,
      `cannot read the assistants file ${path}: ${(error as Error).message}; set ASSISTANTS_FILE to an existing file`,
      { cause: error },
    );
  }
  return parseAssistantsDocument(text, path);
}

/** Parses and validates the text of an assistants document; `path` picks YAML or JSON. */
export function parseAssistantsDocument(text: string, path: string): AssistantsFile {
  let document: unknown;
  try {
    document = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ServiceError(
      ErrorCode.InvalidConfiguration,
      `the assistants file ${path} is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  const parsed = assistantsFileSchema.safeParse(document);
  if (!parsed.success) {
    const issues = toFieldIssues(parsed.error).map((issue) => `${issue.path}: ${issue.message}`);
    throw new ServiceError(
      ErrorCode.InvalidConfiguration,
      `the assistants file ${path} is invalid: ${issues.join('; ')}`,
    );
  }

  const duplicates = findDuplicateIds(parsed.data);
  if (duplicates.length > 0) {
    throw new ServiceError(
      ErrorCode.InvalidConfiguration,
      `the assistants file ${path} defines these more than once: ${duplicates.join(', ')}`,
    );
  }
  return parsed.data;
}

function findDuplicateIds(file: AssistantsFile): string[] {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const tenant of file.tenants) {
    if (seen.has(`tenant ${tenant.tenant_id}`)) {
      duplicates.push(`tenant ${tenant.tenant_id}`);
    }
    seen.add(`tenant ${tenant.tenant_id}`);
    for (const assistant of tenant.assistants) {
      const id = `assistant ${tenant.tenant_id}/${assistant.id}`;
      if (seen.has(id)) {
        duplicates.push(id);
      }
      seen.add(id);
    }
  }
  return duplicates;
}
