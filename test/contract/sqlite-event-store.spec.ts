import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  ConcurrencyError,
  computeEventHash,
  EventStoreUnavailableError,
  SqliteEventStore,
  StoredEventCorruptError,
  verifyHashChains,
  type EventStore,
  type NewEvent,
  type RecordedEvent,
  type SqliteEventStoreOptions,
} from '@changeledger/event-store';
import { eventStoreContract, type EventStoreFixture } from './event-store.contract';

/** A temp directory per test, created lazily on open(), holding `events.sqlite`. */
const sqliteFixture = (options?: SqliteEventStoreOptions) => {
  let dir: string | undefined;
  const stores: SqliteEventStore[] = [];
  const file = () => {
    dir ??= mkdtempSync(join(tmpdir(), 'changeledger-es-'));
    return join(dir, 'events.sqlite');
  };
  const track = (store: SqliteEventStore) => {
    stores.push(store);
    return store;
  };
  return {
    file,
    /** Another handle on the same file: a second "process". */
    another: (more?: SqliteEventStoreOptions) => track(new SqliteEventStore(file(), { ...options, ...more })),
    async open() {
      return track(new SqliteEventStore(file(), options));
    },
    reopen: async (previous: EventStore) =>
      track(new SqliteEventStore((previous as SqliteEventStore).file, options)),
    async cleanup() {
      await Promise.all(stores.map((s) => s.close()));
      stores.length = 0;
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  } satisfies EventStoreFixture & Record<string, unknown>;
};

eventStoreContract('sqlite', () => sqliteFixture());

// ---------------------------------------------------------------------------------------------

const event = (type = 'ChangeRequestUpdated', data: Record<string, unknown> = {}): NewEvent => ({
  eventId: randomUUID(),
  type,
  data,
  metadata: {
    actor: { id: 'user-1', name: 'Test', roles: ['requester'] },
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: null,
    schemaVersion: 1,
  },
});
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** The promise, or a rejection after `ms` (well below the 3 s poll interval the timing tests use). */
const within = <T>(promise: Promise<T>, ms: number, what: string) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};
const expectValidChain = (events: readonly RecordedEvent[]) =>
  events.forEach((e, i) => {
    expect(e.metadata.previousHash).toBe(i === 0 ? '0'.repeat(64) : events[i - 1].metadata.hash);
    expect(computeEventHash(e, e.metadata.previousHash as string)).toBe(e.metadata.hash);
  });

/**
 * A real second (and third) writer: a worker thread with its own SqliteEventStore on the file, so
 * the transactions truly overlap. The adapter's TypeScript is compiled in the worker with swc.
 */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Module = require('node:module');
