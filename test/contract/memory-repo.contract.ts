import { afterEach, describe, expect, it } from 'vitest';

import { TurnRole, type ConversationKey, type Turn } from '../../src/domain/conversation.js';
import type { MemoryRepo } from '../../src/domain/ports/memory-repo.js';

/** A repo under test, with control over the passing of time. */
export interface MemoryRepoSubject {
  repo: MemoryRepo;
  /**
   * Resolves once the conversation `key`, last written with a TTL of `ttlMs`, has expired: moves
   * a fake clock forward by `ttlMs`, or waits for the real TTL (and fails when the conversation
   * outlives it by far).
   */
  expire(key: ConversationKey, ttlMs: number): Promise<void>;
  /** Deletes what the repo wrote and closes its connections. */
  close(): Promise<void>;
}

export interface MemoryRepoSubjectOptions {
  maxTurnsPerConversation: number;
  retentionMs: number;
}

export type MemoryRepoFactory = (options: MemoryRepoSubjectOptions) => Promise<MemoryRepoSubject>;

const LONG_RETENTION_MS = 600_000;
/** Short enough to wait out on a real Redis, long enough to outlast the calls made meanwhile. */
const SHORT_RETENTION_MS = 400;

/**
 * Defines the MemoryRepo contract tests (src/domain/ports/memory-repo.ts) for one adapter. Each
 * test builds a fresh repo through `factory` and closes it afterwards.
 */
