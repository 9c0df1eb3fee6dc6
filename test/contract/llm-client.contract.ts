import { afterEach, describe, expect, it } from 'vitest';

import { assistantConfigSchema, toAssistant, type Assistant } from '../../src/domain/assistant.js';
import type { PromptMessage } from '../../src/domain/conversation.js';
import type { Completion, LlmClient } from '../../src/domain/ports/llm-client.js';

/** A client under test and what it needs torn down. */
export interface LlmClientSubject {
  client: LlmClient;
  /** Stops whatever the subject started, such as a fake server. */
  close(): Promise<void>;
}

export type LlmClientFactory = () => Promise<LlmClientSubject>;

const assistants: Record<'pt' | 'en', Assistant> = {
  pt: toAssistant(
    'tenant-contract',
    assistantConfigSchema.parse({
      id: 'support',
      name: 'Suporte Contrato',
      system_prompt: 'Você é o suporte. Responda em português.',
      locale: 'pt-BR',
      greeting: 'Olá! Como posso ajudar?',
      faq: [{ question: 'Qual o horário de atendimento?', answer: 'Das 8h às 18h.', keywords: ['horário'] }],
    }),
  ),
  en: toAssistant(
    'tenant-contract',
    assistantConfigSchema.parse({
      id: 'support-en',
      name: 'Contract Support',
      system_prompt: 'You are the support assistant.',
      locale: 'en',
      temperature: 0.9,
    }),
  ),
};

const cases: Array<{ name: string; assistant: Assistant; messages: PromptMessage[] }> = [
  { name: 'greeting', assistant: assistants.pt, messages: [{ role: 'user', content: 'Oi' }] },
  { name: 'FAQ question', assistant: assistants.pt, messages: [{ role: 'user', content: 'Qual o horário de atendimento?' }] },
  { name: 'unmatched English text', assistant: assistants.en, messages: [{ role: 'user', content: 'Can you tell me a joke?' }] },
  {
    name: 'prompt with history',
    assistant: assistants.pt,
    messages: [
      { role: 'system', content: 'Conversas anteriores do usuário: nenhuma.' },
      { role: 'user', content: 'Oi' },
      { role: 'assistant', content: 'Olá! Como posso ajudar?' },
      { role: 'user', content: 'Quero saber o horário' },
    ],
  },
];

function expectValidCompletion(completion: Completion): void {
  expect(typeof completion.text).toBe('string');
  expect(completion.text.trim()).not.toBe('');
  expect(Number.isInteger(completion.tokensUsed)).toBe(true);
  expect(completion.tokensUsed).toBeGreaterThanOrEqual(0);
  expect(typeof completion.modelName).toBe('string');
  expect(completion.modelName).not.toBe('');
}

/**
 * Registers the LlmClient contract suite (src/domain/ports/llm-client.ts) for one adapter:
 * `complete` resolves with non-empty text, a non-negative integer token count and a non-empty
 * model name.
 */
export function describeLlmClientContract(name: string, factory: LlmClientFactory): void {
  describe(`LlmClient contract: ${name}`, () => {
    const opened: LlmClientSubject[] = [];

    async function open(): Promise<LlmClient> {
      const subject = await factory();
      opened.push(subject);
      return subject.client;
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((subject) => subject.close()));
    });

    it.each(cases)('complete: $name', async ({ assistant, messages }) => {
      const client = await open();

      const completion = await client.complete({
        assistant,
        messages: [{ role: 'system', content: assistant.systemPrompt }, ...messages],
        correlationId: 'corr-contract',
      });

      expectValidCompletion(completion);
    });

    it('concurrent calls resolve independently', async () => {
      const client = await open();

      const completions = await Promise.all(
        cases.map(({ assistant, messages }, index) =>
          client.complete({
            assistant,
            messages: [{ role: 'system', content: assistant.systemPrompt }, ...messages],
            correlationId: `corr-contract-${index}`,
          }),
        ),
      );

      expect(completions).toHaveLength(cases.length);
      completions.forEach(expectValidCompletion);
    });
  });
}
