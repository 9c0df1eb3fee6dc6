import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { MessageOutcomeLabel, Metrics } from '../../../domain/ports/metrics.js';

/** Metrics on prom-client, exposed in the Prometheus text format by the HTTP server. */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();

  private readonly messages: Counter<'outcome' | 'reason'>;
  private readonly messageDuration: Histogram<'outcome'>;
  private readonly llmCalls: Counter<'status'>;
  private readonly llmDuration: Histogram<'status'>;
  private readonly llmTokens: Counter;
  private readonly retries: Counter<'operation'>;

  constructor(options: { collectProcessMetrics: boolean } = { collectProcessMetrics: true }) {
    if (options.collectProcessMetrics) {
      collectDefaultMetrics({ register: this.registry });
    }
    this.messages = new Counter({
      name: 'ia_messages_total',
      help: 'Inbound messages by final outcome and reason',
      labelNames: ['outcome', 'reason'],
      registers: [this.registry],
    });
    this.messageDuration = new Histogram({
      name: 'ia_message_duration_seconds',
      help: 'Time from receipt to final outcome of an inbound message',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.llmCalls = new Counter({
      name: 'ia_llm_calls_total',
      help: 'Language model calls by status, after the adapter retries',
      labelNames: ['status'],
      registers: [this.registry],
    });
    this.llmDuration = new Histogram({
      name: 'ia_llm_call_duration_seconds',
      help: 'Duration of language model calls, retries included',
      labelNames: ['status'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.llmTokens = new Counter({
      name: 'ia_llm_tokens_total',
      help: 'Tokens reported by the language model (prompt plus completion)',
      registers: [this.registry],
    });
    this.retries = new Counter({
      name: 'ia_retries_total',
      help: 'Retried operations by name',
      labelNames: ['operation'],
      registers: [this.registry],
    });
  }

  recordMessage(outcome: MessageOutcomeLabel, reason: string, durationMs: number): void {
    this.messages.inc({ outcome, reason });
    this.messageDuration.observe({ outcome }, durationMs / 1000);
  }

  recordLlmCall(status: 'ok' | 'error', durationMs: number, tokensUsed: number): void {
    this.llmCalls.inc({ status });
    this.llmDuration.observe({ status }, durationMs / 1000);
    this.llmTokens.inc(tokensUsed);
  }

  recordRetry(operation: string): void {
    this.retries.inc({ operation });
  }
}
