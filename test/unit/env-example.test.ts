import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { z } from 'zod';
import { beforeAll, describe, expect, it } from 'vitest';

import { environmentSchema } from '../../src/main/config.js';

const ENV_EXAMPLE_FILE = resolve(dirname(fileURLToPath(import.meta.url)), '../../.env.example');

/** A commented-out assignment such as `# LOG_LEVEL=info`. */
const COMMENTED_ASSIGNMENT = /^# ([A-Z][A-Z0-9_]*)=(.*)$/;

interface ExampleVariable {
  name: string;
  value: string;
  /** The comment line right above the assignment. */
  comment: string;
}

function parseEnvExample(text: string): ExampleVariable[] {
  const lines = text.split('\n');
  const variables: ExampleVariable[] = [];
  for (const [index, line] of lines.entries()) {
    const match = COMMENTED_ASSIGNMENT.exec(line);
    if (match === null) {
      continue;
    }
    variables.push({ name: match[1]!, value: match[2]!, comment: lines[index - 1] ?? '' });
  }
  return variables;
}

function fieldSchema(name: string): z.ZodType {
  const field = (environmentSchema.shape as Record<string, z.ZodType>)[name];
  if (field === undefined) {
    throw new Error(`${name} is not a key of environmentSchema`);
  }
  return field;
}

describe('.env.example', () => {
  let text: string;
  let variables: ExampleVariable[];

  beforeAll(async () => {
    text = await readFile(ENV_EXAMPLE_FILE, 'utf8');
    variables = parseEnvExample(text);
  });

  it('lists every environmentSchema key', () => {
    const documented = variables.map((variable) => variable.name);

    expect(documented.slice().sort()).toEqual(Object.keys(environmentSchema.shape).sort());
  });

  it('lists each variable once', () => {
    const documented = variables.map((variable) => variable.name);

    expect(documented.filter((name, index) => documented.indexOf(name) !== index)).toEqual([]);
  });

  it('sets nothing uncommented', () => {
    const assignments = text.split('\n').filter((line) => /^\s*[A-Za-z_][A-Za-z0-9_]*\s*=/.test(line));

    expect(assignments).toEqual([]);
  });

  it('comments each variable with its default', () => {
    const undocumented = variables
      .filter((variable) => !/^# .+ Default: .+$/.test(variable.comment))
      .map((variable) => variable.name);

    expect(undocumented).toEqual([]);
  });

  it('example values equal the defaults', () => {
    for (const variable of variables) {
      const field = fieldSchema(variable.name);
      const defaultValue: unknown = field.parse(undefined);

      if (variable.value === '') {
        // An empty example documents a variable without a default.
        expect(defaultValue, variable.name).toBeUndefined();
        expect(variable.comment, variable.name).toMatch(/Default: unset/);
        continue;
      }
      expect(field.parse(variable.value), variable.name).toEqual(defaultValue);
    }
  });
});
