/** Final outcome of one inbound message, as counted by metrics. */
export type MessageOutcomeLabel = 'processed' | 'duplicate' | 'rejected' | 'dead_lettered' | 'failed';

/** Counters and histograms of the service; the adapter decides names and exposition. */
export interface Metrics {
  recordMessage(outcome: MessageOutcomeLabel, reason: string, durationMs: number): void;
  recordLlmCall(status: 'ok' | 'error', durationMs: number, tokensUsed: number): void;
  recordRetry(operation: string): void;
}
