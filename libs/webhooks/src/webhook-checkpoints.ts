import Database from 'better-sqlite3';

/**
 * The layout of the file (`PRAGMA user_version`), upgraded on open: 0 the first one, 1 padded
 * positions by name, 2 also the event store each checkpoint is a position of.
 */
const LAYOUT = 2;
/** The file, in DATA_DIR, that remembers how far the webhook has been delivered. */
export const WEBHOOK_CHECKPOINTS_FILE = 'webhooks.sqlite';
/** The one webhook's checkpoint. */
export const CHECKPOINT_NAME = 'webhook';

/** A position as stored: 20 digits (2^64 has 20), so that text order is number order. */
const stored = (position: bigint) => position.toString().padStart(20, '0');

/**
 * How far a webhook has been delivered, by name, in `DATA_DIR/webhooks.sqlite`. Not in the
 * read-model store: a rebuild swaps that store's checkpoints for the rebuilt ones, which would
 * send every event again.
 */
export class WebhookCheckpoints {
  private readonly db!: Database.Database;
  private readonly select: Database.Statement<[string], { position: string; log: string | null }>;
  private readonly setLog: Database.Statement<[string, string]>;
  private readonly upsert: Database.Statement<[string, string, string]>;
  private readonly advance: Database.Statement<[string, string, string]>;
  private readonly advanceIfHolder: Database.Statement<[string, string, string, string, string]>;
  private readonly claimLease: Database.Statement<
    [{ name: string; owner: string; now: number; ttl: number }]
  >;
  private readonly leaseHolder: Database.Statement<[string, number], { owner: string }>;
  private readonly releaseLease: Database.Statement<[string, string]>;

