import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  PROJECTOR_CHECKPOINT,
  replayInto,
  SqliteReadModelStore,
  ThreadedProjector,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { readModelSnapshot } from '../support/read-model-snapshot';
import { builtFile, isBuilt } from '../support/built';
import { waitUntil } from '../support/wait-until';

const projections = allProjections();
/** The compiled thread entry (CI builds before it tests). */
const WORKER = builtFile('libs/read-models/src/projector.worker.js');
const built = isBuilt(WORKER, 'projector thread tests');
const whenBuilt = built ? it : it.skip;

describe('the API projector in a worker thread (embedded stores)', () => {
  let dir: string;
  let events: SqliteEventStore;
  const logged: string[] = [];
  const logger = { error: (m: string) => logged.push(`error: ${m}`), log: (m: string) => logged.push(m) };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-projector-thread-'));
    events = new SqliteEventStore(join(dir, 'events.sqlite'));
    await writeRandomLifecycles(events, { seed: 20261128, count: 300 });
  }, 60_000);

  afterAll(async () => {
    await events.close();
    rmSync(dir, { recursive: true, force: true });
  });

  whenBuilt(
    'catches up from its checkpoint, is woken by this thread’s appends (not its poll), and stops cleanly',
    async () => {
      const file = join(dir, 'read-models.sqlite');
      // A poll of a minute: only the wake-up after each append can bring new events in time.
      const projector = new ThreadedProjector(
        events,
        { eventStoreFile: events.file, readModelFile: file, pollIntervalMs: 60_000 },
        logger,
        WORKER,
      );
      await projector.start();
      try {
        await catchUpWakeAndStop(projector, file);
      } finally {
        await projector.stop(); // also when an expectation failed: the thread would keep jest alive
      }
    },
    120_000,
  );

  const catchUpWakeAndStop = async (projector: ThreadedProjector, file: string) => {
    expect(await projector.waitFor(await events.headPosition(), 30_000)).toBe(true);
    expect(projector.position).toBe(await events.headPosition());

    const more = await writeRandomLifecycles(events, { seed: 7, count: 20, idOffset: 10_000 });
    expect(more).toBeGreaterThan(20);
    const head = await events.headPosition();
    expect(await projector.waitFor(head, 20_000)).toBe(true);

    // The thread's read models equal a replay of the whole log on this thread.
    const live = SqliteReadModelStore.open(file);
    const replayed = SqliteReadModelStore.open(join(dir, 'replayed.sqlite'));
    await replayInto(events, replayed, projections);
    await live.init(projections.map((p) => p.collection));
    expect(await readModelSnapshot(live, projections)).toEqual(
      await readModelSnapshot(replayed, projections),
    );
    expect(await live.checkpoint(PROJECTOR_CHECKPOINT)).toBe(head);

    // stop: a pending wait answers false, nothing is projected afterwards, a second stop is a no-op
    const pending = projector.waitFor(head + 1_000n, 30_000);
    await projector.stop();
    expect(await pending).toBe(false);
    // a wait asked for after the stop (a read during the shutdown) is answered false at once
    const askedAt = Date.now();
    expect(await projector.waitFor(head + 1_000n, 30_000)).toBe(false);
    expect(Date.now() - askedAt).toBeLessThan(1_000); // not its 30 s
    await projector.stop();
    await writeRandomLifecycles(events, { seed: 8, count: 3, idOffset: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await live.checkpoint(PROJECTOR_CHECKPOINT)).toBe(head);
    expect(projector.position).toBe(head);
    expect(logged.filter((m) => m.startsWith('error'))).toEqual([]);
    await Promise.all([live.close(), replayed.close()]);
  };

  whenBuilt(
    'a thread that dies is started again and goes on from its checkpoint',
    async () => {
      const file = join(dir, 'restarted.sqlite');
      const died: string[] = [];
      const projector = new ThreadedProjector(
        events,
        { eventStoreFile: events.file, readModelFile: file },
        { error: (m) => died.push(m), log: () => undefined },
        WORKER,
      );
      await projector.start();
      try {
        expect(await projector.waitFor(await events.headPosition(), 30_000)).toBe(true);
        expect(projector.running).toBe(true);
        // as if the thread crashed (the handle is private: this test reaches in)
        await (projector as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
        expect(projector.running).toBe(false);
        await writeRandomLifecycles(events, { seed: 9, count: 5, idOffset: 30_000 });
        expect(await projector.waitFor(await events.headPosition(), 20_000)).toBe(true);
        expect(projector.running).toBe(true);
        expect(died).toEqual([
          expect.stringMatching(/^projector thread died \(exit code 1\); starting it again in 1 s$/),
        ]);
        const live = SqliteReadModelStore.open(file);
        const replayed = SqliteReadModelStore.open(join(dir, 'restarted-replay.sqlite'));
        await replayInto(events, replayed, projections);
        await live.init(projections.map((p) => p.collection));
        expect(await readModelSnapshot(live, projections)).toEqual(
          await readModelSnapshot(replayed, projections),
        );
        await Promise.all([live.close(), replayed.close()]);
      } finally {
        await projector.stop();
      }
    },
    120_000,
  );

  whenBuilt('a thread that cannot open its stores fails the start with the reason', async () => {
    const notAFile = join(dir, 'a-folder');
    mkdirSync(notAFile);
    const projector = new ThreadedProjector(
      events,
      { eventStoreFile: events.file, readModelFile: notAFile },
      logger,
      WORKER,
    );
    await expect(projector.start()).rejects.toThrow(/^projector thread: /);
    await projector.stop(); // nothing to stop: returns
  });

  whenBuilt(
    'tells this thread when its projector stalls (its store locked past the busy timeout) and when it recovers',
    async () => {
      const file = join(dir, 'stalled-read-models.sqlite');
      const projector = new ThreadedProjector(
        events,
        { eventStoreFile: events.file, readModelFile: file },
        logger,
        WORKER,
      );
      await projector.start();
      try {
        expect(await projector.waitFor(await events.headPosition(), 30_000)).toBe(true);
        const blocker = new Database(file);
        blocker.exec('BEGIN EXCLUSIVE'); // another process holds the file
        await writeRandomLifecycles(events, { seed: 8, count: 2, idOffset: 40_000 });
        const deadline = Date.now() + 20_000;
        while (projector.stalledSince === undefined && Date.now() < deadline) await sleep(50);
        expect(projector.stalledSince).toBeDefined();
        expect(projector.running).toBe(true);
        blocker.exec('ROLLBACK');
        blocker.close();
        expect(await projector.waitFor(await events.headPosition(), 20_000)).toBe(true);
        while (projector.stalledSince !== undefined && Date.now() < deadline + 20_000) await sleep(50);
        expect(projector.stalledSince).toBeUndefined();
      } finally {
        await projector.stop();
      }
    },
    60_000,
  );
  whenBuilt(
    'is not running while its subscription to the log keeps failing (a corrupt row), and runs again once it reads',
    async () => {
      const file = join(dir, 'corrupt-events.sqlite');
      const log = new SqliteEventStore(file);
      await writeRandomLifecycles(log, { seed: 5, count: 3 });
      const head = await log.headPosition();
      const edit = new Database(file);
      const original = (edit.prepare('SELECT data FROM events WHERE position = 2').get() as { data: string })
        .data;
      edit.prepare('UPDATE events SET data = ? WHERE position = 2').run('{"broken');
      const projector = new ThreadedProjector(
        log,
        { eventStoreFile: file, readModelFile: join(dir, 'corrupt-read-models.sqlite'), pollIntervalMs: 100 },
        logger,
        WORKER,
      );
      await projector.start();
      try {
        // health reads `running`: down (503), not ok with the models standing still
        await waitUntil(() => !projector.running, 'the failing subscription reported', { timeoutMs: 20_000 });
        expect(logged.some((m) => m.includes('the event store subscription failed'))).toBe(true);
        expect(projector.position).toBeLessThan(head);
        edit.prepare('UPDATE events SET data = ? WHERE position = 2').run(original);
        expect(await projector.waitFor(head, 40_000)).toBe(true);
        await waitUntil(() => projector.running, 'running again', { timeoutMs: 20_000 });
      } finally {
        edit.close();
        await projector.stop();
        await log.close();
      }
    },
    90_000,
  );
});
