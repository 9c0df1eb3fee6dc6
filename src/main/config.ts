import { z } from 'zod';

import type { KafkaEventBusSettings } from '../adapters/outbound/event-bus/kafka-event-bus.js';
import type { OpenAiLlmSettings } from '../adapters/outbound/llm/openai-llm-client.js';

/** Reads `true`/`false` (also 1/0, yes/no) from an environment variable. */
const booleanFlag = (defaultValue: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], {
      error: 'must be true or false (1/0 and yes/no are accepted too)',
    })
    .default(defaultValue ? 'true' : 'false')
    .transform((value) => value === 'true' || value === '1' || value === 'yes');

const positiveInt = (defaultValue: number) =>
  z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive('must be greater than 0').default(defaultValue);

const nonNegativeInt = (defaultValue: number) =>
  z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0, 'must be 0 or more').default(defaultValue);

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

const topicName = (defaultValue: string) =>
  z
    .string()
    .regex(/^[a-zA-Z0-9._-]{1,249}$/, 'must be a Kafka topic name: letters, digits, ".", "_" or "-"')
    .default(defaultValue);

/**
 * Every environment variable the service reads, with its default. `.env.example` documents
 * each one; keep the two in step.
 */
export const environmentSchema = z.object({
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  EVENT_SOURCE: z.string().min(1).max(128).default('ia-conversational'),

  HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  HTTP_PORT: nonNegativeInt(3000).pipe(z.number().max(65535, 'must be at most 65535')),

  ENABLE_KAFKA: booleanFlag(true),
  IN_MEMORY_EVENT_BUS: booleanFlag(false),
  KAFKA_BROKER: z
    .string()
    .default('localhost:9092')
    .transform((value) => value.split(',').map((broker) => broker.trim()).filter((broker) => broker !== ''))
    .pipe(
      z
        .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port'))
        .min(1, 'must list at least one host:port'),
    ),
  KAFKA_CLIENT_ID: z.string().min(1).default('ia-conversational'),
  KAFKA_CONSUMER_GROUP: z.string().min(1).default('ia-conversational'),
  KAFKA_MESSAGE_RECEIVED_TOPIC: topicName('conversation.message_received'),
  KAFKA_MESSAGE_GENERATED_TOPIC: topicName('conversation.message_generated'),
  KAFKA_DEAD_LETTER_TOPIC: topicName('conversation.message_received.dlq'),
  KAFKA_CREATE_TOPICS: booleanFlag(true),
  KAFKA_TOPIC_PARTITIONS: positiveInt(3),
  KAFKA_TOPIC_REPLICATION_FACTOR: positiveInt(1),
  KAFKA_MAX_IN_FLIGHT_PER_PARTITION: positiveInt(100),
  KAFKA_CONNECTION_TIMEOUT_MS: positiveInt(3000),
  KAFKA_STARTUP_TIMEOUT_MS: positiveInt(15000),
  KAFKA_SESSION_TIMEOUT_MS: positiveInt(30000),
  KAFKA_SSL: booleanFlag(false),
  KAFKA_SSL_REJECT_UNAUTHORIZED: booleanFlag(true),
  KAFKA_SASL_MECHANISM: z
    .enum(['plain', 'scram-sha-256', 'scram-sha-512'], {
      error: 'must be plain, scram-sha-256 or scram-sha-512',
    })
    .optional(),
  KAFKA_SASL_USERNAME: optionalText,
  KAFKA_SASL_PASSWORD: optionalText,

  REDIS_URL: optionalText.pipe(
    z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  ),
  REDIS_KEY_PREFIX: z.string().default('ia:'),

  DEDUP_TTL_SECONDS: positiveInt(3600),
  DEDUP_LEASE_MS: positiveInt(90_000),

  MEMORY_MAX_TURNS: positiveInt(50),
  MEMORY_TTL_SECONDS: positiveInt(7 * 24 * 3600),
  CONTEXT_TURNS: nonNegativeInt(10),
  HISTORY_CONVERSATIONS: nonNegativeInt(3),
  HISTORY_TURNS_PER_CONVERSATION: nonNegativeInt(4),

  MAX_EVENT_BYTES: positiveInt(65_536),
  MAX_TEXT_LENGTH: positiveInt(4096),
  MAX_META_BYTES: positiveInt(4096),

  ASSISTANTS_FILE: z.string().min(1).default('config/assistants.yaml'),

  LLM_PROVIDER: z.enum(['offline', 'openai'], { error: 'must be offline or openai' }).optional(),
  LLM_BASE_URL: optionalText.pipe(z.url({ error: 'must be an http(s) URL' }).optional()),
  LLM_API_KEY: optionalText,
  LLM_MODEL: z.string().min(1).default('gpt-4o-mini'),
  LLM_AZURE_API_VERSION: optionalText,
  LLM_TIMEOUT_MS: positiveInt(20_000),
  LLM_MAX_RETRIES: nonNegativeInt(2),
  LLM_MAX_TOKENS: positiveInt(512),

  SHUTDOWN_TIMEOUT_MS: positiveInt(30_000),
});

