import Database from 'better-sqlite3';

/**
 * How far each webhook target has been delivered, in `DATA_DIR/webhooks.sqlite`. Not in the
 * read-model store: a rebuild swaps that store's checkpoints for the rebuilt ones, which would
 * send every event again. Kept per target URL, so that a new receiver starts afresh.
 */
export class WebhookCheckpoints {
  private readonly db: Database.Database;
  private readonly select: Database.Statement<[string], { position: string }>;
  private readonly upsert: Database.Statement<[string, string, string]>;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // A delivery acknowledged by the receiver is not sent again after a power cut.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS webhook_checkpoints (
         target TEXT PRIMARY KEY,
         position TEXT NOT NULL,
         updated_at TEXT NOT NULL
       )`,
    );
    this.select = this.db.prepare('SELECT position FROM webhook_checkpoints WHERE target = ?');
    this.upsert = this.db.prepare(
      `INSERT INTO webhook_checkpoints (target, position, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (target) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    );
  }

  /** The position delivered through, or undefined for a target never started. */
  get(target: string): bigint | undefined {
    const row = this.select.get(target);
    return row ? BigInt(row.position) : undefined;
  }

  /** Records `position`; never moves a checkpoint back (positions are 64-bit: compared as bigints). */
  set(target: string, position: bigint, at: Date): void {
    this.db
      .transaction(() => {
        const current = this.get(target);
        if (current !== undefined && current >= position) return;
        this.upsert.run(target, position.toString(), at.toISOString());
      })
      .immediate();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
