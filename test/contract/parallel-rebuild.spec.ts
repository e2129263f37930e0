import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  PROJECTOR_CHECKPOINT,
  type ReadModelDocument,
  rebuildReadModels,
  replayInShards,
  replayInto,
  runShard,
  type ShardHandle,
  type ShardRequest,
  type ShadowReadModelStore,
  spawnShardWorker,
  SqliteReadModelStore,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { readModelSnapshot } from '../support/read-model-snapshot';
import { builtFile, isBuilt } from '../support/built';

const projections = allProjections();
const LIFECYCLES = Number(process.env.CONVERGENCE_LIFECYCLES ?? 2000);

/** A shard on this thread behind a real MessageChannel, as a worker thread talks to its parent. */
const inThread = (request: ShardRequest): ShardHandle => {
  const { port1, port2 } = new MessageChannel();
  let crashed: (error: Error) => void = () => undefined;
  let stopped = false;
  const running = runShard(port2, request, () => stopped).catch((error: Error) => crashed(error));
  return {
    onMessage: (listener) => port1.on('message', listener),
    onCrash: (listener) => (crashed = listener),
    // like a worker's terminate: resolves once the shard has stopped
    terminate: async () => {
      stopped = true;
      await running;
      port1.close();
      port2.close();
    },
  };
};

/** The rebuild shadow's tables left in a read-model file. */
const shadowTables = (file: string) => {
  const probe = new Database(file, { readonly: true });
  try {
    return probe.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rb%'").all();
  } finally {
    probe.close();
  }
};

/** The compiled worker (CI builds before it tests); from sources, shards run on this thread. */
const DIST_WORKER = builtFile('libs/read-models/src/rebuild-shard.worker.js');
const workersBuilt = isBuilt(DIST_WORKER, 'worker-thread rebuild test');

