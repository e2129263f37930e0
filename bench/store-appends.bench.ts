import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteEventStore } from '@changeledger/event-store';
import { collectGarbage, progress, round, sampleEvent } from './bench-util';

/** Measured rounds per batch size, after one warm-up round; store and baseline alternate. */
const ROUNDS = 3;

interface AppendFigures {
  eventsPerTransaction: number;
  /** Events appended by the store (and rows inserted by the baseline) in the measured rounds. */
  events: number;
  storeEventsPerSecond: number;
  baselineRowsPerSecond: number;
  /** What the target is judged on: against the plain table. */
  ratio: number;
  /**
   * Not a target, for judging it: the baseline again with the store's unique (stream, revision)
   * index, which the issue requires of the store and which the plain table lacks.
   */
  indexedBaselineRowsPerSecond: number;
  ratioToIndexedBaseline: number;
  rounds: {
    storeEventsPerSecond: number;
    baselineRowsPerSecond: number;
    indexedBaselineRowsPerSecond: number;
  }[];
}

/** A timed phase's work and seconds. */
interface Timed {
  count: number;
  seconds: number;
}

/**
 * Baseline: plain better-sqlite3 inserts of rows of the same size into a table of the same
 * columns, with the same durability settings (WAL, synchronous=FULL) and the same batching;
 * `uniqueIndex` adds the store's (stream, revision) index.
 */
const baseline = (
  file: string,
  perTx: number,
  transactions: number,
  rowSize: { data: string; metadata: string },
  uniqueIndex: boolean,
): Timed => {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE rows (position INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT, stream_id TEXT,
    revision INTEGER, type TEXT, data TEXT, metadata TEXT)`);
  if (uniqueIndex) db.exec('CREATE UNIQUE INDEX rows_stream_revision ON rows (stream_id, revision)');
  const insert = db.prepare(
    'INSERT INTO rows (event_id, stream_id, revision, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)',
  );
  // Ids made beforehand, as the store's events are: the timed loop only inserts.
  const ids = Array.from({ length: perTx * transactions }, () => randomUUID());
  const tx = db.transaction((stream: string, base: number) => {
    for (let i = 0; i < perTx; i++)
      insert.run(
        ids[base + i],
        stream,
        base + i,
        'ImplementationStepRecorded',
        rowSize.data,
        rowSize.metadata,
      );
  });
  collectGarbage();
  const started = process.hrtime.bigint();
  for (let t = 0; t < transactions; t++) tx(`changeRequest-CHG-${t % 1000}`, t * perTx);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  db.close();
  return { count: perTx * transactions, seconds };
};

const measureStore = async (file: string, perTx: number, transactions: number): Promise<Timed> => {
  const store = new SqliteEventStore(file);
  const revisions = new Map<string, bigint>();
  const batches = Array.from({ length: transactions }, () => Array.from({ length: perTx }, sampleEvent));
  collectGarbage();
  const started = process.hrtime.bigint();
  for (let t = 0; t < transactions; t++) {
    const stream = `changeRequest-CHG-${t % 1000}`;
    const expected = revisions.get(stream) ?? 'no-stream';
    const result = await store.append(stream, batches[t], expected);
    revisions.set(stream, result.nextExpectedRevision);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await store.close();
  return { count: perTx * transactions, seconds };
};

const rate = (phases: readonly Timed[]) =>
  phases.reduce((sum, p) => sum + p.count, 0) / phases.reduce((sum, p) => sum + p.seconds, 0);

export const benchStoreAppends = async (): Promise<AppendFigures[]> => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-bench-'));
  try {
    const sample = sampleEvent();
    // The stored metadata carries the hash chain too: size the baseline rows the same.
    const rowSize = {
      data: JSON.stringify(sample.data),
      metadata: JSON.stringify({ ...sample.metadata, previousHash: 'f'.repeat(64), hash: 'e'.repeat(64) }),
    };
    const figures: AppendFigures[] = [];
    for (const [perTx, transactions] of [
      [1, 3000],
      [100, 300],
    ] as const) {
      // A warm-up round first, then rounds alternating baseline and store, pooled: a first
      // round ran up to a fifth slower (V8 still compiling the store's code; the baseline is
      // mostly SQLite's), and this machine's speed drifts between phases seconds apart.
      const bases: Timed[] = [];
      const indexedBases: Timed[] = [];
      const stores: Timed[] = [];
      for (let pass = 0; pass <= ROUNDS; pass++) {
        progress(
          `store appends: ${perTx} event(s) per transaction, ${perTx * transactions} events, ${pass === 0 ? 'warm-up round' : `round ${pass}/${ROUNDS}`}`,
        );
        // the two baselines take turns before and after the store, as the machine drifts
        const plain = () =>
          baseline(join(dir, `baseline-${perTx}-${pass}.sqlite`), perTx, transactions, rowSize, false);
        const indexed = () =>
          baseline(join(dir, `indexed-baseline-${perTx}-${pass}.sqlite`), perTx, transactions, rowSize, true);
        const plainFirst = pass % 2 === 0;
        const before = plainFirst ? plain() : indexed();
        const store = await measureStore(join(dir, `store-${perTx}-${pass}.sqlite`), perTx, transactions);
        const after = plainFirst ? indexed() : plain();
        const [base, indexedBase] = plainFirst ? [before, after] : [after, before];
        if (pass === 0) continue;
        bases.push(base);
        stores.push(store);
        indexedBases.push(indexedBase);
      }
      const store = rate(stores);
      const base = rate(bases);
      const indexedBase = rate(indexedBases);
      figures.push({
        eventsPerTransaction: perTx,
        events: perTx * transactions * ROUNDS,
        storeEventsPerSecond: round(store, 0),
        baselineRowsPerSecond: round(base, 0),
        ratio: round(store / base),
        indexedBaselineRowsPerSecond: round(indexedBase, 0),
        ratioToIndexedBaseline: round(store / indexedBase),
        rounds: stores.map((s, i) => ({
          storeEventsPerSecond: round(rate([s]), 0),
          baselineRowsPerSecond: round(rate([bases[i]]), 0),
          indexedBaselineRowsPerSecond: round(rate([indexedBases[i]]), 0),
        })),
      });
    }
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
