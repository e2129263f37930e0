import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
// As the event store: SQLite waits for a lock held by another connection (another API process
// during a deploy, an operator's shell) only briefly, blocking the thread; longer waits are
// retried from a timer, so that the API's other requests go on meanwhile.
import {
  isSqliteBusy,
  SQLITE_BUSY_RETRY_FIRST_MS,
  SQLITE_BUSY_RETRY_MAX_MS,
  SQLITE_BUSY_TIMEOUT_MS,
} from '@changeledger/event-store';
import {
  IDEMPOTENCY_TTL_MS,
  type IdempotencyClaim,
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
  judgeClaim,
  type StoredResponse,
} from '../idempotency-store.port';

/** One claim in this many also deletes the keys older than 24 h. */
const PURGE_EVERY_CLAIMS = 1000;

export interface SqliteIdempotencyStoreOptions {
  /** How long an operation waits for another connection's lock before it is unavailable (503). */
  readonly busyDeadlineMs?: number;
}

interface Row {
  fingerprint: string;
  state: 'pending' | 'done';
  status_code: number | null;
  body: string | null;
  created_at: number;
  alive_at: number | null;
}

export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly db: Database.Database;
  private readonly claimTx: (
    scope: string,
    fingerprint: string,
    now: number,
    reclaimAbandoned: boolean,
  ) => IdempotencyClaim;
  private readonly completeStmt: Database.Statement<[number, string, string, number]>;
  private readonly renewStmt: Database.Statement<[number, string, number]>;
  private readonly releaseStmt: Database.Statement<[string, number]>;
  private readonly purgeStmt: Database.Statement<[number]>;
  private readonly settleStmt: Database.Statement<[number, string, string, number]>;
  private claimsSincePurge = 0;
  private readonly busyDeadlineMs: number;

  constructor(
    private readonly file: string,
    options: SqliteIdempotencyStoreOptions = {},
  ) {
    this.busyDeadlineMs = options.busyDeadlineMs ?? 5000;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 }); // as the event store's
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000'); // opening: another process may be creating the table
    this.db.exec(`CREATE TABLE IF NOT EXISTS idempotency (
      scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL,
      status_code INTEGER, body TEXT, created_at INTEGER NOT NULL, alive_at INTEGER)`);
    // Files from before 2026-11-29 get the column of `renew` (another process opening the file
    // at the same moment may add it first)
    const columns = this.db.prepare("SELECT name FROM pragma_table_info('idempotency')").pluck().all();
    if (!columns.includes('alive_at')) {
      try {
        this.db.exec('ALTER TABLE idempotency ADD COLUMN alive_at INTEGER');
      } catch (error) {
        if (!/duplicate column name/i.test((error as { message?: string }).message ?? '')) throw error;
      }
    }
    this.db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    const get = this.db.prepare<[string], Row>('SELECT * FROM idempotency WHERE scope = ?');
    const put = this.db.prepare<[string, string, number]>(
      `INSERT INTO idempotency (scope, fingerprint, state, created_at) VALUES (?, ?, 'pending', ?)
       ON CONFLICT (scope) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'pending',
         status_code = NULL, body = NULL, created_at = excluded.created_at, alive_at = NULL`,
    );
    const tx = this.db.transaction(
      (scope: string, fingerprint: string, now: number, reclaimAbandoned: boolean): IdempotencyClaim => {
        const row = get.get(scope);
        const found = row
          ? judgeClaim(
              { ...row, statusCode: row.status_code, claimedAt: row.created_at, aliveAt: row.alive_at },
              fingerprint,
              now,
              reclaimAbandoned,
            )
          : { kind: 'take-over' as const, claimedAt: now };
        if (found.kind !== 'take-over') return found;
        put.run(scope, fingerprint, found.claimedAt);
        return { kind: 'claimed', claimedAt: found.claimedAt };
      },
    );
    this.claimTx = (s, f, n, r) => tx.immediate(s, f, n, r);
    this.renewStmt = this.db.prepare(
      // never back: a slow renewal may land after a later one
      `UPDATE idempotency SET alive_at = MAX(COALESCE(alive_at, 0), ?)
       WHERE scope = ? AND created_at = ? AND state = 'pending'`,
    );
    this.completeStmt = this.db.prepare(
      `UPDATE idempotency SET state = 'done', status_code = ?, body = ?
       WHERE scope = ? AND created_at = ? AND state = 'pending'`,
    );
    this.settleStmt = this.db.prepare(
      // never over a success: two repeats looking at once, a "not found" must not replace a "found"
      `UPDATE idempotency SET status_code = ?, body = ?
       WHERE scope = ? AND created_at = ? AND state = 'done' AND status_code >= 400`,
    );
    this.releaseStmt = this.db.prepare(
      `DELETE FROM idempotency WHERE scope = ? AND created_at = ? AND state = 'pending'`,
    );
    this.purgeStmt = this.db.prepare('DELETE FROM idempotency WHERE created_at <= ?');
  }

  async claim(
    scope: string,
    fingerprint: string,
    now: Date,
    options: { readonly reclaimAbandoned?: boolean } = {},
  ): Promise<IdempotencyClaim> {
    if (++this.claimsSincePurge >= PURGE_EVERY_CLAIMS) {
      this.claimsSincePurge = 0;
      await this.purgeExpired(now);
    }
    return this.whenFree(() =>
      this.claimTx(scope, fingerprint, now.getTime(), options.reclaimAbandoned === true),
    );
  }

  async renew(scope: string, claimedAt: number, now: Date): Promise<void> {
    await this.whenFree(() => this.renewStmt.run(now.getTime(), scope, claimedAt));
  }

  async complete(scope: string, claimedAt: number, response: StoredResponse): Promise<void> {
    const body = JSON.stringify(response.body);
    await this.whenFree(() => this.completeStmt.run(response.statusCode, body, scope, claimedAt));
  }

  async settle(scope: string, claimedAt: number, response: StoredResponse): Promise<void> {
    const body = JSON.stringify(response.body);
    await this.whenFree(() => this.settleStmt.run(response.statusCode, body, scope, claimedAt));
  }

  async release(scope: string, claimedAt: number): Promise<void> {
    await this.whenFree(() => this.releaseStmt.run(scope, claimedAt));
  }

  async purgeExpired(now: Date): Promise<number> {
    return this.whenFree(() => this.purgeStmt.run(now.getTime() - IDEMPOTENCY_TTL_MS).changes);
  }

  /**
   * Runs `operation` (one statement or transaction: all or nothing), again after a growing pause
   * while another connection holds the file's lock, until the deadline: then 503.
   */
  private async whenFree<T>(operation: () => T): Promise<T> {
    const deadline = Date.now() + this.busyDeadlineMs;
    for (let pause = SQLITE_BUSY_RETRY_FIRST_MS; ; pause = Math.min(pause * 2, SQLITE_BUSY_RETRY_MAX_MS)) {
      try {
        return operation();
      } catch (error) {
        if (!isSqliteBusy(error)) throw error;
        if (Date.now() + pause > deadline) {
          throw new IdempotencyStoreUnavailableError(
            `${this.file} is locked by another connection (waited ${this.busyDeadlineMs} ms)`,
            { cause: error },
          );
        }
        await sleep(pause);
        if (!this.db.open) {
          throw new IdempotencyStoreUnavailableError(`${this.file} was closed while waiting for its lock`);
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
