import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  PROJECTOR_CHECKPOINT,
  Projector,
  SqliteReadModelStore,
  ThreadedProjector,
} from '@changeledger/read-models';
import { builtFile, isBuilt } from '../support/built';

const WORKER = builtFile('libs/read-models/src/projector.worker.js');
const whenBuilt = isBuilt(WORKER, 'projector thread batch window test') ? it : it.skip;

/** Polls until `check` holds or `ms` pass; returns whether it held. */
const eventually = async (check: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
};

describe('the live projector’s batch window', () => {
  let dir: string;
  let events: SqliteEventStore;
  let store: SqliteReadModelStore;
  let templates = 0;
  /** Appends one event (a template created, which a projection writes); resolves to its position. */
  const appendOne = async () => {
    templates += 1;
    const id = `STD-${String(templates).padStart(3, '0')}`;
    const at = new Date(Date.UTC(2026, 10, 1, 8, templates)).toISOString();
    const { position } = await events.append(
      `standardTemplate-${id}`,
      [
        {
          eventId: randomUUID(),
          type: 'StandardTemplateCreated',
          data: {
            templateId: id,
            name: `Template ${templates}`,
            description: 'd',
            procedure: ['p'],
            systemsScope: ['pve*'],
            by: { id: 'lead', name: 'User lead' },
            at,
          },
          metadata: {
            actor: { id: 'lead', name: 'User lead', roles: ['infrastructure-lead'] },
            occurredAt: at,
            correlationId: randomUUID(),
            causationId: null,
            schemaVersion: 1,
          },
        },
      ],
      'no-stream',
    );
    return position;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-batch-window-'));
    events = new SqliteEventStore(join(dir, 'events.sqlite'));
    store = SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
  });

  afterEach(async () => {
    await store.close();
    await events.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const started = async (batchWindowMs: number) => {
    const projector = new Projector(events, store, allProjections(), { batchWindowMs });
    await projector.start();
    return projector;
  };

  it('writes the first events after a quiet spell at once, then holds what follows until the window ends', async () => {
    // a 3 s window, so that "at once" (under 1.5 s, however loaded the machine) and "held for
    // the window" cannot be mistaken for each other
    const projector = await started(3_000);
    try {
      const first = await appendOne();
      // started a moment ago with nothing to do: the first batch is not held
      const firstAppendedAt = Date.now();
      expect(await eventually(() => projector.position === first, 1_500)).toBe(true);
      const second = await appendOne();
      await sleep(200);
      expect(projector.position).toBe(first); // held: a batch began less than a window ago
      expect(await eventually(() => projector.position === second, 10_000)).toBe(true);
      // ...until the window ends: 3 s after the first batch began, not much later
      const heldFor = Date.now() - firstAppendedAt;
      expect(heldFor).toBeGreaterThanOrEqual(2_900);
      expect(heldFor).toBeLessThan(5_000);
      // a quiet spell longer than the window: the next event is written without waiting
      await sleep(3_100);
      const third = await appendOne();
      expect(await eventually(() => projector.position === third, 1_500)).toBe(true);
    } finally {
      await projector.stop();
    }
  }, 30_000);

  /** One event written, a second held behind it: their positions. */
  const oneHeld = async (projector: { waitFor: Projector['waitFor']; position: bigint }) => {
    const first = await appendOne();
    expect(await projector.waitFor(first, 5_000)).toBe(true);
    const second = await appendOne();
    await sleep(500); // far longer than a batch takes unheld, even on a busy machine
    expect(projector.position).toBe(first);
    return { first, second };
  };

  it('a reader waiting for a position cuts the hold short (a minPosition read waits no window)', async () => {
    const projector = await started(60_000);
    try {
      const { second } = await oneHeld(projector);
      const waited = Date.now();
      expect(await projector.waitFor(second, 5_000)).toBe(true);
      expect(Date.now() - waited).toBeLessThan(5_000);
      expect(await store.checkpoint(PROJECTOR_CHECKPOINT)).toBe(second);
    } finally {
      await projector.stop();
    }
  }, 30_000);

  it('a wait for a position the log never reaches hurries only while it waits', async () => {
    const projector = await started(60_000);
    try {
      const first = await appendOne();
      expect(await projector.waitFor(first, 5_000)).toBe(true);
      // a made-up minPosition: answered false (503) after its wait, and forgotten
      expect(await projector.waitFor(10n ** 18n, 100)).toBe(false);
      await sleep(50); // (a timer may fire a millisecond before performance.now() says it is due)
      const second = await appendOne();
      await sleep(1_000); // a projector that still hurried would have applied it long before
      expect(projector.position).toBe(first); // held again: the window is on
      expect(await projector.waitFor(second, 5_000)).toBe(true);
    } finally {
      await projector.stop();
    }
  }, 30_000);

  it('stop writes the batch it holds, without waiting out the window', async () => {
    const projector = await started(60_000);
    const { second } = await oneHeld(projector);
    await projector.stop();
    expect(await store.checkpoint(PROJECTOR_CHECKPOINT)).toBe(second);
  }, 30_000);

  whenBuilt(
    'in a projector thread, a wait on the main thread cuts the thread’s hold short',
    async () => {
      const projector = new ThreadedProjector(
        events,
        {
          eventStoreFile: events.file,
          readModelFile: join(dir, 'thread-read-models.sqlite'),
          batchWindowMs: 60_000,
        },
        { error: () => undefined, log: () => undefined },
        WORKER,
      );
      await projector.start();
      try {
        const { second } = await oneHeld(projector);
        expect(await projector.waitFor(second, 5_000)).toBe(true);
      } finally {
        await projector.stop();
      }
    },
    30_000,
  );
});