export function describeMemoryRepoContract(name: string, factory: MemoryRepoFactory): void {
  describe(`MemoryRepo contract: ${name}`, () => {
    const opened: MemoryRepoSubject[] = [];

    async function open(
      maxTurnsPerConversation = 20,
      retentionMs = LONG_RETENTION_MS,
    ): Promise<MemoryRepoSubject> {
      const subject = await factory({ maxTurnsPerConversation, retentionMs });
      opened.push(subject);
      return subject;
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((subject) => subject.close()));
    });

    it('recentTurns returns appended turns in order', async () => {
      const { repo } = await open();
      const turns = exchange(1, 2);

      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(0, 2));
      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(2));

      expect(await repo.recentTurns(conversation('c-1'), 10)).toEqual(turns);
    });

    it('appendTurns is idempotent per message id', async () => {
      const { repo } = await open();
      const turns = exchange(1, 2);

      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(0, 2));
      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(0, 2));
      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(1));
      await repo.appendTurns(conversation('c-1'), 'user-1', [turns[0]!, turns[0]!]);

      expect(await repo.recentTurns(conversation('c-1'), 10)).toEqual(turns);
    });

    it('concurrent appends of one message store it once', async () => {
      const { repo } = await open();
      const turns = exchange(1, 1);

      await Promise.all(
        Array.from({ length: 10 }, () => repo.appendTurns(conversation('c-1'), 'user-1', turns)),
      );

      expect(await repo.recentTurns(conversation('c-1'), 10)).toEqual(turns);
    });

    it('concurrent appends of many messages keep every turn', async () => {
      const { repo } = await open();
      const batches = Array.from({ length: 8 }, (_, index) => exchange(index + 1, 1));

      await Promise.all(batches.map((batch) => repo.appendTurns(conversation('c-1'), 'user-1', batch)));

      const stored = await repo.recentTurns(conversation('c-1'), 20);
      expect(stored).toHaveLength(16);
      expect(sortById(stored)).toEqual(sortById(batches.flat()));
      for (const batch of batches) {
        // Each call is atomic, so the two turns of one exchange stay next to each other.
        const userIndex = stored.findIndex((turn) => turn.messageId === batch[0]!.messageId);
        expect(stored[userIndex + 1]).toEqual(batch[1]);
      }
    });

    it('cap keeps the newest turns', async () => {
      const { repo } = await open(4);
      const turns = exchange(1, 4);

      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(0, 2));
      await repo.appendTurns(conversation('c-1'), 'user-1', turns.slice(2, 8));

      expect(await repo.recentTurns(conversation('c-1'), 10)).toEqual(turns.slice(4));
    });

    it('recentTurns returns the newest limit turns', async () => {
      const { repo } = await open();
      const turns = exchange(1, 3);
      await repo.appendTurns(conversation('c-1'), 'user-1', turns);

      expect(await repo.recentTurns(conversation('c-1'), 2)).toEqual(turns.slice(4));
      expect(await repo.recentTurns(conversation('c-1'), 0)).toEqual([]);
      expect(await repo.recentTurns(conversation('c-2'), 5)).toEqual([]);
    });

    it('userHistory excludes the current conversation', async () => {
      const { repo } = await open();
      await repo.appendTurns(conversation('c-1'), 'user-1', exchange(1, 1, 'c-1'));
      await repo.appendTurns(conversation('c-2'), 'user-1', exchange(1, 1, 'c-2'));

      const history = await repo.userHistory(historyQuery('c-2'));

      expect(history).toEqual({ conversations: [{ conversationId: 'c-1', turns: exchange(1, 1, 'c-1') }] });
    });

    it('userHistory lists newest conversations first', async () => {
      const { repo } = await open();
      // Ids in descending order, so that sorting by id instead of by activity fails the test.
      for (const id of ['c-3', 'c-2', 'c-1']) {
        await repo.appendTurns(conversation(id), 'user-1', exchange(1, 1, id));
      }
      expect(conversationIds(await repo.userHistory(historyQuery('c-4')))).toEqual(['c-1', 'c-2', 'c-3']);

      await repo.appendTurns(conversation('c-3'), 'user-1', exchange(2, 1, 'c-3'));

      expect(conversationIds(await repo.userHistory(historyQuery('c-4')))).toEqual(['c-3', 'c-1', 'c-2']);
    });

    it('userHistory respects both limits', async () => {
      const { repo } = await open();
      for (const id of ['c-1', 'c-2', 'c-3', 'c-4']) {
        await repo.appendTurns(conversation(id), 'user-1', exchange(1, 2, id));
      }

      const history = await repo.userHistory({
        ...historyQuery('c-4'),
        maxConversations: 2,
        maxTurnsPerConversation: 3,
      });

      expect(history).toEqual({
        conversations: [
          { conversationId: 'c-3', turns: exchange(1, 2, 'c-3').slice(1) },
          { conversationId: 'c-2', turns: exchange(1, 2, 'c-2').slice(1) },
        ],
      });
      expect(await repo.userHistory({ ...historyQuery('c-4'), maxConversations: 0 })).toEqual({ conversations: [] });
    });

    it('userHistory shows only the given user', async () => {
      const { repo } = await open();
      await repo.appendTurns(conversation('c-1'), 'user-1', exchange(1, 1, 'c-1'));
      await repo.appendTurns(conversation('c-2'), 'user-2', exchange(1, 1, 'c-2'));

      expect(conversationIds(await repo.userHistory(historyQuery('c-9', 'user-1')))).toEqual(['c-1']);
      expect(conversationIds(await repo.userHistory(historyQuery('c-9', 'user-2')))).toEqual(['c-2']);
      expect(conversationIds(await repo.userHistory(historyQuery('c-9', 'user-3')))).toEqual([]);
    });

    it('tenants see nothing of each other', async () => {
      const { repo } = await open();
      const turnsA = exchange(1, 1, 'tenant-a');
      await repo.appendTurns(conversation('c-1', 'tenant-a'), 'user-1', turnsA);

      expect(await repo.recentTurns(conversation('c-1', 'tenant-b'), 10)).toEqual([]);
      expect(await repo.userHistory(historyQuery('c-9', 'user-1', 'tenant-b'))).toEqual({ conversations: [] });

      const turnsB = exchange(1, 1, 'tenant-b');
      await repo.appendTurns(conversation('c-1', 'tenant-b'), 'user-1', [...turnsA, ...turnsB]);

      expect(await repo.recentTurns(conversation('c-1', 'tenant-a'), 10)).toEqual(turnsA);
      expect(await repo.recentTurns(conversation('c-1', 'tenant-b'), 10)).toEqual([...turnsA, ...turnsB]);
      expect(await repo.userHistory(historyQuery('c-9', 'user-1', 'tenant-a'))).toEqual({
        conversations: [{ conversationId: 'c-1', turns: turnsA }],
      });
    });

    it('ids containing separators do not collide', async () => {
      const { repo } = await open();
      // Joined with plain ':' both conversations would map to "x:conversation:y:conversation:z".
      const first = { tenantId: 'x:conversation:y', conversationId: 'z' };
      const second = { tenantId: 'x', conversationId: 'y:conversation:z' };
      await repo.appendTurns(first, 'user-1', exchange(1, 1, 'first'));
      await repo.appendTurns(second, 'user-1', exchange(1, 1, 'second'));

      expect(await repo.recentTurns(first, 10)).toEqual(exchange(1, 1, 'first'));
      expect(await repo.recentTurns(second, 10)).toEqual(exchange(1, 1, 'second'));
    });

    it('retention ends a conversation', async () => {
      const { repo, expire } = await open(20, SHORT_RETENTION_MS);
      await repo.appendTurns(conversation('c-1'), 'user-1', exchange(1, 1, 'c-1'));
      expect(await repo.recentTurns(conversation('c-1'), 10)).toHaveLength(2);

      await expire(conversation('c-1'), SHORT_RETENTION_MS);

      expect(await repo.recentTurns(conversation('c-1'), 10)).toEqual([]);
      expect(await repo.userHistory(historyQuery('c-9'))).toEqual({ conversations: [] });
    });

    it('userHistory skips expired conversations', async () => {
      const { repo, expire } = await open(20, SHORT_RETENTION_MS);
      await repo.appendTurns(conversation('c-1'), 'user-1', exchange(1, 1, 'c-1'));
      await expire(conversation('c-1'), SHORT_RETENTION_MS);

      await repo.appendTurns(conversation('c-2'), 'user-1', exchange(1, 1, 'c-2'));

      expect(conversationIds(await repo.userHistory(historyQuery('c-9')))).toEqual(['c-2']);
    });

    it('expired message ids can be stored again', async () => {
      const { repo, expire } = await open(20, SHORT_RETENTION_MS);
      const turns = exchange(1, 1, 'c-1');
      await repo.appendTurns(conversation('c-1'), 'user-1', turns);
      await expire(conversation('c-1'), SHORT_RETENTION_MS);

      await repo.appendTurns(conversation('c-1'), 'user-1', turns);

      expect(await repo.recentTurns(conversation('c-1'), 10)).toEqual(turns);
    });
  });
}

