import { randomUUID } from 'node:crypto';

import { afterEach, describe, expect, it } from 'vitest';

import { ErrorCode, ServiceError } from '../../src/domain/errors.js';
import { EventName, PUBLISHED_EVENT_VERSION } from '../../src/domain/event-envelope.js';
import type { MessageGeneratedEvent } from '../../src/domain/events.js';
import type { DedupKey, DedupStore } from '../../src/domain/ports/dedup-store.js';

/** A store under test, with control over the passing of time. */
export interface DedupStoreSubject {
  store: DedupStore;
  /**
   * Resolves once the record of `key`, written with a TTL of `ttlMs`, has expired: moves a fake
   * clock forward by `ttlMs`, or waits for the real TTL (and fails when the record outlives it
   * by far).
   */
  expire(key: DedupKey, ttlMs: number): Promise<void>;
  /** Deletes what the store wrote and closes its connections. */
  close(): Promise<void>;
}

export interface DedupStoreSubjectOptions {
  retentionMs: number;
}

export type DedupStoreFactory = (options: DedupStoreSubjectOptions) => Promise<DedupStoreSubject>;

/** Long enough that no lease of these tests ends by itself while a test runs. */
const LONG_LEASE_MS = 60_000;
/** Short enough to wait out on a real Redis, long enough to outlast the calls made meanwhile. */
const SHORT_LEASE_MS = 300;
const LONG_RETENTION_MS = 600_000;
const SHORT_RETENTION_MS = 400;

/**
 * Defines the DedupStore contract tests (src/domain/ports/dedup-store.ts) for one adapter. Each
 * test builds a fresh store through `factory` and closes it afterwards.
 */