export type Environment = z.output<typeof environmentSchema>;

/** The Kafka adapter defines its settings; the composition root fills them from the environment. */
export type KafkaSettings = KafkaEventBusSettings;

/** The OpenAI-compatible adapter's settings, plus which adapter serves the LlmClient port. */
export interface LlmSettings extends OpenAiLlmSettings {
  provider: 'offline' | 'openai';
}

/** The validated configuration, grouped by concern, with units in the names. */
export interface AppConfig {
  logLevel: Environment['LOG_LEVEL'];
  eventSource: string;
  http: { host: string; port: number };
  eventBus: 'kafka' | 'in-memory' | 'noop';
  kafka: KafkaSettings;
  redis: { url: string; keyPrefix: string } | undefined;
  dedup: { ttlSeconds: number; leaseMs: number };
  memory: {
    maxTurnsPerConversation: number;
    retentionSeconds: number;
    contextTurns: number;
    historyConversations: number;
    historyTurnsPerConversation: number;
  };
  limits: { maxEventBytes: number; maxTextLength: number; maxMetaBytes: number };
  assistantsFile: string;
  llm: LlmSettings;
  shutdownTimeoutMs: number;
}

/** Raised when the environment is invalid; the message lists every invalid variable. */
export class ConfigurationError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigurationError';
  }
}

/** Validates the environment once and returns the configuration, or throws ConfigurationError. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      // The first path element is the variable; KAFKA_BROKER adds the index of the bad entry.
      const variable = issue.path.length > 0 ? String(issue.path[0]) : '(environment)';
      const value = env[variable];
      const shown = value === undefined ? '' : ` (got ${JSON.stringify(isSecret(variable) ? '[redacted]' : value)})`;
      return `${variable}: ${issue.message}${shown}`;
    });
    throw new ConfigurationError(problems);
  }

  const e = parsed.data;
  const problems = crossFieldProblems(e);
  if (problems.length > 0) {
    throw new ConfigurationError(problems);
  }
  return toAppConfig(e);
}

function crossFieldProblems(e: Environment): string[] {
  const problems: string[] = [];
  if (e.ENABLE_KAFKA && e.IN_MEMORY_EVENT_BUS) {
    problems.push('IN_MEMORY_EVENT_BUS: set ENABLE_KAFKA=false to use the in-memory event bus');
  }
  if (e.KAFKA_SASL_MECHANISM !== undefined && (e.KAFKA_SASL_USERNAME === undefined || e.KAFKA_SASL_PASSWORD === undefined)) {
    problems.push('KAFKA_SASL_MECHANISM: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set as well');
  }
  if (resolveLlmProvider(e) === 'openai' && e.LLM_API_KEY === undefined && e.LLM_BASE_URL === undefined) {
    problems.push('LLM_PROVIDER: openai needs LLM_API_KEY, or LLM_BASE_URL for a local server that takes no key');
  }
  const worstLlmMs = e.LLM_TIMEOUT_MS * (e.LLM_MAX_RETRIES + 1);
  if (e.DEDUP_LEASE_MS <= worstLlmMs) {
    problems.push(
      `DEDUP_LEASE_MS: must be above LLM_TIMEOUT_MS × (LLM_MAX_RETRIES + 1) = ${worstLlmMs} ms, so that a claim never expires during a model call`,
    );
  }
  return problems;
}

/** Resolves the LLM adapter: LLM_PROVIDER when set, else openai when a base URL or API key is set, else offline. */
function resolveLlmProvider(e: Environment): 'offline' | 'openai' {
  if (e.LLM_PROVIDER !== undefined) {
    return e.LLM_PROVIDER;
  }
  return e.LLM_BASE_URL !== undefined || e.LLM_API_KEY !== undefined ? 'openai' : 'offline';
}

