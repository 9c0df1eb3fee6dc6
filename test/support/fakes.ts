import { randomUUID } from 'node:crypto';

import type { AssistantsFile } from '../../src/domain/assistant.js';
import type { Clock } from '../../src/domain/ports/clock.js';
import type { LogFields, Logger } from '../../src/domain/ports/logger.js';
import type { MessageOutcomeLabel, Metrics } from '../../src/domain/ports/metrics.js';

export interface CapturedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: LogFields;
}

/** Logger that keeps every line in memory, children included, for assertions. */
export class CapturingLogger implements Logger {
  constructor(
    readonly lines: CapturedLine[] = [],
    private readonly bound: LogFields = {},
  ) {}

  debug(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'debug', message, fields: { ...this.bound, ...fields } });
  }

  info(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'info', message, fields: { ...this.bound, ...fields } });
  }

  warn(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'warn', message, fields: { ...this.bound, ...fields } });
  }

  error(message: string, fields: LogFields = {}): void {
    this.lines.push({ level: 'error', message, fields: { ...this.bound, ...fields } });
  }

  child(fields: LogFields): Logger {
    return new CapturingLogger(this.lines, { ...this.bound, ...fields });
  }
}

/** Clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private current = new Date('2026-01-15T12:00:00.000Z')) {}

  now(): Date {
    return new Date(this.current);
  }

  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

/** Metrics that count calls, for assertions. */
export class CountingMetrics implements Metrics {
  readonly messages: Array<{ outcome: MessageOutcomeLabel; reason: string }> = [];
  readonly llmCalls: Array<'ok' | 'error'> = [];
  readonly retries: string[] = [];

  recordMessage(outcome: MessageOutcomeLabel, reason: string): void {
    this.messages.push({ outcome, reason });
  }

  recordLlmCall(status: 'ok' | 'error'): void {
    this.llmCalls.push(status);
  }

  recordRetry(operation: string): void {
    this.retries.push(operation);
  }
}

/** Two tenants with one assistant each, in pt-BR and en. */
export const TEST_ASSISTANTS: AssistantsFile = {
  tenants: [
    {
      tenant_id: 'tenant-a',
      assistants: [
        {
          id: 'support',
          name: 'Suporte A',
          system_prompt: 'Você é o suporte da empresa A.',
          temperature: 0.2,
          locale: 'pt-BR',
          greeting: 'Olá! Aqui é o suporte A.',
          faq: [
            {
              question: 'Qual o horário de atendimento?',
              answer: 'Atendemos de segunda a sexta, das 8h às 18h.',
              keywords: ['horário', 'hours'],
            },
          ],
        },
      ],
    },
    {
      tenant_id: 'tenant-b',
      assistants: [
        {
          id: 'support',
          name: 'Support B',
          system_prompt: 'You are the support assistant of company B.',
          temperature: 0.2,
          locale: 'en',
          faq: [],
        },
      ],
    },
  ],
};

export interface ReceivedEventOptions {
  tenantId?: string;
  conversationId?: string;
  messageId?: string;
  text?: string;
  assistantId?: string;
  userId?: string;
  correlationId?: string | null;
  timestamp?: string;
  meta?: Record<string, unknown>;
}

/** Builds a raw `conversation.message_received` event object as a gateway would send it. */
export function receivedEvent(options: ReceivedEventOptions = {}): Record<string, unknown> {
  const event: Record<string, unknown> = {
    event_name: 'conversation.message_received',
    version: '1.0',
    timestamp: options.timestamp ?? '2026-01-15T11:59:00.000Z',
    tenant_id: options.tenantId ?? 'tenant-a',
    source: 'whatsapp-service',
    data: {
      conversation_id: options.conversationId ?? 'conv-1',
      message_id: options.messageId ?? randomUUID(),
      text: options.text ?? 'Qual o horário de atendimento?',
      assistant_id: options.assistantId ?? 'support',
      channel: 'whatsapp',
      user_id: options.userId ?? 'user-1',
      ...(options.meta === undefined ? {} : { meta: options.meta }),
    },
  };
  if (options.correlationId !== null) {
    event['correlation_id'] = options.correlationId ?? randomUUID();
  }
  return event;
}