export function describeDedupStoreContract(name: string, factory: DedupStoreFactory): void {
  describe(`DedupStore contract: ${name}`, () => {
    const opened: DedupStoreSubject[] = [];

    async function open(retentionMs = LONG_RETENTION_MS): Promise<DedupStoreSubject> {
      const subject = await factory({ retentionMs });
      opened.push(subject);
      return subject;
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((subject) => subject.close()));
    });

    it('claim acquires a new message', async () => {
      const { store } = await open();

      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      expect(claim.state).toBe('acquired');
      expect(tokenOf(claim)).not.toBe('');
    });

    it('claim during a lease is in_progress', async () => {
      const { store } = await open();
      await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      const second = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      expect(second).toEqual({ state: 'in_progress' });
    });

    it('concurrent claims acquire once', async () => {
      const { store } = await open();

      const claims = await Promise.all(
        Array.from({ length: 20 }, () => store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())),
      );

      expect(claims.filter((claim) => claim.state === 'acquired')).toHaveLength(1);
      expect(claims.filter((claim) => claim.state === 'in_progress')).toHaveLength(19);
    });

    it('expired lease lets a new claim acquire', async () => {
      const { store, expire } = await open();
      const first = await store.claim(key('m-1'), SHORT_LEASE_MS, randomUUID());

      await expire(key('m-1'), SHORT_LEASE_MS);
      const second = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      expect(second.state).toBe('acquired');
      expect(tokenOf(second)).not.toBe(tokenOf(first));
    });

    it('claim with its own token is acquired again', async () => {
      const { store } = await open();
      const token = randomUUID();
      await store.claim(key('m-1'), SHORT_LEASE_MS, token);

      const again = await store.claim(key('m-1'), LONG_LEASE_MS, token);
      const other = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      expect(again).toEqual({ state: 'acquired', token });
      expect(other).toEqual({ state: 'in_progress' });
    });

    it('saveReply with the lease token stores', async () => {
      const { store } = await open();
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      const saved = await store.saveReply(key('m-1'), tokenOf(claim), reply('m-1', 'first answer'));

      expect(saved).toEqual({ stored: true });
    });

    it('stale saveReply returns the first reply', async () => {
      const { store, expire } = await open();
      const stale = await store.claim(key('m-1'), SHORT_LEASE_MS, randomUUID());
      await expire(key('m-1'), SHORT_LEASE_MS);
      const takeover = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());
      const firstReply = reply('m-1', 'answer of the takeover');
      await store.saveReply(key('m-1'), tokenOf(takeover), firstReply);

      const saved = await store.saveReply(key('m-1'), tokenOf(stale), reply('m-1', 'late answer'));

      expect(saved).toEqual({ stored: false, reply: firstReply });
      expect(await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).toEqual({ state: 'replied', reply: firstReply });
    });

    it('stale saveReply during a takeover lease is CLAIM_LOST', async () => {
      const { store, expire } = await open();
      const stale = await store.claim(key('m-1'), SHORT_LEASE_MS, randomUUID());
      await expire(key('m-1'), SHORT_LEASE_MS);
      const takeover = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      const error = await rejectionOf(store.saveReply(key('m-1'), tokenOf(stale), reply('m-1', 'late answer')));

      expectClaimLost(error);
      expect(await store.saveReply(key('m-1'), tokenOf(takeover), reply('m-1', 'answer'))).toEqual({ stored: true });
    });

    it('saveReply after the lease expired is CLAIM_LOST', async () => {
      const { store, expire } = await open();
      const claim = await store.claim(key('m-1'), SHORT_LEASE_MS, randomUUID());
      await expire(key('m-1'), SHORT_LEASE_MS);

      const error = await rejectionOf(store.saveReply(key('m-1'), tokenOf(claim), reply('m-1', 'late answer')));

      expectClaimLost(error);
      expect((await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).state).toBe('acquired');
    });

    it('claim after saveReply is replied', async () => {
      const { store } = await open();
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());
      const stored = reply('m-1', 'stored answer');
      await store.saveReply(key('m-1'), tokenOf(claim), stored);

      const again = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      expect(again).toEqual({ state: 'replied', reply: stored });
    });

    it('markDone makes claims done', async () => {
      const { store } = await open();
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());
      const stored = reply('m-1', 'stored answer');
      await store.saveReply(key('m-1'), tokenOf(claim), stored);

      await store.markDone(key('m-1'), stored);

      expect(await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).toEqual({ state: 'done', reply: stored });
      expect(await store.saveReply(key('m-1'), tokenOf(claim), reply('m-1', 'other'))).toEqual({
        stored: false,
        reply: stored,
      });
    });

    it('release lets a re-claim acquire', async () => {
      const { store } = await open();
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      await store.release(key('m-1'), tokenOf(claim));
      const again = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      expect(again.state).toBe('acquired');
    });

    it('release with a wrong token keeps the lease', async () => {
      const { store } = await open();
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());

      await store.release(key('m-1'), `${tokenOf(claim)}-other`);

      expect(await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).toEqual({ state: 'in_progress' });
      expect(await store.saveReply(key('m-1'), tokenOf(claim), reply('m-1', 'answer'))).toEqual({ stored: true });
    });

    it('release after saveReply keeps the reply', async () => {
      const { store } = await open();
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());
      const stored = reply('m-1', 'stored answer');
      await store.saveReply(key('m-1'), tokenOf(claim), stored);

      await store.release(key('m-1'), tokenOf(claim));

      expect(await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).toEqual({ state: 'replied', reply: stored });
    });

    it('tenants are independent', async () => {
      const { store } = await open();
      const first = await store.claim(key('m-1', 'tenant-a'), LONG_LEASE_MS, randomUUID());
      const second = await store.claim(key('m-1', 'tenant-b'), LONG_LEASE_MS, randomUUID());
      expect(first.state).toBe('acquired');
      expect(second.state).toBe('acquired');

      const answer = reply('m-1', 'answer for tenant a', 'tenant-a');
      await store.saveReply(key('m-1', 'tenant-a'), tokenOf(first), answer);
      await store.markDone(key('m-1', 'tenant-a'), answer);

      expect(await store.claim(key('m-1', 'tenant-a'), LONG_LEASE_MS, randomUUID())).toEqual({ state: 'done', reply: answer });
      expect(await store.claim(key('m-1', 'tenant-b'), LONG_LEASE_MS, randomUUID())).toEqual({ state: 'in_progress' });
    });

    it('ids containing separators do not collide', async () => {
      const { store } = await open();
      // Joined with a plain ':' both keys would read "a:b:c".
      const first = await store.claim({ tenantId: 'a:b', messageId: 'c' }, LONG_LEASE_MS, randomUUID());
      const second = await store.claim({ tenantId: 'a', messageId: 'b:c' }, LONG_LEASE_MS, randomUUID());

      expect(first.state).toBe('acquired');
      expect(second.state).toBe('acquired');
    });

    it('retention ends the done record', async () => {
      const { store, expire } = await open(SHORT_RETENTION_MS);
      const claim = await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID());
      const stored = reply('m-1', 'stored answer');
      await store.saveReply(key('m-1'), tokenOf(claim), stored);
      await store.markDone(key('m-1'), stored);
      expect((await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).state).toBe('done');

      await expire(key('m-1'), SHORT_RETENTION_MS);

      expect((await store.claim(key('m-1'), LONG_LEASE_MS, randomUUID())).state).toBe('acquired');
    });
  });
}

function key(messageId: string, tenantId = 'tenant-a'): DedupKey {
  return { tenantId, messageId };
}

function tokenOf(claim: Awaited<ReturnType<DedupStore['claim']>>): string {
  if (claim.state !== 'acquired') {
    throw new Error(`expected an acquired claim, got ${JSON.stringify(claim)}`);
  }
  return claim.token;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

function expectClaimLost(error: unknown): void {
  expect(error).toBeInstanceOf(ServiceError);
  expect((error as ServiceError).code).toBe(ErrorCode.ClaimLost);
  expect((error as ServiceError).retryable).toBe(true);
}

/** Builds a reply that passes messageGeneratedSchema, since a store may validate what it reads back. */
export function reply(inReplyTo: string, text: string, tenantId = 'tenant-a'): MessageGeneratedEvent {
  return {
    event_name: EventName.MessageGenerated,
    version: PUBLISHED_EVENT_VERSION,
    timestamp: '2026-01-15T12:00:01.000Z',
    tenant_id: tenantId,
    correlation_id: `corr-${inReplyTo}`,
    source: 'ia-conversational',
    data: {
      conversation_id: 'conv-1',
      message_id: `reply-${inReplyTo}`,
      text,
      assistant_id: 'assistant-1',
      processing_time_ms: 12,
      tokens_used: 34,
      model_name: 'test-model',
      has_historical_context: false,
      meta: { reply_source: 'llm', locale: 'en', request_meta: { wa_phone_id: '123' } },
      in_reply_to: inReplyTo,
      user_id: 'user-1',
      channel: 'whatsapp',
    },
  };
}
