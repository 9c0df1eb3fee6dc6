import type { Assistant, FaqEntry } from '../../../domain/assistant.js';
import type { Completion, CompletionRequest, LlmClient } from '../../../domain/ports/llm-client.js';

export const OFFLINE_MODEL_NAME = 'offline-faq';

/**
 * Minimum score for a FAQ answer. An entry's score is the share of its words (question and
 * keywords) found in the user's text, plus 0.5 when one of its keywords is among them.
 */
const MIN_FAQ_SCORE = 0.34;

/** A message that starts with a greeting and has at most this many words may get the greeting. */
const MAX_GREETING_WORDS = 4;

/** Greetings as normalized words, longest first so "bom dia" is tried before a shorter prefix. */
const GREETINGS = [
  'oi', 'ola', 'oie', 'bom dia', 'boa tarde', 'boa noite', 'e ai', 'opa', 'salve',
  'hi', 'hello', 'hey', 'good morning', 'good afternoon', 'good evening',
]
  .map((greeting) => greeting.split(' '))
  .sort((left, right) => right.length - left.length);

/** Words that may follow a greeting without asking anything ("oi, tudo bem?", "hi there"). */
const SMALL_TALK = new Set([
  'tudo', 'bem', 'bom', 'boa', 'beleza', 'blz', 'como', 'vai', 'voce', 'vc', 'ai', 'dia', 'tarde',
  'noite', 'pessoal', 'gente', 'there', 'how', 'are', 'you', 'all', 'everyone', 'morning',
  'afternoon', 'evening', 'oi', 'ola', 'hi', 'hello',
]);

/** Greeting of an assistant that has none configured; `{name}` is the assistant's name. */
const DEFAULT_GREETINGS = {
  pt: 'Olá! Você está falando com {name}. Como posso ajudar?',
  en: "Hi! You're talking to {name}. How can I help?",
} as const;

const STOPWORDS = new Set([
  'a', 'o', 'as', 'os', 'um', 'uma', 'de', 'do', 'da', 'dos', 'das', 'e', 'em', 'no', 'na', 'nos',
  'nas', 'para', 'pra', 'por', 'com', 'que', 'qual', 'quais', 'como', 'eu', 'voce', 'voces', 'meu',
  'minha', 'se', 'me', 'ao', 'favor', 'the', 'an', 'of', 'to', 'in', 'on', 'for', 'is', 'are', 'i',
  'you', 'my', 'does', 'can', 'how', 'what', 'and', 'or', 'it', 'be', 'with', 'please',
]);

/**
 * Answers from the assistant's own configuration, with no network and no credentials: the
 * greeting for a greeting, the FAQ entry whose words best match the user's text, else the
 * fallback reply. A short message that starts with a greeting ("oi, pix?") gets the FAQ answer
 * when one matches, else the greeting. An assistant without a greeting gets a default one in its
 * locale. It is not a language model: it reads neither the history nor the system prompt.
 */
export class OfflineLlmClient implements LlmClient {
  async complete(request: CompletionRequest): Promise<Completion> {
    const userText = lastUserMessage(request);
    return { text: answer(request.assistant, userText), tokensUsed: 0, modelName: OFFLINE_MODEL_NAME };
  }
}

function lastUserMessage(request: CompletionRequest): string {
  for (let index = request.messages.length - 1; index >= 0; index -= 1) {
    const message = request.messages[index]!;
    if (message.role === 'user') {
      return message.content;
    }
  }
  return '';
}

function answer(assistant: Assistant, userText: string): string {
  const normalized = normalize(userText);
  const greeting = greetingKind(normalized);
  if (greeting === 'only') {
    return greetingOf(assistant);
  }

  const best = bestFaqEntry(assistant.faq, words(normalized));
  if (best !== undefined) {
    return best.answer;
  }
  return greeting === 'leading' ? greetingOf(assistant) : assistant.fallbackReply;
}

/**
 * Classifies a normalized text: `only` for a greeting with at most small talk after it,
 * `leading` for a short message that starts with a greeting, else undefined.
 */
function greetingKind(normalized: string): 'only' | 'leading' | undefined {
  const tokens = normalized.split(/[^a-z0-9]+/).filter((token) => token !== '');
  const greeting = GREETINGS.find((phrase) => phrase.every((word, index) => tokens[index] === word));
  if (greeting === undefined) {
    return undefined;
  }

  const rest = tokens.slice(greeting.length);
  if (rest.every((token) => SMALL_TALK.has(token))) {
    return 'only';
  }
  return tokens.length <= MAX_GREETING_WORDS ? 'leading' : undefined;
}

function greetingOf(assistant: Assistant): string {
  if (assistant.greeting !== undefined) {
    return assistant.greeting;
  }
  const template = assistant.locale.toLowerCase().startsWith('pt') ? DEFAULT_GREETINGS.pt : DEFAULT_GREETINGS.en;
  return template.replace('{name}', () => assistant.name);
}

/** Scores each entry by the share of its words found in the user's text. */
function bestFaqEntry(faq: FaqEntry[], userWords: Set<string>): FaqEntry | undefined {
  let best: { entry: FaqEntry; score: number } | undefined;
  for (const entry of faq) {
    const entryWords = words(normalize([entry.question, ...entry.keywords].join(' ')));
    if (entryWords.size === 0) {
      continue;
    }
    let hits = 0;
    for (const word of entryWords) {
      if (userWords.has(word)) {
        hits += 1;
      }
    }
    const keywordHit = entry.keywords.some((keyword) => userWords.has(stem(normalize(keyword))));
    const score = hits / entryWords.size + (keywordHit ? 0.5 : 0);
    if (score >= MIN_FAQ_SCORE && (best === undefined || score > best.score)) {
      best = { entry, score };
    }
  }
  return best?.entry;
}

/** Lowercases and strips accents, so "Olá" matches "ola" and "preço" matches "preco". */
function normalize(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

function words(normalized: string): Set<string> {
  const result = new Set<string>();
  for (const word of normalized.split(/[^a-z0-9]+/)) {
    if (word.length > 1 && !STOPWORDS.has(word)) {
      result.add(stem(word));
    }
  }
  return result;
}

/** Drops a plural "s" so "horarios" matches "horario". */
function stem(word: string): string {
  return word.length > 3 && word.endsWith('s') ? word.slice(0, -1) : word;
}