  constructor(private readonly file: string) {
    try {
      this.db = new Database(file);
      this.open();
    } catch (error) {
      if (this.db?.open) this.db.close();
      // (better-sqlite3 says only "file is not a database")
      // (not `instanceof Error`: better-sqlite3's errors may come from another realm, as in jest)
      const message = (error as { message?: unknown } | null)?.message;
      throw new Error(
        `the webhook checkpoint file ${file} could not be opened: ${typeof message === 'string' ? message : String(error)}`,
        { cause: error },
      );
    }
    this.select = this.db.prepare('SELECT position, log FROM webhook_checkpoints WHERE name = ?');
    this.setLog = this.db.prepare('UPDATE webhook_checkpoints SET log = ? WHERE name = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO webhook_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    );
    this.advance = this.db.prepare(
      `INSERT INTO webhook_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
       WHERE excluded.position > webhook_checkpoints.position`,
    );
    // a process that lost the lease (stalled past it) must not move the holder's checkpoint
    this.advanceIfHolder = this.db.prepare(
      `INSERT INTO webhook_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
       WHERE excluded.position > webhook_checkpoints.position
         AND EXISTS (SELECT 1 FROM webhook_leases WHERE name = ? AND owner = ?)`,
    );
    this.claimLease = this.db.prepare(
      `INSERT INTO webhook_leases (name, owner, expires_at) VALUES (@name, @owner, @now + @ttl)
       ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
       WHERE webhook_leases.owner = excluded.owner OR webhook_leases.expires_at <= @now`,
    );
    this.leaseHolder = this.db.prepare('SELECT owner FROM webhook_leases WHERE name = ? AND expires_at > ?');
    this.releaseLease = this.db.prepare('DELETE FROM webhook_leases WHERE name = ? AND owner = ?');
  }

  private open(): void {
    this.db.pragma('journal_mode = WAL');
    // Durable across a crash of the process, not of the machine: after a power cut the last
    // deliveries may be sent again (at least once allows that), and no delivery waits for an
    // fsync on the API's thread.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS webhook_checkpoints (
         name TEXT PRIMARY KEY,
         position TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         log TEXT
       )`,
    );
    // Which process delivers (one per file: two would send everything twice, and each would
    // take the other's progress for an operator's skip): see claim.
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS webhook_leases (
         name TEXT PRIMARY KEY,
         owner TEXT NOT NULL,
         expires_at INTEGER NOT NULL
       )`,
    );
    this.upgrade();
    // At every open, not only at an upgrade: a position typed in by hand ("1043") would compare
    // as text below every padded one, and the checkpoint would never move again.
    this.db.exec(
      `UPDATE webhook_checkpoints SET position = substr('00000000000000000000' || position, -20)
       WHERE length(position) < 20 AND position <> '' AND position NOT GLOB '*[^0-9]*'`,
    );
  }

  /**
   * Files of the first layout (2026-11-28, on main for about an hour: a row per target URL, in a
   * `target` column, positions unpadded) are brought to this one: padded positions, by name; files
   * of the second get the `log` column (unknown for their checkpoints until the next start).
   */
  private upgrade(): void {
    if (this.db.pragma('user_version', { simple: true }) === LAYOUT) return;
    this.db
      .transaction(() => {
        const columns = this.db
          .prepare("SELECT name FROM pragma_table_info('webhook_checkpoints')")
          .pluck()
          .all();
        if (columns.includes('target')) {
          // one webhook now, whatever its URL: the furthest any URL got
          const rows = this.db.prepare('SELECT position, updated_at FROM webhook_checkpoints').all() as {
            position: string;
            updated_at: string;
          }[];
          this.db.exec('DELETE FROM webhook_checkpoints');
          this.db.exec('ALTER TABLE webhook_checkpoints RENAME COLUMN target TO name');
          const furthest = rows.reduce<{ position: string; updated_at: string } | undefined>(
            (best, row) => (best && BigInt(best.position) >= BigInt(row.position) ? best : row),
            undefined,
          );
          if (furthest) {
            this.db
              .prepare('INSERT INTO webhook_checkpoints (name, position, updated_at) VALUES (?, ?, ?)')
              .run(CHECKPOINT_NAME, stored(BigInt(furthest.position)), furthest.updated_at);
          }
        }
        // (positions are padded after every open; the rename above leaves the other columns as they were)
        if (!columns.includes('log')) this.db.exec('ALTER TABLE webhook_checkpoints ADD COLUMN log TEXT');
        this.db.pragma(`user_version = ${LAYOUT}`);
      })
      .immediate();
  }

  /** The position delivered through, or undefined for a webhook never started. */
  get(name: string): bigint | undefined {
    const row = this.select.get(name);
    if (!row) return undefined;
    if (!/^\d{1,20}$/.test(row.position)) {
      throw new Error(
        `the webhook checkpoint file ${this.file} holds no position for ${name} but ${JSON.stringify(row.position)}: ` +
          'set it with npm run webhook:skip -- --through POSITION, or remove the file (the webhook then starts at the end of the log)',
      );
    }
    return BigInt(row.position);
  }

  /** The event store the checkpoint is a position of (`sqlite`, `eventstoredb`); null: not known. */
  logOf(name: string): string | null | undefined {
    return this.select.get(name)?.log;
  }

  /** Records which event store the checkpoint's positions are of (a checkpoint must exist). */
  markLog(name: string, log: string): void {
    this.setLog.run(log, name);
  }

  /** Records `position`; never moves a checkpoint back. */
  set(name: string, position: bigint, at: Date): void {
    // One statement (a delivery saves its checkpoint each time): positions are stored as
    // 20-digit text, so that text order is number order up to 2^64 and SQLite can compare them.
    this.advance.run(name, stored(position), at.toISOString());
  }

  /** `set`, only while `owner` holds the lease (a process that lost it moves nothing). */
  setAsHolder(name: string, position: bigint, at: Date, owner: string): void {
    this.advanceIfHolder.run(name, stored(position), at.toISOString(), name, owner);
  }

  /**
   * Takes or renews the lease on delivering `name` until `nowMs + ttlMs`: true when `owner`
   * holds it now, false while another's has not expired. One statement, so of two processes
   * claiming at once one gets it.
   */
  claim(name: string, owner: string, nowMs: number, ttlMs: number): boolean {
    return this.claimLease.run({ name, owner, now: nowMs, ttl: ttlMs }).changes === 1;
  }

  /** Who holds the lease on `name` at `nowMs`, if anyone. */
  holder(name: string, nowMs: number): string | undefined {
    return this.leaseHolder.get(name, nowMs)?.owner;
  }

  /** Gives the lease up (a stop): a process standing by takes over at its next look. */
  release(name: string, owner: string): void {
    this.releaseLease.run(name, owner);
  }

  /** Puts a checkpoint where it is told, back too (a log that ends before it: see the dispatcher). */
  reset(name: string, position: bigint, at: Date): void {
    this.upsert.run(name, stored(position), at.toISOString());
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