const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const swc = require(workerData.swc);
Module._extensions['.ts'] = (m, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { target: 'es2022', parser: { syntax: 'typescript', decorators: true } },
    module: { type: 'commonjs' },
  });
  m._compile(code, filename);
};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const alias = /^@changeledger\\/([\\w-]+)$/.exec(request);
  return resolve.call(this, alias ? path.join(workerData.root, 'libs', alias[1], 'src') : request, ...rest);
};
const { SqliteEventStore, ConcurrencyError } = require(path.join(workerData.root, 'libs/event-store/src'));
const event = (type, data) => ({
  eventId: randomUUID(), type, data,
  metadata: { actor: { id: workerData.name, name: workerData.name, roles: [] }, occurredAt: new Date().toISOString(),
    correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});
(async () => {
  const store = new SqliteEventStore(workerData.file);
  const go = new Int32Array(workerData.go);
  Atomics.add(go, 1, 1);
  Atomics.wait(go, 0, 0);
  const out = { created: [], createLost: 0, hotWins: 0, hotConflicts: 0, numbers: [], errors: [] };
  const fail = (e) => out.errors.push(String(e && e.stack || e));
  // a short pause now and then lets the other writers in, so their transactions really overlap
  const pause = () => (Math.random() < 0.3 ? new Promise((r) => setTimeout(r, 1)) : undefined);
  while (out.hotWins < workerData.hot) {
    try {
      const events = await store.readStream('hot');
      const expected = events.length ? events[events.length - 1].revision : 'no-stream';
      await new Promise((r) => setTimeout(r, 1)); // read, think, then write: a window for the others
      await store.append('hot', [event('Hot', { by: workerData.name }), event('Hot', { by: workerData.name })], expected);
      out.hotWins++;
    } catch (e) {
      if (e instanceof ConcurrencyError) out.hotConflicts++; else { fail(e); break; }
    }
  }
  for (let i = 0; i < workerData.streams; i++) {
    try {
      await store.append('race-' + i, [event('Created', { by: workerData.name })], 'no-stream');
      out.created.push(i);
    } catch (e) {
      if (e instanceof ConcurrencyError) out.createLost++; else fail(e);
    }
    await pause();
  }
  for (let i = 0; i < workerData.sequences; i++) {
    try {
      const r = await store.appendWithSequence({ sequence: 'cr', build: (n) => ({ streamId: 'CHG-' + n, events: [event('Raised', { n })] }) });
      out.numbers.push(r.number);
    } catch (e) { fail(e); }
  }
  await store.close();
  parentPort.postMessage(out);
})().catch((e) => parentPort.postMessage({ errors: [String(e && e.stack || e)] }));
`;

interface WorkerResult {
  created: number[];
  createLost: number;
  hotWins: number;
  hotConflicts: number;
  numbers: number[];
  errors: string[];
}

describe('SqliteEventStore specifics', () => {
  let fx: ReturnType<typeof sqliteFixture>;
  beforeEach(() => {
    fx = sqliteFixture();
  });
  afterEach(() => fx.cleanup());

  it('a fresh file is empty: head 0n, readAll [], a subscription without `after` starts at the beginning', async () => {
    const store = await fx.open();
    expect(await store.headPosition()).toBe(0n);
    expect(await store.readAll({ limit: 10 })).toEqual([]);
    await store.append('s-1', [event(), event()], 'no-stream');
    const all = await store.readAll({ limit: 10 });
    expect(all.map((e) => e.position)).toEqual([1n, 2n]);
    const subscription = store.subscribeToAll();
    const received: RecordedEvent[] = [];
    for await (const e of subscription) {
      received.push(e);
      if (received.length === 2) break;
    }
    expect(received).toEqual(all);
  });

  it('readAllDeferred reads what readAll reads, parsing data and metadata only when they are first read', async () => {
    const store = await fx.open();
    await store.append('s-1', [event('A', { n: 1, nested: { list: [1, 'two'] } }), event('B')], 'no-stream');
    await store.append('s-2', [event('C', { n: 3 })], 'no-stream');
    const plain = await store.readAll({ after: 1n, limit: 10 });
    const deferred = await store.readAllDeferred({ after: 1n, limit: 10 });
    expect(deferred.map((e) => [e.eventId, e.streamId, e.revision, e.position, e.type])).toEqual(
      plain.map((e) => [e.eventId, e.streamId, e.revision, e.position, e.type]),
    );
    expect(deferred.map((e) => [e.data, e.metadata])).toEqual(plain.map((e) => [e.data, e.metadata]));
    expect(deferred[0].data).toBe(deferred[0].data); // parsed once, then the same object
    expect(await store.readAllDeferred({ after: 0n, limit: 1 })).toHaveLength(1);
  });

  it('a listener that throws cannot leave a committed append unanswered', async () => {
    const store = await fx.open();
    let calls = 0;
    let after = 0;
    const off = store.onAppended(() => {
      calls += 1;
      throw new Error('listener bug');
    });
    const offAfter = store.onAppended(() => (after += 1)); // still woken
    try {
      await expect(store.append('s-1', [event('A')], 'no-stream')).resolves.toMatchObject({
        nextExpectedRevision: 0n,
      });
      await expect(store.append('s-1', [event('B')], 0n)).resolves.toMatchObject({
        nextExpectedRevision: 1n,
      });
      expect([calls, after]).toEqual([2, 2]);
    } finally {
      off();
      offAfter();
    }
  });

  it('a row edited into something other than a JSON object is reported as that event by every read, and verify names it', async () => {
    const store = await fx.open();
    await store.append(
      's-1',
      [event('A', { n: 1 }), event('B', { n: 2 }), event('C', { n: 3 })],
      'no-stream',
    );
    const db = new Database(fx.file());
    const original = db
      .prepare("SELECT data, metadata FROM events WHERE stream_id = 's-1' AND revision = 1")
      .get() as { data: string; metadata: string };
    const edit = (column: 'data' | 'metadata', text: string) =>
      db.prepare(`UPDATE events SET ${column} = ? WHERE stream_id = 's-1' AND revision = 1`).run(text);
    for (const [column, text] of [
      ['data', '{"n": 2'],
      ['data', '[2]'],
      ['metadata', 'null'],
    ] as const) {
      edit(column, text);
      const corrupt = expect.objectContaining({
        name: 'StoredEventCorruptError',
        streamId: 's-1',
        revision: 1n,
        position: 2n,
        field: column,
        message: expect.stringContaining('s-1 revision 1 (position 2)'),
      });
      await expect(store.readStream('s-1')).rejects.toEqual(corrupt);
      await expect(store.readAll({ after: 0n, limit: 10 })).rejects.toBeInstanceOf(StoredEventCorruptError);
      const deferred = await store.readAllDeferred({ after: 0n, limit: 10 });
      expect(deferred[0].data).toEqual({ n: 1 }); // the rows around it still read
      expect(() => [deferred[1].data, deferred[1].metadata]).toThrow(StoredEventCorruptError);
      expect(await verifyHashChains(store)).toMatchObject({
        valid: false,
        checkedEvents: 2, // the broken one included, as for any break
        firstInvalid: {
          streamId: 's-1',
          revision: '1',
          position: '2',
          reason: `its ${column} is not a JSON object: the stored row was edited`,
        },
      });
      edit(column, original[column]);
    }
    db.close();
    expect(await verifyHashChains(store)).toMatchObject({ valid: true, checkedEvents: 3 });
  });

  it('verify names an event moved to a position no read of the log reaches, which the stream still reads, anchor or not', async () => {
    const store = await fx.open();
    await store.append('s-1', [event('A'), event('B')], 'no-stream');
    const anchored = await verifyHashChains(store);
    expect(anchored).toMatchObject({ valid: true, anchor: { position: '2' } });
    // Chained as the service would, then moved out of the log's order in the file: the stream's
    // reads (its commands, its history) take it in, a pass over the log never meets it.
    await store.append('s-1', [event('Forged')], 1n);
    const db = new Database(fx.file());
    db.prepare('UPDATE events SET position = -1 WHERE position = 3').run();
    db.close();
    expect((await store.readStream('s-1')).map((e) => [e.type, e.position])).toEqual([
      ['A', 1n],
      ['B', 2n],
      ['Forged', -1n],
    ]);
    expect(await store.readAll({ after: 0n, limit: 10 })).toHaveLength(2);
    for (const options of [{}, { anchor: anchored.anchor }]) {
      expect(await verifyHashChains(store, options)).toEqual({
        valid: false,
        checkedEvents: 2,
        checkedStreams: 1,
        firstInvalid: {
          streamId: 's-1',
          revision: '2',
          position: '-1',
          reason: expect.stringContaining('stored at a position no read of the log reaches'),
        },
      });
    }
  });

  it('a subscription skipping a long run of other streams lets the event loop run between batches', async () => {
    const store = fx.another({ batchSize: 50 });
    for (let i = 0; i < 20; i++) {
      await store.append(
        `other-${i}`,
        Array.from({ length: 50 }, () => event()),
        'no-stream',
      );
    }
    await store.append('wanted-1', [event('Wanted')], 'no-stream');
    const iterator = store.subscribeToAll({ streamPrefixes: ['wanted-'] })[Symbol.asyncIterator]();
    let ticked = false;
    const first = iterator.next();
    setImmediate(() => (ticked = true));
    const { value } = await first;
    expect(value).toMatchObject({ streamId: 'wanted-1', type: 'Wanted', position: 1001n });
    // 1,000 skipped events in 20 reads: without a pause between reads this resolves before any timer
    expect(ticked).toBe(true);
    await iterator.return?.(undefined);
  });

  it('the hash-chain check lets the event loop run between pages (the API serves other requests, a CLI hears Ctrl-C)', async () => {
    const store = await fx.open();
    for (let i = 0; i < 10; i++) {
      await store.append(
        `s-${i}`,
        Array.from({ length: 20 }, () => event()),
        'no-stream',
      );
    }
    let ticks = 0;
    const tick = () => {
      ticks++;
      if (ticks < 1000) setImmediate(tick);
    };
    const checking = verifyHashChains(store, { pageSize: 20 });
    setImmediate(tick);
    const report = await checking;
    expect(report).toMatchObject({ valid: true, checkedEvents: 200 });
    // ten pages: without a turn between them the check resolves before any immediate runs
    expect(ticks).toBeGreaterThanOrEqual(9);
  });

  /** 150 events whose 121st cannot be serialised: the first hundred rows are inserted before it fails. */
  const failingHalfWay = () =>
    Array.from({ length: 150 }, (_, i) => (i === 120 ? event('Bad', { n: 1n }) : event()));

  it('an append that fails half-way (an event that cannot be serialised) leaves nothing behind', async () => {
    const store = await fx.open();
    await store.append('s-1', [event()], 'no-stream');
    const batch = failingHalfWay();
    await expect(store.append('s-1', batch, 0n)).rejects.toThrow();
    expect((await store.readStream('s-1')).length).toBe(1);
    expect(await store.headPosition()).toBe(1n);
    const fixed = batch.map((e, i) => (i === 120 ? event() : e));
    expect((await store.append('s-1', fixed, 0n)).nextExpectedRevision).toBe(150n);
    expectValidChain(await store.readStream('s-1'));
  });

  it('when SQLite rolls back the whole group itself (disk full, I/O error), every write of the group fails and none is stored', async () => {
    const store = (await fx.open()) as SqliteEventStore;
    await store.append('s-0', [event()], 'no-stream');
    const db = (store as unknown as { db: { exec(sql: string): void } }).db;
    // Three writes in one group (one turn of the event loop); the second meets what SQLite does
    // on SQLITE_FULL or SQLITE_IOERR: the transaction is rolled back under it.
    const first = store.append('s-1', [event()], 'no-stream');
    const failing = store.appendWithSequence({
      sequence: 'faulty',
      build: () => {
        db.exec('ROLLBACK');
        throw new Error('SQLITE_FULL: database or disk is full');
      },
    });
    const third = store.append('s-3', [event()], 'no-stream');
    const outcomes = await Promise.allSettled([first, failing, third]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    // nothing of the group is stored: a write reported failed must not be there
    expect(await store.readStream('s-1')).toEqual([]);
    expect(await store.readStream('s-3')).toEqual([]);
    expect(await store.headPosition()).toBe(1n);
    // and the store goes on
    expect((await store.append('s-3', [event()], 'no-stream')).nextExpectedRevision).toBe(0n);
  });

  it('a group keeps its writes apart: one refused (a conflict, an unserialisable event) fails alone, the others commit with their own answers', async () => {
    const store = await fx.open();
    await store.append('s-c', [event()], 'no-stream');
    let wakes = 0;
    store.onAppended(() => wakes++);
    // one turn of the event loop: one group transaction
    const a = store.append('s-a', [event()], 'no-stream');
    const b = store.append('s-b', failingHalfWay(), 'no-stream');
    const c = store.append('s-c', [event()], 'no-stream'); // stale: s-c exists
    const d = store.append('s-d', [event(), event()], 'no-stream');
    const [ra, rb, rc, rd] = await Promise.allSettled([a, b, c, d]);
    expect(ra).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: 0n, position: 2n } });
    expect(rb.status).toBe('rejected');
    expect(rc).toMatchObject({ status: 'rejected', reason: expect.any(ConcurrencyError) });
    expect(rd).toMatchObject({ status: 'fulfilled', value: { nextExpectedRevision: 1n, position: 4n } });
    expect(await store.readStream('s-b')).toEqual([]);
    expect((await store.readAll({ limit: 10 })).map((e) => [e.streamId, e.position])).toEqual([
      ['s-c', 1n],
      ['s-a', 2n],
      ['s-d', 3n],
      ['s-d', 4n],
    ]);
    expect(wakes).toBe(1); // one wake-up for the group
  });

  it('positions past 2^53 stay exact (bigint everywhere)', async () => {
    const store = await fx.open();
    await store.append('s-0', [event()], 'no-stream');
    const raw = new Database(fx.file());
    // 2^53: the next position, 2^53 + 1, is the first a double cannot hold (it would read 2^53)
    raw.prepare("UPDATE sqlite_sequence SET seq = 9007199254740992 WHERE name = 'events'").run();
    raw.close();
    const appended = await store.append('s-1', [event(), event()], 'no-stream');
    expect(appended.position).toBe(9007199254740994n);
    expect((await store.readStream('s-1')).map((e) => e.position)).toEqual([
      9007199254740993n,
      9007199254740994n,
    ]);
    expect((await store.readAll({ after: 1n, limit: 10 })).map((e) => e.position)).toEqual([
      9007199254740993n,
      9007199254740994n,
    ]);
    expect(await store.headPosition()).toBe(9007199254740994n);
    const subscription = store.subscribeToAll({ after: 9007199254740993n });
    for await (const e of subscription) {
      expect(e.position).toBe(9007199254740994n);
      break;
    }
    await subscription.close();
  });

  it('writes accepted before close() are committed, and survive a reopen; later ones are refused as closed', async () => {
    const store = await fx.open();
    const accepted = store.append('s-1', [event(), event()], 'no-stream'); // same tick as close
    const closing = store.close();
    await expect(store.append('s-2', [event()], 'no-stream')).rejects.toThrow(/closed/);
    await closing;
    expect((await accepted).nextExpectedRevision).toBe(1n);
    const reopened = await fx.reopen(store);
    expect((await reopened.readStream('s-1')).length).toBe(2);
    expect(await reopened.readStream('s-2')).toEqual([]);
  });

  it('is a WAL file with synchronous=FULL (an acknowledged append is on disk, power loss included)', async () => {
    const store = await fx.open();
    const db = (store as unknown as { db: Database.Database }).db;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
  });

  describe('opened read-only (the CLI: verify, report, backup)', () => {
    const bytesOf = (file: string) => readFileSync(file).toString('hex');

    it('reads and verifies what a writer stored, refuses appends, and leaves a copy in another journal mode as it was', async () => {
      const writer = await fx.open();
      await writer.append('s-1', [event('A'), event('B')], 'no-stream');
      await writer.close();
      // a copy as a restore or an auditor's tool may leave it: a rollback journal, not WAL
      const legacy = new Database(fx.file());
      legacy.pragma('journal_mode = DELETE');
      legacy.close();
      const before = bytesOf(fx.file());

      const reader = fx.another({ readOnly: true });
      expect((await reader.readStream('s-1')).map((e) => e.type)).toEqual(['A', 'B']);
      expect((await verifyHashChains(reader)).valid).toBe(true);
      await expect(reader.append('s-2', [event()], 'no-stream')).rejects.toThrow(/read-only/);
      await reader.close();

      expect(bytesOf(fx.file())).toBe(before); // still a rollback-journal file, unchanged
      expect(existsSync(`${fx.file()}-wal`)).toBe(false);
    });

    it("beside the service's writer on the WAL file: reads what it appends later, a subscription included", async () => {
      const writer = await fx.open();
      await writer.append('s-1', [event('A')], 'no-stream');
      const reader = fx.another({ readOnly: true, pollIntervalMs: 20 });
      expect(await reader.headPosition()).toBe(1n);
      await writer.append('s-1', [event('B')], 0n);
      expect((await reader.readAll({ limit: 10 })).map((e) => e.type)).toEqual(['A', 'B']);
      const received: string[] = [];
      const following = (async () => {
        for await (const e of reader.subscribeToAll()) {
          received.push(e.type);
          if (received.length === 3) break;
        }
      })();
      await writer.append('s-2', [event('C')], 'no-stream');
      await within(following, 2_000, 'the subscription');
      expect(received).toEqual(['A', 'B', 'C']);
    });

    it('a missing file, or a database that is no event store, is named and left as it was (no file, no tables made)', async () => {
      expect(() => new SqliteEventStore(fx.file(), { readOnly: true })).toThrow();
      expect(existsSync(fx.file())).toBe(false);

      const other = new Database(fx.file());
      other.exec('CREATE TABLE notes (body TEXT)');
      other.close();
      expect(() => new SqliteEventStore(fx.file(), { readOnly: true })).toThrow(
        /is not a changeledger event store \(no events or sequences table\)/,
      );
      const tables = new Database(fx.file(), { readonly: true });
      expect(tables.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual([
        'notes',
      ]);
      tables.close();
    });
  });

  it('a file another process keeps locked: writes wait without holding the event loop, then commit in order', async () => {
    const store = await fx.open();
    await store.append('s-0', [event()], 'no-stream');
    const other = new Database(fx.file());
    other.exec('BEGIN IMMEDIATE');
    // 10 ms ticks: a free event loop gives about 40 in the 400 ms below; SQLite's own busy wait
    // (synchronous) would give a handful (a loaded machine's timers run late: a margin)
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 10);
    const first = store.append('s-1', [event()], 'no-stream');
    const second = store.append('s-2', [event()], 'no-stream');
    await sleep(100);
    const third = store.append('s-3', [event()], 'no-stream'); // queued while the first two wait
    await sleep(300);
    other.exec('COMMIT');
    other.close();
    const [r1, r2, r3] = await Promise.all([first, second, third]);
    clearInterval(ticking);
    expect([r1.position, r2.position, r3.position]).toEqual([2n, 3n, 4n]);
    expect(ticks).toBeGreaterThan(10); // timers ran while the writes waited
  });

  it('closed while another process holds the file: queued writes are answered as unavailable, nothing stored', async () => {
    const store = await fx.open();
    await store.append('s-0', [event()], 'no-stream');
    const other = new Database(fx.file());
    other.exec('BEGIN IMMEDIATE');
    const queued = store.append('s-1', [event()], 'no-stream').catch((e: unknown) => e);
    await sleep(50); // tried once, waiting for its retry
    await store.close();
    expect(await queued).toBeInstanceOf(EventStoreUnavailableError);
    other.exec('ROLLBACK');
    other.close();
    const reopened = await fx.reopen(store);
    expect(await reopened.readStream('s-1')).toEqual([]);
  });

  it('a file locked past the deadline: the writes fail as unavailable (503), nothing stored, and the store goes on', async () => {
    const store = fx.another({ busyDeadlineMs: 300 });
    await store.append('s-0', [event()], 'no-stream');
    const other = new Database(fx.file());
    other.exec('BEGIN IMMEDIATE');
    const refused = await store.append('s-1', [event()], 'no-stream').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EventStoreUnavailableError);
    expect(String(refused)).toMatch(/locked by another process/);
    other.exec('ROLLBACK');
    other.close();
    expect(await store.readStream('s-1')).toEqual([]);
    expect((await store.append('s-1', [event()], 'no-stream')).position).toBe(2n);
  });

  it('a sequence whose build names the same existing stream for every number is refused, not looped on', async () => {
    const store = (await fx.open()) as SqliteEventStore;
    await store.append('only-one', [event()], 'no-stream');
    const refused = await store
      .appendWithSequence({
        sequence: 'one-stream',
        build: () => ({ streamId: 'only-one', events: [event()] }),
      })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConcurrencyError);
    expect(refused).toMatchObject({ streamId: 'only-one', actual: 0n });
    expect(await store.readStream('only-one')).toHaveLength(1);
  });

  it('live events of the same process arrive at once, and close() ends the loop at once (no waiting for a poll)', async () => {
    // a poll a minute away: what arrives within the waits below was not found by polling
    const store = fx.another({ pollIntervalMs: 60_000 });
    await store.append('s-1', [event()], 'no-stream');
    const subscription = store.subscribeToAll({ after: 1n });
    const received: RecordedEvent[] = [];
    const loop = (async () => {
      for await (const e of subscription) {
        received.push(e);
        if (received.length > 100) throw new Error('runaway subscription');
      }
    })();
    loop.catch(() => undefined); // reported where the test awaits `loop`
    await sleep(30); // caught up: waiting
    const started = Date.now();
    await store.append('s-1', [event('Live')], 0n);
    while (received.length < 1 && Date.now() - started < 2000) await sleep(2);
    expect(received.map((e) => e.type)).toEqual(['Live']);

    await sleep(30); // waiting again
    await subscription.close();
    await within(loop, 1000, 'the for-await loop after close()');
    expect(received).toHaveLength(1);
  });

  it('a closed store refuses work, and closing it ends its subscriptions', async () => {
    const store = fx.another({ pollIntervalMs: 60_000 }); // the loop's end is not a poll's
    const subscription = store.subscribeToAll();
    const loop = (async () => {
      const got: RecordedEvent[] = [];
      for await (const e of subscription) {
        got.push(e);
        if (got.length > 100) throw new Error('runaway subscription');
      }
      return got;
    })();
    loop.catch(() => undefined); // reported where the test awaits `loop`
    await store.append('s-1', [event()], 'no-stream');
    await sleep(20);
    await store.close();
    expect(await within(loop, 1000, 'the for-await loop after the store closed')).toHaveLength(1);
    // unavailable (503 from the API, as while shutting down), not an internal error
    await expect(store.append('s-1', [event()], 'any')).rejects.toThrow(EventStoreUnavailableError);
    await expect(store.readStream('s-1')).rejects.toThrow(/closed/);
  });

  it('while it closes: a second close() ends with the first, and no subscription begins', async () => {
    const store = fx.another({ pollIntervalMs: 60_000 });
    const open = store.subscribeToAll();
    const loop = (async () => {
      for await (const _ of open) void _;
    })();
    await store.append('s-1', [event()], 'no-stream');
    const first = store.close();
    expect(() => store.subscribeToAll()).toThrow(EventStoreUnavailableError);
    await store.close(); // resolves once the file is closed, not at once
    await expect(store.headPosition()).rejects.toThrow(/closed/);
    await first;
    await within(loop, 1000, 'the subscription begun before the close');
  });

  it("an 'any' append repeated with the same ids is a no-op however long it is (not only its last 64 events)", async () => {
    const store = await fx.open();
    const batch = Array.from({ length: 100 }, () => event());
    const first = await store.append('s-1', batch, 'any');
    expect(await store.append('s-1', batch, 'any')).toEqual(first);
    expect(await store.readStream('s-1')).toHaveLength(100);
    // after other events too, within the window
    await store.append('s-1', [event(), event()], 'any');
    expect(await store.append('s-1', batch, 'any')).toEqual(first);
    expect(await store.readStream('s-1')).toHaveLength(102);
  });

  it("an append after a stream's last event edited to hold no hash (or no JSON) is refused naming that event, not chained to nothing", async () => {
    const store = await fx.open();
    await store.append('s-1', [event(), event()], 'no-stream');
    const raw = new Database(fx.file());
    try {
      for (const [metadata, problem] of [
        ['{}', 'holds no hash'],
        ['{"hash":', 'is not a JSON object'],
      ] as const) {
        raw
          .prepare('UPDATE events SET metadata = ? WHERE stream_id = ? AND revision = 1')
          .run(metadata, 's-1');
        const refused = store.append('s-1', [event()], 1n);
        await expect(refused).rejects.toThrow(StoredEventCorruptError);
        await expect(refused).rejects.toThrow(
          `s-1 revision 1 (position 2) is corrupt: its metadata ${problem}`,
        );
        expect(await store.headPosition()).toBe(2n);
      }
    } finally {
      raw.close();
    }
  });

  describe('two stores on the same file (two processes)', () => {
    it('concurrent appends with the same expected revision: exactly one wins', async () => {
      const a = await fx.open();
      const b = fx.another();
      for (let round = 0; round < 20; round++) {
        const streamId = `cr-${round}`;
        const created = await Promise.allSettled([
          a.append(streamId, [event('FromA')], 'no-stream'),
          b.append(streamId, [event('FromB')], 'no-stream'),
        ]);
        expect(created.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const lost = created.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(lost.reason).toBeInstanceOf(ConcurrencyError);

        const next = await Promise.allSettled([
          b.append(streamId, [event('FromB'), event('FromB')], 0n),
          a.append(streamId, [event('FromA')], 0n),
        ]);
        expect(next.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect((next.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(
          ConcurrencyError,
        );

        const [viaA, viaB] = [await a.readStream(streamId), await b.readStream(streamId)];
        expect(viaA).toEqual(viaB);
        expect(viaA.map((e) => e.revision)).toEqual(viaA.map((_, i) => BigInt(i)));
        expect(new Set(viaA.slice(1).map((e) => e.type)).size).toBe(1);
        expectValidChain(viaA);
      }
    });

    it("interleaved 'any' appends and sequences through both stores keep one dense, chained history", async () => {
      const a = await fx.open();
      const b = fx.another();
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 ? a : b).append('shared', [event('E', { i }), event('E', { i })], 'any'),
        ),
      );
      const read = await a.readStream('shared');
      expect(read.map((e) => e.revision)).toEqual(Array.from({ length: 80 }, (_, i) => BigInt(i)));
      expectValidChain(read);

      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? a : b).appendWithSequence({
            sequence: 'cr',
            build: (n) => ({ streamId: `CHG-${n}`, events: [event('Raised', { n })] }),
          }),
        ),
      );
      expect(results.map((r) => r.number).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      expect(await b.headPosition()).toBe(110n);
      expect(await a.headPosition()).toBe(110n);
    });

    it('three threads writing at the same time: one winner per race, a dense chained stream, gap-free numbers', async () => {
      const store = await fx.open(); // creates the schema
      const go = new SharedArrayBuffer(8);
      const flags = new Int32Array(go);
      const settings = {
        root: join(__dirname, '..', '..'),
        swc: require.resolve('@swc/core'),
        file: fx.file(),
        go,
        streams: 150,
        hot: 20,
        sequences: 30,
      };
      const workers = ['w1', 'w2', 'w3'].map(
        (name) => new Worker(WORKER, { eval: true, workerData: { ...settings, name } }),
      );
      try {
        const results = workers.map(
          (w) =>
            new Promise<WorkerResult>((resolve, reject) => {
              w.once('message', resolve);
              w.once('error', reject);
            }),
        );
        const deadline = Date.now() + 30_000;
        while (Atomics.load(flags, 1) < workers.length) {
          if (Date.now() > deadline) throw new Error('the workers did not start');
          await sleep(5);
        }
        Atomics.store(flags, 0, 1);
        Atomics.notify(flags, 0);
        const outs = await Promise.all(results);

        expect(outs.flatMap((o) => o.errors)).toEqual([]);
        // every stream was created by exactly one writer, the others got a ConcurrencyError
        const created = outs.flatMap((o) => o.created).sort((x, y) => x - y);
        expect(created).toEqual(Array.from({ length: 150 }, (_, i) => i));
        expect(outs.reduce((n, o) => n + o.createLost, 0)).toBe(300);
        for (const i of [0, 75, 149]) expect(await store.readStream(`race-${i}`)).toHaveLength(1);
        // optimistic writers to one stream: no lost update, no duplicate revision, an intact chain
        const hot = await store.readStream('hot');
        expect(hot.map((e) => e.revision)).toEqual(Array.from({ length: 120 }, (_, i) => BigInt(i)));
        expectValidChain(hot);
        for (let i = 0; i < hot.length; i += 2)
          expect(hot[i].metadata.actor.id).toBe(hot[i + 1].metadata.actor.id);
        // sequence numbers from three writers: 1..90, no duplicate, no gap
        expect(outs.flatMap((o) => o.numbers).sort((x, y) => x - y)).toEqual(
          Array.from({ length: 90 }, (_, i) => i + 1),
        );
        const positions = (await store.readAll({ limit: 10_000 })).map((e) => e.position);
        expect(positions).toHaveLength(150 + 120 + 90);
        expect(new Set(positions).size).toBe(positions.length);
      } finally {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    }, 90_000);

    it('a subscription on one store sees events appended through the other (polling)', async () => {
      const a = fx.another({ pollIntervalMs: 20 });
      const b = await fx.open();
      await b.append('cr-1', [event('Before')], 'no-stream');
      const subscription = a.subscribeToAll({ streamPrefixes: ['cr-'] });
      const received: RecordedEvent[] = [];
      const loop = (async () => {
        for await (const e of subscription) {
          received.push(e);
          if (received.length > 100) throw new Error('runaway subscription');
        }
      })();
      loop.catch(() => undefined); // reported where the test awaits `loop`
      const waitFor = async (n: number) => {
        const deadline = Date.now() + 3000;
        while (received.length < n) {
          if (Date.now() > deadline) throw new Error(`got ${received.length} of ${n}`);
          await sleep(5);
        }
      };
      try {
        await waitFor(1);
        await sleep(50); // now caught up and polling
        await b.append('cr-1', [event('Live1')], 0n);
        await b.append('other-1', [event('Other')], 'no-stream');
        await b.append('cr-2', [event('Live2'), event('Live3')], 'no-stream');
        await waitFor(4);
        await sleep(50);
        expect(received.map((e) => e.type)).toEqual(['Before', 'Live1', 'Live2', 'Live3']);
        expect(received.map((e) => e.position)).toEqual([1n, 2n, 4n, 5n]);
      } finally {
        await subscription.close();
      }
      await loop;
    });
  });
});