function toAppConfig(e: Environment): AppConfig {
  let eventBus: AppConfig['eventBus'] = 'noop';
  if (e.ENABLE_KAFKA) {
    eventBus = 'kafka';
  } else if (e.IN_MEMORY_EVENT_BUS) {
    eventBus = 'in-memory';
  }
  return {
    logLevel: e.LOG_LEVEL,
    eventSource: e.EVENT_SOURCE,
    http: { host: e.HTTP_HOST, port: e.HTTP_PORT },
    eventBus,
    kafka: {
      brokers: e.KAFKA_BROKER,
      clientId: e.KAFKA_CLIENT_ID,
      consumerGroup: e.KAFKA_CONSUMER_GROUP,
      topics: {
        received: e.KAFKA_MESSAGE_RECEIVED_TOPIC,
        generated: e.KAFKA_MESSAGE_GENERATED_TOPIC,
        deadLetter: e.KAFKA_DEAD_LETTER_TOPIC,
      },
      createTopics: e.KAFKA_CREATE_TOPICS,
      topicPartitions: e.KAFKA_TOPIC_PARTITIONS,
      topicReplicationFactor: e.KAFKA_TOPIC_REPLICATION_FACTOR,
      maxInFlightPerPartition: e.KAFKA_MAX_IN_FLIGHT_PER_PARTITION,
      connectionTimeoutMs: e.KAFKA_CONNECTION_TIMEOUT_MS,
      startupTimeoutMs: e.KAFKA_STARTUP_TIMEOUT_MS,
      sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_MS,
      ssl: { enabled: e.KAFKA_SSL, rejectUnauthorized: e.KAFKA_SSL_REJECT_UNAUTHORIZED },
      sasl:
        e.KAFKA_SASL_MECHANISM === undefined
          ? undefined
          : {
              mechanism: e.KAFKA_SASL_MECHANISM,
              username: e.KAFKA_SASL_USERNAME ?? '',
              password: e.KAFKA_SASL_PASSWORD ?? '',
            },
    },
    redis: e.REDIS_URL === undefined ? undefined : { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX },
    dedup: { ttlSeconds: e.DEDUP_TTL_SECONDS, leaseMs: e.DEDUP_LEASE_MS },
    memory: {
      maxTurnsPerConversation: e.MEMORY_MAX_TURNS,
      retentionSeconds: e.MEMORY_TTL_SECONDS,
      contextTurns: e.CONTEXT_TURNS,
      historyConversations: e.HISTORY_CONVERSATIONS,
      historyTurnsPerConversation: e.HISTORY_TURNS_PER_CONVERSATION,
    },
    limits: {
      maxEventBytes: e.MAX_EVENT_BYTES,
      maxTextLength: e.MAX_TEXT_LENGTH,
      maxMetaBytes: e.MAX_META_BYTES,
    },
    assistantsFile: e.ASSISTANTS_FILE,
    llm: {
      provider: resolveLlmProvider(e),
      baseUrl: e.LLM_BASE_URL,
      apiKey: e.LLM_API_KEY,
      model: e.LLM_MODEL,
      azureApiVersion: e.LLM_AZURE_API_VERSION,
      timeoutMs: e.LLM_TIMEOUT_MS,
      maxRetries: e.LLM_MAX_RETRIES,
      maxTokens: e.LLM_MAX_TOKENS,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  };
}

function isSecret(variable: string): boolean {
  return /PASSWORD|API_KEY|SECRET|TOKEN/.test(variable) || variable === 'REDIS_URL';
}
