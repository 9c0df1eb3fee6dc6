import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadAssistantsFile, parseAssistantsDocument } from '../../src/adapters/outbound/assistants/assistants-file.js';
import { InMemoryAssistantRepo } from '../../src/adapters/outbound/assistants/in-memory-assistant-repo.js';
import { DEFAULT_REPLIES } from '../../src/domain/assistant.js';
import { ErrorCode } from '../../src/domain/errors.js';

const YAML_DOCUMENT = `
tenants:
  - tenant_id: tenant-a
    assistants:
      - id: support
        name: Suporte
        system_prompt: Você é o suporte.
`;

const JSON_DOCUMENT = JSON.stringify({
  tenants: [{ tenant_id: 'tenant-a', assistants: [{ id: 'support', name: 'Suporte', system_prompt: 'Você é o suporte.' }] }],
});

describe('assistants file', () => {
  it('reads YAML and JSON alike', () => {
    const fromYaml = parseAssistantsDocument(YAML_DOCUMENT, 'assistants.yaml');
    const fromJson = parseAssistantsDocument(JSON_DOCUMENT, 'assistants.json');

    expect(fromYaml).toEqual(fromJson);
  });

  it('applies pt-BR defaults', async () => {
    const repo = new InMemoryAssistantRepo(parseAssistantsDocument(YAML_DOCUMENT, 'assistants.yaml'));

    const lookup = await repo.find('tenant-a', 'support');

    expect(lookup.status).toBe('found');
    if (lookup.status !== 'found') return;
    expect(lookup.assistant.locale).toBe('pt-BR');
    expect(lookup.assistant.errorReply).toBe(DEFAULT_REPLIES['pt-BR'].errorReply);
    expect(lookup.assistant.fallbackReply).toBe(DEFAULT_REPLIES['pt-BR'].fallbackReply);
  });

  it('lists every invalid field', () => {
    const document = `
tenants:
  - tenant_id: ""
    assistants:
      - id: support
        temperature: 7
`;

    const parse = () => parseAssistantsDocument(document, 'broken.yaml');

    expect(parse).toThrow(/broken\.yaml is invalid/);
    expect(parse).toThrow(/tenants\.0\.tenant_id/);
    expect(parse).toThrow(/tenants\.0\.assistants\.0\.name/);
    expect(parse).toThrow(/tenants\.0\.assistants\.0\.temperature/);
  });

  it('rejects duplicate assistant ids', () => {
    const document = `${YAML_DOCUMENT}        \n      - id: support\n        name: Outro\n        system_prompt: Outro.\n`;

    expect(() => parseAssistantsDocument(document, 'dup.yaml')).toThrow(/tenant-a\/support/);
  });

  it('reports YAML syntax errors with the file', () => {
    expect(() => parseAssistantsDocument('tenants: [unclosed', 'bad.yaml')).toThrow(/bad\.yaml is not valid YAML/);
  });

  it('names the setting for a missing file', () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'assistants-')), 'nope.yaml');

    expect(() => loadAssistantsFile(missing)).toThrow(/ASSISTANTS_FILE/);
    try {
      loadAssistantsFile(missing);
    } catch (error) {
      expect(error).toMatchObject({ code: ErrorCode.InvalidConfiguration });
    }
  });

  it('loads a file from disk', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'assistants-')), 'assistants.json');
    writeFileSync(path, JSON_DOCUMENT);

    expect(loadAssistantsFile(path).tenants[0]?.tenant_id).toBe('tenant-a');
  });

  it('keeps tenants apart', async () => {
    const repo = new InMemoryAssistantRepo(parseAssistantsDocument(YAML_DOCUMENT, 'assistants.yaml'));

    expect(await repo.find('tenant-b', 'support')).toEqual({ status: 'unknown_tenant' });
    expect(await repo.find('tenant-a', 'sales')).toEqual({ status: 'unknown_assistant' });
    expect(await repo.list('tenant-b')).toEqual([]);
  });

  it('configures the tenants of the sample streams', async () => {
    const repo = new InMemoryAssistantRepo(loadAssistantsFile('config/assistants.yaml'));
    const pairs = [
      ['tenant-acme', 'support-assistant'],
      ['tenant-globex', 'support-assistant'],
      ['tenant-initech', 'sales-assistant'],
      ['tenant-initech', 'support-assistant'],
    ] as const;

    for (const [tenant, assistant] of pairs) {
      expect((await repo.find(tenant, assistant)).status, `${tenant}/${assistant}`).toBe('found');
    }
  });
});
