import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type NewEvent, SqliteEventStore } from '@changeledger/event-store';
import { collectGarbage, progress, round } from './bench-util';

const sampleEvent = (): NewEvent => ({
  eventId: randomUUID(),
  type: 'ImplementationStepRecorded',
  data: {
    sequence: 1,
    description: 'Drained pve1 and moved its VMs to pve2 before changing the bridge VLAN',
    by: { id: 'u-ivan', name: 'Ivan Implementer' },
    at: new Date().toISOString(),
  },
  metadata: {
    actor: { id: 'u-ivan', name: 'Ivan Implementer', roles: ['implementer'] },
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: randomUUID(),
    schemaVersion: 1,
  },
});

interface AppendFigures {
  eventsPerTransaction: number;
  events: number;
  storeEventsPerSecond: number;
  baselineRowsPerSecond: number;
  ratio: number;
}

/**
 * Baseline: plain better-sqlite3 inserts of rows of the same size into a table of the same
 * shape, with the same durability settings (WAL, synchronous=FULL) and the same batching.
 */
const baseline = (
  dir: string,
  perTx: number,
  transactions: number,
  rowSize: { data: string; metadata: string },
) => {
  const db = new Database(join(dir, `baseline-${perTx}.sqlite`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE rows (position INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT, stream_id TEXT,
    revision INTEGER, type TEXT, data TEXT, metadata TEXT)`);
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
  return (perTx * transactions) / seconds;
};

const measureStore = async (dir: string, perTx: number, transactions: number) => {
  const store = new SqliteEventStore(join(dir, `store-${perTx}.sqlite`));
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
  return (perTx * transactions) / seconds;
};

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
      progress(`store appends: ${perTx} event(s) per transaction, ${perTx * transactions} events`);
      const base = baseline(dir, perTx, transactions, rowSize);
      const store = await measureStore(dir, perTx, transactions);
      figures.push({
        eventsPerTransaction: perTx,
        events: perTx * transactions,
        storeEventsPerSecond: round(store, 0),
        baselineRowsPerSecond: round(base, 0),
        ratio: round(store / base),
      });
    }
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
