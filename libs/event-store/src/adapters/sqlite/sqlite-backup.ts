import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';

export interface SqliteBackupOptions {
  /** Events copied per step (between steps a progress display can draw). */
  readonly pageSize?: number;
  /** After each step: events copied, the last one's position, the snapshot's last position. */
  readonly onProgress?: (copied: number, position: bigint, head: bigint) => void;
  /**
   * Runs on the finished copy before it takes its name (e.g. the hash-chain check): a copy it
   * refuses (throws) is deleted, not left looking like a backup.
   */
  readonly check?: (file: string) => Promise<void>;
  /** Called once the copy is written, before SQLite's integrity check of it (which says nothing while it runs). */
  readonly onIntegrityCheck?: () => void;
  /** Aborted (Ctrl-C): stops between two pages and removes what was copied. */
  readonly signal?: AbortSignal;
  /** How the finished copy gets its name: the file system's hard link (a test stands in one that has none). */
  readonly link?: (existing: string, name: string) => void;
}

/** What link(2) answers on a file system without hard links (exFAT, FAT, SMB shares, some FUSE). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

export interface SqliteBackupResult {
  readonly events: number;
  /** The last position in the backup (0 for an empty log). */
  readonly head: bigint;
  readonly bytes: number;
}

/**
 * Copies the embedded event store at `source` into a new file `destination` while the service
 * keeps writing: everything is read in one read transaction, so the copy is the log exactly as
 * it stood at one commit (WAL: the writers are not held up; the WAL grows until it ends).
 * SQLite's backup API would start over each time another connection writes, and `VACUUM INTO`
 * runs as one step with nothing to show on a terminal for a large log: hence rows in pages.
 *
 * The copy is written beside `destination` under another name, checked (`check`), flushed to
 * disk and only then given its name: a failed or aborted backup leaves no file that looks like
 * one (nor its partial copy), and an existing file is never overwritten.
 */
