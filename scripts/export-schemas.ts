/**
 * Writes the event JSON Schemas under schemas/ from the zod schemas in src/domain/events.ts.
 *
 * Usage: npx tsx scripts/export-schemas.ts [--check]
 * With --check nothing is written: the script exits with status 1 when a committed file differs
 * from what the zod schemas produce, so CI catches a schema change that was not exported.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildEventSchemaFiles, renderSchema } from './event-json-schemas.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw error;
  }
}

async function main(args: string[]): Promise<number> {
  const unknown = args.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`export-schemas: unknown argument ${unknown.join(' ')}. Usage: export-schemas.ts [--check]\n`);
    return 2;
  }
  const check = args.includes('--check');

  const stale: string[] = [];
  for (const file of buildEventSchemaFiles()) {
    const target = resolve(ROOT, file.path);
    const expected = renderSchema(file.schema);
    const committed = await readIfPresent(target);

    if (committed === expected) {
      continue;
    }
    if (check) {
      stale.push(file.path);
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, expected, 'utf8');
    process.stdout.write(`wrote ${file.path}\n`);
  }

  if (stale.length > 0) {
    process.stderr.write(
      `export-schemas: ${stale.join(', ')} ${stale.length === 1 ? 'is' : 'are'} missing or out of date. ` +
        'Run `npm run schemas` and commit the result.\n',
    );
    return 1;
  }
  if (check) {
    process.stdout.write('export-schemas: schema files are up to date\n');
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
