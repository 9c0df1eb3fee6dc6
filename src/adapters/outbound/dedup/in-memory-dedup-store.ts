import { ErrorCode, ServiceError } from '../../../domain/errors.js';
import type { MessageGeneratedEvent } from '../../../domain/events.js';
import type {
  ClaimResult,
  DedupKey,
  DedupStore,
  SaveReplyResult,
} from '../../../domain/ports/dedup-store.js';
import type { Clock } from '../../../domain/ports/clock.js';

type Entry =
  | { state: 'processing'; token: string; expiresAt: number }
  | { state: 'replied'; reply: MessageGeneratedEvent; expiresAt: number }
  | { state: 'done'; reply: MessageGeneratedEvent; expiresAt: number };

/**
 * Per-process DedupStore for tests and single-instance runs without Redis. Its records are lost
 * on restart and not shared between processes.
 */
export class InMemoryDedupStore implements DedupStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly clock: Clock,
    private readonly retentionMs: number,
  ) {}

  async claim(key: DedupKey, leaseMs: number, token: string): Promise<ClaimResult> {
    const id = entryId(key);
    const entry = this.live(id);

    if (entry === undefined || (entry.state === 'processing' && entry.token === token)) {
      this.entries.set(id, { state: 'processing', token, expiresAt: this.now() + leaseMs });
      return { state: 'acquired', token };
    }
    switch (entry.state) {
      case 'processing':
        return { state: 'in_progress' };
      case 'replied':
        return { state: 'replied', reply: entry.reply };
      case 'done':
        return { state: 'done', reply: entry.reply };
    }
  }

  async saveReply(key: DedupKey, token: string, reply: MessageGeneratedEvent): Promise<SaveReplyResult> {
    const id = entryId(key);
    const entry = this.live(id);

    if (entry?.state === 'processing' && entry.token === token) {
      this.entries.set(id, { state: 'replied', reply, expiresAt: this.now() + this.retentionMs });
      return { stored: true };
    }
    if (entry !== undefined && entry.state !== 'processing') {
      return { stored: false, reply: entry.reply };
    }
    throw new ServiceError(
      ErrorCode.ClaimLost,
      `the claim on message ${key.messageId} expired before its reply was stored`,
      { retryable: true },
    );
  }

  async markDone(key: DedupKey, reply: MessageGeneratedEvent): Promise<void> {
    this.entries.set(entryId(key), { state: 'done', reply, expiresAt: this.now() + this.retentionMs });
  }

  async release(key: DedupKey, token: string): Promise<void> {
    const id = entryId(key);
    const entry = this.live(id);
    if (entry?.state === 'processing' && entry.token === token) {
      this.entries.delete(id);
    }
  }

  private live(id: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (entry !== undefined && entry.expiresAt <= this.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return entry;
  }

  private now(): number {
    return this.clock.now().getTime();
  }
}

function entryId(key: DedupKey): string {
  return JSON.stringify([key.tenantId, key.messageId]);
}
