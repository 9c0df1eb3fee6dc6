import type { Assistant, FaqEntry } from '../../../domain/assistant.js';
import type { Completion, CompletionRequest, LlmClient } from '../../../domain/ports/llm-client.js';

export const OFFLINE_MODEL_NAME = 'offline-faq';

/** Share of the entry's words that the user's text must contain for a FAQ answer. */
const MIN_FAQ_SCORE = 0.34;

const GREETINGS = new Set([
  'oi', 'ola', 'oie', 'bom dia', 'boa tarde', 'boa noite', 'e ai', 'opa', 'salve',
  'hi', 'hello', 'hey', 'good morning', 'good afternoon', 'good evening',
]);

const STOPWORDS = new Set([
  'a', 'o', 'as', 'os', 'um', 'uma', 'de', 'do', 'da', 'dos', 'das', 'e', 'em', 'no', 'na', 'nos',
  'nas', 'para', 'pra', 'por', 'com', 'que', 'qual', 'quais', 'como', 'eu', 'voce', 'voces', 'meu',
  'minha', 'se', 'me', 'ao', 'the', 'an', 'of', 'to', 'in', 'on', 'for', 'is', 'are', 'i', 'you',
  'my', 'do', 'does', 'can', 'how', 'what', 'and', 'or', 'it', 'be', 'with', 'please', 'por favor',
]);

/**
 * Answers from the assistant's own configuration, with no network and no credentials: the
 * greeting for a greeting, the FAQ entry whose words best match the user's text, else the
 * fallback reply. It is not a language model: it neither reads the history nor writes new text.
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
  if (assistant.greeting !== undefined && isGreeting(normalized)) {
    return assistant.greeting;
  }
  const best = bestFaqEntry(assistant.faq, words(normalized));
  return best?.answer ?? assistant.fallbackReply;
}

function isGreeting(normalized: string): boolean {
  const stripped = normalized.replace(/[^a-z0-9 ]/g, ' ').replace(/\s+/g, ' ').trim();
  if (GREETINGS.has(stripped)) {
    return true;
  }
  // "oi, tudo bem?" or "olá, bom dia": a short message that starts with a greeting.
  const tokens = stripped.split(' ');
  return tokens.length <= 4 && [...GREETINGS].some((greeting) => stripped.startsWith(`${greeting} `));
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
