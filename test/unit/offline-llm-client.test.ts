import { describe, expect, it } from 'vitest';

import { OFFLINE_MODEL_NAME, OfflineLlmClient } from '../../src/adapters/outbound/llm/offline-llm-client.js';
import { loadAssistantsFile } from '../../src/adapters/outbound/assistants/assistants-file.js';
import { assistantConfigSchema, toAssistant, type Assistant } from '../../src/domain/assistant.js';
import type { PromptMessage } from '../../src/domain/conversation.js';

const client = new OfflineLlmClient();

const ptAssistant = toAssistant(
  'tenant-test',
  assistantConfigSchema.parse({
    id: 'support',
    name: 'Suporte Teste',
    system_prompt: 'Você é o suporte.',
    locale: 'pt-BR',
    greeting: 'Olá! Aqui é o suporte de teste.',
    fallback_reply: 'Não entendi. Pode explicar de outro jeito?',
    faq: [
      {
        question: 'Qual o horário de atendimento?',
        answer: 'Atendemos de segunda a sexta, das 8h às 18h.',
        keywords: ['horário', 'hours', 'open'],
      },
      {
        question: 'Como faço para trocar a senha?',
        answer: 'Toque em "Esqueci a senha" na tela de entrada.',
        keywords: ['senha', 'password', 'reset'],
      },
    ],
  }),
);

const englishAssistantWithoutGreeting = toAssistant(
  'tenant-test',
  assistantConfigSchema.parse({
    id: 'sales',
    name: 'Test Sales',
    system_prompt: 'You sell things.',
    locale: 'en',
    faq: [{ question: 'What does shipping cost?', answer: 'Shipping is free above 50 euros.', keywords: ['shipping', 'frete'] }],
  }),
);

function ask(assistant: Assistant, text: string, history: PromptMessage[] = []): Promise<{ text: string; tokensUsed: number; modelName: string }> {
  return client.complete({
    assistant,
    messages: [{ role: 'system', content: assistant.systemPrompt }, ...history, { role: 'user', content: text }],
    correlationId: 'corr-offline',
  });
}

function configuredAssistant(tenantId: string, assistantId: string): Assistant {
  const file = loadAssistantsFile('config/assistants.yaml');
  const tenant = file.tenants.find((candidate) => candidate.tenant_id === tenantId);
  const config = tenant?.assistants.find((candidate) => candidate.id === assistantId);
  if (tenant === undefined || config === undefined) {
    throw new Error(`config/assistants.yaml has no assistant ${tenantId}/${assistantId}`);
  }
  return toAssistant(tenantId, config);
}

describe('OfflineLlmClient', () => {
  it.each(['Oi', 'olá, tudo bem?', 'Bom dia!', 'Hello there', 'boa noite'])('greeting for %j', async (text) => {
    const completion = await ask(ptAssistant, text);
    expect(completion.text).toBe(ptAssistant.greeting);
  });

  it.each([
    ['Qual é o horário de atendimento?', 'Atendemos de segunda a sexta, das 8h às 18h.'],
    ['qual o HORARIO de atendimento', 'Atendemos de segunda a sexta, das 8h às 18h.'],
    ['What are your opening hours?', 'Atendemos de segunda a sexta, das 8h às 18h.'],
    ['Esqueci minha senha', 'Toque em "Esqueci a senha" na tela de entrada.'],
    ['How do I reset my password?', 'Toque em "Esqueci a senha" na tela de entrada.'],
  ])('FAQ entry for %j', async (text, expected) => {
    const completion = await ask(ptAssistant, text);
    expect(completion.text).toBe(expected);
  });

  it('FAQ answer wins over a leading greeting', async () => {
    const completion = await ask(ptAssistant, 'oi, senha?');
    expect(completion.text).toBe('Toque em "Esqueci a senha" na tela de entrada.');
  });

  it('greeting for a short greeting-led message', async () => {
    const completion = await ask(ptAssistant, 'oi, preciso de ajuda');
    expect(completion.text).toBe(ptAssistant.greeting);
  });

  it('fallback when nothing matches', async () => {
    const completion = await ask(ptAssistant, 'Quero falar sobre o clima de amanhã em Marte');
    expect(completion.text).toBe('Não entendi. Pode explicar de outro jeito?');
  });

  it('fallback uses the locale default', async () => {
    const completion = await ask(englishAssistantWithoutGreeting, 'Tell me about the weather on Mars');
    expect(completion.text).toBe(englishAssistantWithoutGreeting.fallbackReply);
    expect(completion.text).toMatch(/didn't understand/);
  });

  it('default greeting without a configured one', async () => {
    const completion = await ask(englishAssistantWithoutGreeting, 'Hi!');
    expect(completion.text).toContain('Test Sales');
    expect(completion.text).not.toBe(englishAssistantWithoutGreeting.fallbackReply);
  });

  it('answers the last user message only', async () => {
    const completion = await ask(ptAssistant, 'Não entendo nada disso', [
      { role: 'user', content: 'Qual o horário de atendimento?' },
      { role: 'assistant', content: 'Atendemos de segunda a sexta, das 8h às 18h.' },
    ]);
    expect(completion.text).toBe('Não entendi. Pode explicar de outro jeito?');
  });

  it('model name and token count', async () => {
    const completion = await ask(ptAssistant, 'Oi');
    expect(completion.modelName).toBe(OFFLINE_MODEL_NAME);
    expect(completion.modelName).toBe('offline-faq');
    expect(completion.tokensUsed).toBe(0);
  });

  describe('config/assistants.yaml', () => {
    const acmeSupport = configuredAssistant('tenant-acme', 'support-assistant');
    const acmeTransferAnswer = acmeSupport.faq.find((entry) => entry.keywords.includes('transfer'))?.answer;

    it('acme transfer entry exists', () => {
      expect(acmeTransferAnswer).toBeDefined();
    });

    it.each([
      'Como faço uma transferência?',
      'quero fazer uma transferencia pro meu irmão',
      'Posso mandar um Pix?',
      'How do I transfer money?',
    ])('acme transfer answer for %j', async (text) => {
      const completion = await ask(acmeSupport, text);
      expect(completion.text).toBe(acmeTransferAnswer);
    });

    it('acme balance answer', async () => {
      const balanceAnswer = acmeSupport.faq.find((entry) => entry.keywords.includes('saldo'))?.answer;

      const completion = await ask(acmeSupport, 'Quero ver meu saldo');

      expect(balanceAnswer).toBeDefined();
      expect(completion.text).toBe(balanceAnswer);
    });

    it('acme greeting and fallback', async () => {
      expect((await ask(acmeSupport, 'Olá!')).text).toBe(acmeSupport.greeting);
      expect((await ask(acmeSupport, 'Qual a previsão do tempo?')).text).toBe(acmeSupport.fallbackReply);
    });

    it('globex address in English', async () => {
      const globex = configuredAssistant('tenant-globex', 'support-assistant');
      const completion = await ask(globex, 'Where are you located?');
      expect(completion.text).toContain('Av. Paulista');
    });

    it('initech order status', async () => {
      const initech = configuredAssistant('tenant-initech', 'support-assistant');
      const completion = await ask(initech, 'Onde está meu pedido?');
      expect(completion.text).toContain('Meus pedidos');
      expect(completion.text).toContain('rastreio');
    });
  });
});