function conversation(conversationId: string, tenantId = 'tenant-a'): ConversationKey {
  return { tenantId, conversationId };
}

function historyQuery(excludeConversationId: string, userId = 'user-1', tenantId = 'tenant-a') {
  return { tenantId, userId, excludeConversationId, maxConversations: 10, maxTurnsPerConversation: 10 };
}

/**
 * User and assistant turns of exchanges `first` to `first + count - 1`, oldest first. `label`
 * goes into ids and texts, so that turns of different conversations differ.
 */
function exchange(first: number, count: number, label = 'c'): Turn[] {
  return Array.from({ length: count }, (_, offset) => first + offset).flatMap((n) => [
    {
      messageId: `${label}-m-${n}`,
      role: TurnRole.User,
      text: `question ${n} in ${label}`,
      timestamp: `2026-01-15T12:00:${String(n % 60).padStart(2, '0')}.000Z`,
    },
    {
      messageId: `${label}-reply-${n}`,
      role: TurnRole.Assistant,
      text: `answer ${n} in ${label}`,
      timestamp: `2026-01-15T12:00:${String(n % 60).padStart(2, '0')}.500Z`,
    },
  ]);
}

function conversationIds(history: Awaited<ReturnType<MemoryRepo['userHistory']>>): string[] {
  return history.conversations.map((entry) => entry.conversationId);
}

function sortById(turns: Turn[]): Turn[] {
  return [...turns].sort((left, right) => left.messageId.localeCompare(right.messageId));
}
