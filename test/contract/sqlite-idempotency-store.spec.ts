import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteIdempotencyStore } from '../../apps/api/src/idempotency/adapters/sqlite-idempotency-store';
import {
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
} from '../../apps/api/src/idempotency/idempotency-store.port';
import { idempotencyStoreContract } from './idempotency-store.contract';

idempotencyStoreContract('SQLite (one file in a temp folder)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-idempotency-'));
  const opened: IdempotencyStore[] = [];
  return {
    async open() {
      const store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((store) => store.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite idempotency store: a file locked by another connection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-idempotency-lock-'));
  const file = join(dir, 'idempotency.sqlite');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('waits for the lock from a timer (the thread serves other work meanwhile), and past its deadline is unavailable (503), storing nothing', async () => {
    // a deadline well past the other connection's COMMIT, however late a loaded machine's timers run
    const store = new SqliteIdempotencyStore(file, { busyDeadlineMs: 1_500 });
    // another API process during a deploy, or an operator's shell, holding the write lock
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      const started = Date.now();
      const claim = store.claim('u-1\u0000k-1', 'fp', new Date());
      setTimeout(() => other.exec('COMMIT'), 150);
      expect(await claim).toMatchObject({ kind: 'claimed' });
      clearInterval(ticker);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      // the wait did not hold the thread: timers ran throughout (about 30 of them; a 5 s
      // busy_timeout froze it, and none ran)
      expect(ticks).toBeGreaterThanOrEqual(5);

      other.exec('BEGIN IMMEDIATE');
      await expect(store.claim('u-1\u0000k-2', 'fp', new Date())).rejects.toBeInstanceOf(
        IdempotencyStoreUnavailableError,
      );
      other.exec('ROLLBACK');
      // nothing of the refused claim was stored: the key is free
      expect(await store.claim('u-1\u0000k-2', 'fp', new Date())).toMatchObject({ kind: 'claimed' });
    } finally {
      other.close();
      await store.close();
    }
  });

  it('closed while it waits for the lock (a shutdown), it answers unavailable (503) at once instead of waiting out its deadline', async () => {
    const store = new SqliteIdempotencyStore(file, { busyDeadlineMs: 5_000 });
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      const started = Date.now();
      const claim = store.claim('u-1\u0000k-3', 'fp', new Date());
      const outcome = claim.then(
        () => 'claimed',
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      await store.close();
      const error = await outcome;
      expect(error).toBeInstanceOf(IdempotencyStoreUnavailableError);
      expect((error as Error).message).toMatch(/closed while waiting for its lock/);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });
});