describe('a rebuild replayed in parallel shards (embedded stores)', () => {
  let dir: string;
  let events: SqliteEventStore;
  let written: number;
  let reference: Record<string, ReadModelDocument[]>;
  const snapshot = (store: SqliteReadModelStore) => readModelSnapshot(store, projections);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-parallel-rebuild-'));
    events = new SqliteEventStore(join(dir, 'events.sqlite'));
    written = await writeRandomLifecycles(events, { seed: 20261127, count: LIFECYCLES });
    const single = SqliteReadModelStore.open(join(dir, 'single.sqlite'));
    expect(await replayInto(events, single, projections)).toBe(written);
    reference = await snapshot(single);
    expect(reference.change_requests).toHaveLength(LIFECYCLES);
    // Standard changes move a template's usage count: a document that events of many changes touch.
    expect(reference.standard_templates.length).toBeGreaterThan(0);
    await single.close();
  }, 120_000);

  afterAll(async () => {
    await events.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([2, 3])(
    'with %i shards gives the read models of a single-threaded replay, swapped in, with its checkpoint and progress',
    async (workers) => {
      const live = SqliteReadModelStore.open(join(dir, `live-${workers}.sqlite`));
      const progress: bigint[] = [];
      const result = await rebuildReadModels(events, live, projections, (p) => progress.push(p.position), {
        workers,
        spawn: inThread,
      });
      const head = await events.headPosition();
      expect(result).toEqual({ events: written, head });
      expect(progress.at(-1)).toBe(head);
      expect(progress).toEqual([...progress].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(await live.checkpoint(PROJECTOR_CHECKPOINT)).toBe(head);
      expect(await snapshot(live)).toEqual(reference);
      await live.close();
    },
    120_000,
  );

  it('its shards open the event store read-only, as the CLI does: a copy (here, not in WAL mode) is left as it was', async () => {
    const file = join(dir, 'copy-events.sqlite');
    const source = new SqliteEventStore(file);
    await writeRandomLifecycles(source, { seed: 7, count: 5 });
    await source.close();
    const convert = new Database(file);
    convert.pragma('journal_mode = DELETE');
    convert.close();
    const copy = new SqliteEventStore(file, { readOnly: true });
    const live = SqliteReadModelStore.open(join(dir, 'from-copy.sqlite'));
    try {
      const result = await rebuildReadModels(copy, live, projections, undefined, {
        workers: 2,
        spawn: inThread,
      });
      expect(result.head).toBe(await copy.headPosition());
    } finally {
      await copy.close();
      await live.close();
    }
    const probe = new Database(file, { readonly: true });
    expect(probe.pragma('journal_mode', { simple: true })).toBe('delete');
    probe.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
  }, 60_000);

  it('folds and writes each document in one shard only, and every shard gets a share', async () => {
    const live = SqliteReadModelStore.open(join(dir, 'once.sqlite'));
    await live.init(projections.map((p) => p.collection));
    const shadow = await live.createShadow();
    let perShard: readonly number[] = [];
    await replayInShards(
      shadow,
      projections,
      { workers: 3, spawn: inThread },
      { eventStoreFile: events.file, readModelFile: live.file },
      await events.headPosition(),
      { keepInMemory: 1_000_000, onDocuments: (written) => (perShard = written) },
    );
    const documents = Object.values(reference).reduce((n, docs) => n + docs.length, 0);
    expect(perShard).toHaveLength(3);
    expect(perShard.reduce((a, b) => a + b, 0)).toBe(documents);
    for (const written of perShard) expect(written).toBeGreaterThan(documents / 6);
    await shadow.discard();
    await live.close();
  }, 120_000);

  it('gives the same read models when each shard holds only a few documents in memory (written out and read back)', async () => {
    const live = SqliteReadModelStore.open(join(dir, 'small-memory.sqlite'));
    await live.init(projections.map((p) => p.collection));
    const shadow = await live.createShadow();
    const head = await events.headPosition();
    const applied = await replayInShards(
      shadow,
      projections,
      { workers: 2, spawn: inThread },
      { eventStoreFile: events.file, readModelFile: live.file },
      head,
      { keepInMemory: 10, batchSize: 300 },
    );
    expect(applied).toBe(written);
    await shadow.promote();
    expect(await snapshot(live)).toEqual(reference);
    await live.close();
  }, 120_000);

  it('replays through the head it began at: events appended meanwhile are left to the live projector', async () => {
    const live = SqliteReadModelStore.open(join(dir, 'until.sqlite'));
    await live.init(projections.map((p) => p.collection));
    const shadow = await live.createShadow();
    const until = (await events.readAll({ after: 0n, limit: 1000 })).at(-1)!.position;
    const half = SqliteReadModelStore.open(join(dir, 'until-single.sqlite'));
    // The reference: a single-threaded replay of a real store holding the log up to `until`
    // (the same events, appended in log order: the same positions)
    const upTo = new SqliteEventStore(join(dir, 'until-events.sqlite'));
    for (const e of await events.readAll({ after: 0n, limit: 1000 })) {
      const { eventId, type, data, metadata } = e;
      await upTo.append(
        e.streamId,
        [{ eventId, type, data, metadata }],
        e.revision === 0n ? 'no-stream' : e.revision - 1n,
      );
    }
    expect(await upTo.headPosition()).toBe(until);
    await replayInto(upTo, half, projections);
    await upTo.close();
    const applied = await replayInShards(
      shadow,
      projections,
      { workers: 2, spawn: inThread },
      { eventStoreFile: events.file, readModelFile: live.file },
      until,
      { keepInMemory: 1000 },
    );
    expect(applied).toBe(1000);
    await shadow.promote();
    expect(await live.checkpoint(PROJECTOR_CHECKPOINT)).toBe(until);
    expect(await snapshot(live)).toEqual(await snapshot(half));
    await Promise.all([live.close(), half.close()]);
  }, 120_000);

  it("a rebuild superseded by another one started meanwhile fails, and its shards write nothing into the other's tables", async () => {
    const live = SqliteReadModelStore.open(join(dir, 'superseded.sqlite'));
    let later: ShadowReadModelStore | undefined;
    let taking: Promise<unknown> | undefined;
    // the second rebuild starts (drops and makes the same tables again) as the first one's
    // shards start: everything they write comes after it
    const spawn = (request: ShardRequest): ShardHandle => {
      taking ??= live.createShadow().then((s) => (later = s));
      return inThread(request);
    };
    await expect(
      rebuildReadModels(events, live, projections, undefined, { workers: 2, spawn }),
    ).rejects.toThrow(/rebuild shard \d: this shadow was dropped/);
    await taking;
    for (const { collection } of projections) {
      const written = await later!.find(collection.name, {
        where: [],
        orderBy: { field: 'id', direction: 'asc' },
        limit: 1,
      });
      expect({ [collection.name]: written }).toEqual({ [collection.name]: [] });
    }
    await later!.discard();
    await live.close();
  }, 120_000);

  it('fails as a whole when a shard fails: the error names the shard, the live read models are untouched and the shadow is gone', async () => {
    const live = SqliteReadModelStore.open(join(dir, 'failing.sqlite'));
    await replayInto(events, live, projections);
    const before = await snapshot(live);
    const failing = (request: ShardRequest) =>
      inThread(request.shard === 1 ? { ...request, eventStoreFile: dir } : request);
    await expect(
      rebuildReadModels(events, live, projections, undefined, { workers: 2, spawn: failing }),
    ).rejects.toThrow(/rebuild shard 1: /);
    expect(await snapshot(live)).toEqual(before);
    expect(shadowTables(join(dir, 'failing.sqlite'))).toEqual([]);
    await live.close();
  }, 120_000);

  it('fails as a whole when a shard dies near its end, after the others wrote everything: nothing is swapped', async () => {
    const live = SqliteReadModelStore.open(join(dir, 'crashing.sqlite'));
    await replayInto(events, live, projections);
    const before = await snapshot(live);
    const head = await events.headPosition();
    const dying = (request: ShardRequest): ShardHandle => {
      const handle = inThread(request);
      if (request.shard !== 1) return handle;
      let crash: (error: Error) => void = () => undefined;
      return {
        ...handle,
        onCrash: (listener) => {
          crash = listener;
          handle.onCrash(listener);
        },
        // as a worker thread that dies: its last words never arrive, its exit does
        onMessage: (listener) =>
          handle.onMessage((message) => {
            if (message.kind === 'progress' && message.position === head) crash(new Error('worker died'));
            else if (message.kind !== 'done') listener(message);
          }),
      };
    };
    await expect(
      rebuildReadModels(events, live, projections, undefined, { workers: 2, spawn: dying }),
    ).rejects.toThrow('worker died');
    expect(await snapshot(live)).toEqual(before);
    expect(shadowTables(join(dir, 'crashing.sqlite'))).toEqual([]);
    await live.close();
  }, 120_000);

  (workersBuilt ? it : it.skip)(
    'runs its shards in worker threads (the built worker) with the same result',
    async () => {
      const live = SqliteReadModelStore.open(join(dir, 'threads.sqlite'));
      const result = await rebuildReadModels(events, live, projections, undefined, {
        workers: 2,
        spawn: (request) => spawnShardWorker(request, DIST_WORKER),
      });
      expect(result.events).toBe(written);
      expect(await snapshot(live)).toEqual(reference);
      await live.close();
    },
    120_000,
  );
});