export const backupSqliteEventStore = async (
  source: string,
  destination: string,
  options: SqliteBackupOptions = {},
): Promise<SqliteBackupResult> => {
  if (existsSync(destination)) throw new Error(`${destination} exists: a backup never overwrites a file`);
  if (!existsSync(dirname(destination))) throw new Error(`no folder ${dirname(destination)} for the backup`);
  if (!existsSync(source)) throw new Error(`no event store at ${source}`);
  const pageSize = options.pageSize ?? 5_000;
  removeAbandonedCopies(destination);
  const partial = join(
    dirname(destination),
    `${partialPrefix(destination)}${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  const from = new Database(source, { readonly: true, fileMustExist: true });
  let to: Database.Database | undefined;
  let created = false;
  try {
    closeSync(openSync(partial, 'wx')); // ours alone: a file of that name already there is not reused
    created = true;
    from.pragma('busy_timeout = 5000');
    from.exec('BEGIN');
    // The first read fixes the snapshot: the schema, the head and every page come from it.
    const schema = from
      .prepare(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table' DESC, rowid",
      )
      .all() as { type: string; name: string; sql: string }[];
    if (!schema.some((s) => s.type === 'table' && s.name === 'events')) {
      throw new Error(`${source} holds no events table: not a changeledger event store`);
    }
    const { head } = from
      .prepare('SELECT coalesce(max(position), 0) AS head FROM events')
      .safeIntegers(true)
      .get() as { head: bigint };

    to = new Database(partial);
    // Durability comes once, at the end (fsync, then the link to its name), not per page.
    to.pragma('journal_mode = OFF');
    to.pragma('synchronous = OFF');
    for (const { sql } of schema) to.exec(sql);

    const copyRows = (table: string, rows: unknown[][]) => {
      if (rows.length === 0) return;
      const insert = to!.prepare(`INSERT INTO "${table}" VALUES (${rows[0].map(() => '?').join(', ')})`);
      to!.transaction(() => {
        for (const row of rows) insert.run(row);
      })();
    };

    const page = from
      .prepare('SELECT * FROM events WHERE position >= ? ORDER BY position LIMIT ?')
      .raw(true)
      .safeIntegers(true);
    let copied = 0;
    // From the lowest position, not from 1: a row moved to 0 or below (never written so by the
    // service, only around it) is copied too, so that the copy's check finds it as verify does.
    let next = (
      from.prepare('SELECT min(position) AS first FROM events').safeIntegers(true).get() as {
        first: bigint | null;
      }
    ).first;
    while (next !== null) {
      options.signal?.throwIfAborted();
      const rows = page.all(next, pageSize) as unknown[][];
      if (rows.length === 0) break;
      copyRows('events', rows);
      copied += rows.length;
      const last = rows[rows.length - 1][0] as bigint;
      next = last < INT64_MAX ? last + 1n : null;
      options.onProgress?.(copied, last, head);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The other tables (the id sequences) are small: whole, from the same snapshot.
    for (const { name } of schema.filter((s) => s.type === 'table' && s.name !== 'events')) {
      copyRows(
        name,
        from.prepare(`SELECT * FROM "${name}"`).raw(true).safeIntegers(true).all() as unknown[][],
      );
    }
    from.exec('COMMIT');

    options.onIntegrityCheck?.();
    const integrity = to.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new Error(`the copy failed SQLite's integrity check: ${String(integrity)}`);
    to.close();
    to = undefined;
    await options.check?.(partial);
    options.signal?.throwIfAborted();
    flush(partial);
    // A link, not a rename: it fails if `destination` appeared meanwhile (another backup to the
    // same name) instead of replacing it. Where the file system has no hard links, a rename after
    // one more look: only a backup to the same name in the same instant could be replaced.
    try {
      (options.link ?? linkSync)(partial, destination);
      rmSync(partial);
    } catch (error) {
      if (!NO_HARD_LINKS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      if (existsSync(destination)) throw new Error(`${destination} exists: a backup never overwrites a file`);
      renameSync(partial, destination);
    }
    flush(dirname(destination)); // the new name itself
    return { events: copied, head, bytes: statSync(destination).size };
  } catch (error) {
    to?.close();
    if (created)
      for (const file of [partial, `${partial}-wal`, `${partial}-shm`]) rmSync(file, { force: true });
    throw error;
  } finally {
    if (from.inTransaction) from.exec('ROLLBACK');
    from.close();
  }
};

/** The largest position SQLite can hold: nothing comes after it. */
const INT64_MAX = 2n ** 63n - 1n;

const flush = (path: string) => {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

/**
 * What a partial copy of `destination` is named: the host (processes of other hosts or containers
 * sharing the folder have their own process ids), then the process id and a random tag. (The
 * CLI names them by this too, when a second Ctrl-C may leave one.)
 */
export const partialPrefix = (destination: string) => `.${basename(destination)}.partial-${hostname()}-`;

/**
 * Partial copies in `destination`'s folder left by a backup that was killed (SIGKILL, a power
 * cut: no chance to remove its own) on this host, whatever name it was making (dated names,
 * `events-2026-11-28.sqlite`, differ from one day to the next): named after a process that no
 * longer runs, or after this process's id, which a container restarted gets again (this backup
 * has made none yet). One of a running backup is left alone, and so is one this user may not remove.
 */
const removeAbandonedCopies = (destination: string) => {
  const ours = new RegExp(
    `^\\..+\\.partial-${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)-[0-9a-f]{8}(-wal|-shm|-journal)?$`,
  );
  for (const name of readdirSync(dirname(destination))) {
    const match = ours.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && isRunning(pid)) continue;
    try {
      rmSync(join(dirname(destination), name), { force: true });
    } catch {
      // another user's, in a shared folder: theirs to remove
    }
  }
};

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // runs, as another user
  }
};
