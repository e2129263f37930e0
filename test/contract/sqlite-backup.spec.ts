import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import {
  backupSqliteEventStore,
  type NewEvent,
  type RecordedEvent,
  SqliteEventStore,
  verifyHashChains,
} from '@changeledger/event-store';

const event = (n: number): NewEvent => ({
  eventId: randomUUID(),
  type: 'ImplementationStepRecorded',
  data: { sequence: n, description: `step ${n}` },
  metadata: {
    actor: { id: 'u-ivan', name: 'Ivan Implementer', roles: ['implementer'] },
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: randomUUID(),
    schemaVersion: 1,
  },
});

/** Creates `CHG-n` through the id sequence, with `size` events in its first append. */
const submitChange = (store: SqliteEventStore, size = 1) =>
  store.appendWithSequence({
    sequence: 'changeRequest',
    build: (n) => ({
      streamId: `changeRequest-CHG-${String(n).padStart(3, '0')}`,
      events: Array.from({ length: size }, (_, i) => event(i)),
    }),
  });

const everything = async (store: SqliteEventStore): Promise<RecordedEvent[]> =>
  store.readAll({ after: 0n, limit: 1_000_000 });

describe('backup of the embedded event store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-backup-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('taken while appends go on, is the log exactly as it stood at one commit, and verifies', async () => {
    const store = new SqliteEventStore(join(dir, 'events.sqlite'));
    try {
      for (let i = 0; i < 60; i++) await submitChange(store, 1 + (i % 4));
      // Appends land between the backup's pages: each progress step starts a few.
      const during: Promise<unknown>[] = [];
      let steps = 0;
      const result = await backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'backup.sqlite'), {
        pageSize: 20,
        onProgress: () => {
          steps++;
          during.push(submitChange(store, 3), submitChange(store, 1));
        },
      });
      await Promise.all(during);
      expect(steps).toBeGreaterThan(5);

      const source = await everything(store);
      expect(source.length).toBeGreaterThan(result.events); // the source went on
      const copy = new SqliteEventStore(join(dir, 'backup.sqlite'));
      try {
        const copied = await everything(copy);
        // ...and the copy is the source's prefix up to the snapshot: no append half in, none torn
        expect(copied.length).toBe(result.events);
        expect(copied.at(-1)?.position).toBe(result.head);
        expect(copied).toEqual(source.filter((e) => e.position <= result.head));
        expect((await verifyHashChains(copy)).valid).toBe(true);
        // The id sequence came along: numbering goes on after the last change in the copy.
        const changes = new Set(copied.map((e) => e.streamId)).size;
        expect((await submitChange(copy)).streamId).toBe(
          `changeRequest-CHG-${String(changes + 1).padStart(3, '0')}`,
        );
      } finally {
        await copy.close();
      }
    } finally {
      await store.close();
    }
  });

  it('copies a row moved to a position no read of the log reaches, and its check then fails as verify does', async () => {
    const store = new SqliteEventStore(join(dir, 'events.sqlite'));
    await store.append('s-1', [event(1), event(2), event(3)], 'no-stream');
    await store.close();
    const db = new Database(join(dir, 'events.sqlite'));
    // the lowest position SQLite holds: the copy must start there, not one below (no such integer)
    db.prepare('UPDATE events SET position = -9223372036854775808 WHERE position = 3').run();
    db.close();
    let checked: Awaited<ReturnType<typeof verifyHashChains>> | undefined;
    const result = await backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'backup.sqlite'), {
      check: async (file) => {
        const copy = new SqliteEventStore(file, { readOnly: true });
        checked = await verifyHashChains(copy);
        await copy.close();
      },
    });
    expect(result.events).toBe(3);
    expect(checked).toMatchObject({
      valid: false,
      firstInvalid: {
        position: '-9223372036854775808',
        reason: expect.stringContaining('no read of the log reaches'),
      },
    });
    const copy = new Database(join(dir, 'backup.sqlite'), { readonly: true });
    expect(
      copy.prepare('SELECT position FROM events ORDER BY position').pluck().safeIntegers(true).all(),
    ).toEqual([-(2n ** 63n), 1n, 2n]);
    copy.close();
  });

  it('an empty log backs up to an empty store', async () => {
    await new SqliteEventStore(join(dir, 'events.sqlite')).close();
    const result = await backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'backup.sqlite'));
    expect(result).toMatchObject({ events: 0, head: 0n });
    const copy = new SqliteEventStore(join(dir, 'backup.sqlite'));
    expect(await copy.headPosition()).toBe(0n);
    await copy.close();
  });

  it('on a file system without hard links (exFAT, SMB: link(2) is EPERM) names the copy by a rename, still never over a file', async () => {
    const store = new SqliteEventStore(join(dir, 'events.sqlite'));
    await submitChange(store, 2);
    await store.close();
    const noHardLinks = () => {
      throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
    };
    const result = await backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'usb.sqlite'), {
      link: noHardLinks,
    });
    expect(result).toMatchObject({ events: 2, head: 2n });
    const copy = new SqliteEventStore(join(dir, 'usb.sqlite'));
    expect(await copy.headPosition()).toBe(2n);
    await copy.close();
    // nothing else left beside it (the partial copy took the name)
    expect(readdirSync(dir).filter((f) => f.includes('usb'))).toEqual(['usb.sqlite']);
    // a file that appeared under the name meanwhile is kept, and the copy removed
    await expect(
      backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'raced.sqlite'), {
        link: noHardLinks,
        check: async () => writeFileSync(join(dir, 'raced.sqlite'), 'the other backup'),
      }),
    ).rejects.toThrow(/raced.sqlite exists: a backup never overwrites a file/);
    expect(readFileSync(join(dir, 'raced.sqlite'), 'utf8')).toBe('the other backup');
    expect(readdirSync(dir).filter((f) => f.includes('raced'))).toEqual(['raced.sqlite']);
  });

  it('never overwrites a file, and leaves nothing behind when the copy is refused', async () => {
    const store = new SqliteEventStore(join(dir, 'events.sqlite'));
    await submitChange(store, 2);
    await store.close();
    writeFileSync(join(dir, 'taken.sqlite'), 'an older backup');
    await expect(
      backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'taken.sqlite')),
    ).rejects.toThrow(/taken.sqlite exists: a backup never overwrites a file/);

    // What a killed backup left on this host (its process gone, or this process's id, which a
    // restarted container gets again) is removed by the next one in that folder, to any name
    // (dated names change daily); a running backup's, another host's and files it did not name
    // are left.
    const partial = (rest: string) => `.kept.sqlite.partial-${hostname()}-${rest}`;
    const removed = [
      partial('999999999-deadbeef'),
      partial('999999999-deadbeef-wal'),
      partial(`${process.pid}-12345678`),
      `.kept-2026-11-28.sqlite.partial-${hostname()}-999999999-0badf00d`,
    ];
    const kept = [
      partial(`${process.ppid}-0badcafe`),
      '.kept.sqlite.partial-elsewhere-999999999-deadbeef',
      partial('999999999-deadbeef.partial-1'),
    ];
    for (const leftover of [...removed, ...kept]) writeFileSync(join(dir, leftover), 'half a copy');
    await backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'kept.sqlite'));
    expect(
      readdirSync(dir)
        .filter((f) => f.includes('kept'))
        .sort(),
    ).toEqual([...kept, 'kept.sqlite'].sort());
    for (const leftover of kept) rmSync(join(dir, leftover));

    const before = readdirSync(dir).sort();
    await expect(
      backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'refused.sqlite'), {
        check: async (file) => {
          // the check sees the finished copy, under a name that is not the backup's
          expect(existsSync(file)).toBe(true);
          expect(file).not.toBe(join(dir, 'refused.sqlite'));
          const copy = new SqliteEventStore(file);
          expect(await copy.headPosition()).toBe(2n);
          await copy.close();
          throw new Error('refused by the check');
        },
      }),
    ).rejects.toThrow('refused by the check');
    expect(readdirSync(dir).sort()).toEqual(before);

    // another backup to the same name, finished while this one ran, is kept, not replaced
    await expect(
      backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'raced.sqlite'), {
        check: async () => writeFileSync(join(dir, 'raced.sqlite'), 'the other backup'),
      }),
    ).rejects.toThrow(/EEXIST/);
    expect(readFileSync(join(dir, 'raced.sqlite'), 'utf8')).toBe('the other backup');
    rmSync(join(dir, 'raced.sqlite'));
    // interrupted (Ctrl-C) between two pages
    const interrupted = new AbortController();
    await expect(
      backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'interrupted.sqlite'), {
        pageSize: 1,
        signal: interrupted.signal,
        onProgress: () => interrupted.abort(new Error('interrupted')),
      }),
    ).rejects.toThrow('interrupted');
    expect(readdirSync(dir).sort()).toEqual(before);

    await expect(
      backupSqliteEventStore(join(dir, 'events.sqlite'), join(dir, 'no-such-folder', 'backup.sqlite')),
    ).rejects.toThrow(/no folder .*no-such-folder for the backup/);
    await expect(
      backupSqliteEventStore(join(dir, 'missing.sqlite'), join(dir, 'backup.sqlite')),
    ).rejects.toThrow(/no event store at/);
    writeFileSync(join(dir, 'other.sqlite'), '');
    await expect(
      backupSqliteEventStore(join(dir, 'other.sqlite'), join(dir, 'backup.sqlite')),
    ).rejects.toThrow(/holds no events table/);
    expect(existsSync(join(dir, 'backup.sqlite'))).toBe(false);
  });
});
