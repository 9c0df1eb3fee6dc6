import { z } from 'zod';

import { identifierSchema } from './event-envelope.js';

/** Locales with built-in default replies. Other locales fall back to English defaults. */
export const DEFAULT_REPLIES = {
  'pt-BR': {
    fallbackReply:
      'Desculpe, não consegui entender. Pode reformular a sua pergunta ou dar mais detalhes?',
    errorReply:
      'Desculpe, estou com uma instabilidade no momento. Tente de novo em alguns minutos.',
  },
  en: {
    fallbackReply: "Sorry, I didn't understand that. Could you rephrase or add some detail?",
    errorReply: "Sorry, I'm having trouble right now. Please try again in a few minutes.",
  },
} as const;

export const DEFAULT_LOCALE = 'pt-BR';

export const faqEntrySchema = z.object({
  question: z.string().min(1),
  answer: z.string().min(1),
  /** Extra words that should match this entry besides those of the question. */
  keywords: z.array(z.string().min(1)).default([]),
});

export type FaqEntry = z.output<typeof faqEntrySchema>;

/** One assistant as written in the assistants file (snake_case, like the events). */
export const assistantConfigSchema = z.object({
  id: identifierSchema,
  name: z.string().min(1),
  system_prompt: z.string().min(1),
  model: z.string().min(1).optional(),
  temperature: z.number().min(0).max(2).default(0.3),
  locale: z.string().min(2).default(DEFAULT_LOCALE),
  greeting: z.string().min(1).optional(),
  fallback_reply: z.string().min(1).optional(),
  error_reply: z.string().min(1).optional(),
  faq: z.array(faqEntrySchema).default([]),
});

export const tenantAssistantsSchema = z.object({
  tenant_id: identifierSchema,
  assistants: z.array(assistantConfigSchema).min(1),
});

/** The whole assistants file: every tenant and its assistants. */
export const assistantsFileSchema = z.object({
  tenants: z.array(tenantAssistantsSchema).min(1),
});

export type AssistantsFile = z.output<typeof assistantsFileSchema>;
export type AssistantConfig = z.output<typeof assistantConfigSchema>;

/** A tenant's assistant with every default applied. */
export interface Assistant {
  tenantId: string;
  id: string;
  name: string;
  systemPrompt: string;
  /** Model name; undefined means the LLM adapter's configured default model. */
  model: string | undefined;
  temperature: number;
  locale: string;
  greeting: string | undefined;
  /** Sent when no answer is found (the offline adapter) or the model returns nothing usable. */
  fallbackReply: string;
  /** Sent when the model call fails after its retries, so the user still gets a reply. */
  errorReply: string;
  faq: FaqEntry[];
}

/** Applies locale defaults to one configured assistant. */
export function toAssistant(tenantId: string, config: AssistantConfig): Assistant {
  const defaults = defaultRepliesFor(config.locale);
  return {
    tenantId,
    id: config.id,
    name: config.name,
    systemPrompt: config.system_prompt,
    model: config.model,
    temperature: config.temperature,
    locale: config.locale,
    greeting: config.greeting,
    fallbackReply: config.fallback_reply ?? defaults.fallbackReply,
    errorReply: config.error_reply ?? defaults.errorReply,
    faq: config.faq,
  };
}

/** Returns the default replies for a locale: pt-BR for any `pt` locale, else English. */
export function defaultRepliesFor(locale: string): (typeof DEFAULT_REPLIES)[keyof typeof DEFAULT_REPLIES] {
  return locale.toLowerCase().startsWith('pt') ? DEFAULT_REPLIES['pt-BR'] : DEFAULT_REPLIES.en;
}
