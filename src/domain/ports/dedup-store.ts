import type { MessageGeneratedEvent } from '../events.js';

/** Identifies an inbound message; message ids are only unique within a tenant. */
export interface DedupKey {
  tenantId: string;
  messageId: string;
}

export type ClaimResult =
  /** No one had claimed the message: this worker owns it until the lease ends. */
  | { state: 'acquired'; token: string }
  /** Another worker holds a live lease; retry after it ends. */
  | { state: 'in_progress' }
  /** A reply was stored but not confirmed as published: publish this same reply again. */
  | { state: 'replied'; reply: MessageGeneratedEvent }
  /** The reply was published and confirmed; the message must not be processed again. */
  | { state: 'done'; reply: MessageGeneratedEvent | undefined };

export type SaveReplyResult =
  | { stored: true }
  /** Another worker stored its reply first: publish that one, never a second text. */
  | { stored: false; reply: MessageGeneratedEvent };

/**
 * Idempotency store: one record per tenant and message id, moving from a short "processing"
 * lease to "replied" (the reply is stored before it is published) to "done".
 *
 * Promises: `claim` is atomic, so of two concurrent claims exactly one is acquired. A lease
 * that is not followed by `saveReply` expires, so a worker that died mid-message never blocks
 * the redelivery for longer than the lease. `saveReply` stores at most one reply per key.
 * Records expire after the retention TTL the adapter was built with.
 *
 * Leaves out: ordering between messages, and storage of the conversation (see MemoryRepo).
 * Errors: a ServiceError with code STORE_UNAVAILABLE (retryable) when the store fails, and
 * CLAIM_LOST from `saveReply` when the lease ended and no reply was stored.
 */
export interface DedupStore {
  /**
   * Claims the message with a lease of `leaseMs`. `token` identifies the claimant, and a claim
   * that finds a live lease with the same token is acquired again with the lease renewed. A
   * claim that timed out may still have reached the store, so a caller that retries with the
   * same token does not wait for its own lease to end.
   */
  claim(key: DedupKey, leaseMs: number, token: string): Promise<ClaimResult>;

  /** Stores the reply if `token` still holds the lease, or returns the reply stored first. */
  saveReply(key: DedupKey, token: string, reply: MessageGeneratedEvent): Promise<SaveReplyResult>;

  /** Marks the message done and keeps its reply until the retention TTL ends. */
  markDone(key: DedupKey, reply: MessageGeneratedEvent): Promise<void>;

  /** Drops a lease this worker holds, so that a redelivery is processed at once. */
  release(key: DedupKey, token: string): Promise<void>;
}
