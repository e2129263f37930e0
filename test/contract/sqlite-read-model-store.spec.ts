import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteReadModelStore } from '@changeledger/read-models';
import { readModelStoreContract } from './read-model-store.contract';

/** The shared ReadModelStore contract on the embedded adapter: a fresh file per test. */
readModelStoreContract('sqlite', () => {
  let dir: string | undefined;
  const opened: SqliteReadModelStore[] = [];
  return {
    async open() {
      dir ??= mkdtempSync(join(tmpdir(), 'changeledger-rm-'));
      const store = SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((store) => store.close()));
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
});

describe('SqliteReadModelStore specifics', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'changeledger-rm-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const spec = {
    name: 'things',
    fields: { status: 'string', at: 'string', tags: 'string[]' },
    // ['tags']: the elements joined into one text column here (MongoDB makes it multikey)
    indexes: [['status', 'at'], ['at'], ['tags']],
  } as const;
  /** The secondary indexes of a table, each as its column list. */
  const indexColumns = (file: string, table: string) => {
    const db = new Database(file, { readonly: true });
    try {
      const list = db.prepare(`PRAGMA index_list("${table}")`).all() as { name: string; origin: string }[];
      return list
        .filter((i) => i.origin === 'c')
        .map((i) =>
          (db.prepare(`PRAGMA index_info("${i.name}")`).all() as { name: string }[]).map((c) => c.name),
        )
        .sort();
    } finally {
      db.close();
    }
  };

  it('a rare text beside an array value more than 1,000 documents hold: the answer is whole', async () => {
    const file = join(dir, 'read-models.sqlite');
    const store = SqliteReadModelStore.open(file);
    const searched = {
      name: 'searched',
      fields: { at: 'string', tags: 'string[]', text: 'string' },
      indexes: [['tags', 'at']],
      scanIndexes: ['text'],
    } as const;
    await store.init([searched]);
    // 1,200 documents hold the tag (more than the index scan stops at); three hold the text
    const documents = Array.from({ length: 1200 }, (_, i) => ({
      collection: 'searched',
      document: {
        id: `d-${String(i).padStart(4, '0')}`,
        _position: String(i + 1),
        at: `2030-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`,
        tags: ['common'],
        text: i % 400 === 7 ? `needle ${i}` : `hay ${i}`,
      },
    }));
    await store.commit({ documents, checkpoint: { name: 'cp', position: 1200n } });
    expect(indexColumns(file, 'rm_searched')).toContainEqual(['text', 'id']);
    const found = await store.find<{ id: string; _position: string; text: string }>('searched', {
      where: [
        { field: 'tags', op: 'contains', value: 'common' },
        { field: 'text', op: 'includes', value: 'needle' },
      ],
      orderBy: { field: 'at', direction: 'desc' },
      limit: 50,
    });
    expect(found.map((d) => d.text).sort()).toEqual(['needle 407', 'needle 7', 'needle 807']);
    await store.close();
  });

  it('a column an earlier release added without filling it is filled from the documents once, at the next start', async () => {
    const file = join(dir, 'read-models.sqlite');
    let store = SqliteReadModelStore.open(file);
    await store.init([spec]);
    await store.commit({
      documents: [
        {
          collection: 'things',
          document: { id: 'old', _position: '1', status: 'closed', at: '2026-01-01' } as never,
        },
      ],
      checkpoint: { name: 'cp', position: 1n },
    });
    await store.close();
    // what that release left: NULL in the column, the field in the document, no record of a fill
    const raw = new Database(file);
    const table = raw
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%things'")
      .pluck()
      .get() as string;
    raw.prepare(`UPDATE "${table}" SET status = NULL`).run();
    raw.prepare(`DELETE FROM "${table.replace(/things$/, 'filled_columns')}"`).run();
    raw.close();
    store = SqliteReadModelStore.open(file);
    await store.init([spec]);
    const closed = await store.find('things', {
      where: [{ field: 'status', op: 'eq', value: 'closed' }],
      orderBy: { field: 'id', direction: 'asc' },
      limit: 10,
    });
    expect(closed.map((d) => d.id)).toEqual(['old']);
    await store.close();
  });

  it('an array field a release searched in the documents gets its column and index, filled from them', async () => {
    const file = join(dir, 'read-models.sqlite');
    let store = SqliteReadModelStore.open(file);
    await store.init([spec]);
    const doc = (id: string, tags: string[]) =>
      ({ id, _position: '1', status: 'closed', at: '2026-01-01', tags }) as never;
    await store.commit({
      documents: [
        { collection: 'things', document: doc('plain', ['pve1', 'vm-7']) },
        { collection: 'things', document: doc('odd', ['a\u001fb']) },
        { collection: 'things', document: doc('none', []) },
      ],
      checkpoint: { name: 'cp', position: 1n },
    });
    await store.close();
    // what the earlier release had: no column for the array (and no record of filling one)
    const raw = new Database(file);
    raw.exec('DROP INDEX rm_things__tags');
    raw.exec('ALTER TABLE rm_things DROP COLUMN tags');
    raw.prepare(`DELETE FROM rm_filled_columns WHERE col = 'tags'`).run();
    raw.close();
    store = SqliteReadModelStore.open(file);
    await store.init([spec]);
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT id, tags FROM rm_things ORDER BY id').all()).toEqual([
      { id: 'none', tags: null },
      { id: 'odd', tags: '\u001e' },
      { id: 'plain', tags: '\u001fpve1\u001fvm-7\u001f' },
    ]);
    db.close();
    const having = async (value: string) =>
      (
        await store.find('things', {
          where: [{ field: 'tags', op: 'contains', value }],
          orderBy: { field: 'at', direction: 'desc' },
          limit: 10,
        })
      ).map((d) => d.id);
    expect(await having('vm-7')).toEqual(['plain']);
    expect(await having('vm')).toEqual([]);
    expect(await having('a\u001fb')).toEqual(['odd']);
    expect(await having('a')).toEqual([]);
    expect(indexColumns(file, 'rm_things')).toContainEqual(['tags', 'id']);
    await store.close();
  });

  it('a shadow replaced by a later rebuild refuses to promote, and its discard leaves the later one be', async () => {
    const store = SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
    await store.init([spec]);
    const doc = (id: string, position: string) => ({ id, _position: position, status: 'a', at: position });
    const put = (target: { commit: SqliteReadModelStore['commit'] }, id: string, position: bigint) =>
      target.commit({
        documents: [{ collection: 'things', document: doc(id, String(position)) }],
        checkpoint: { name: 'cp', position },
      });
    await put(store, 'live', 1n);
    const first = await store.createShadow();
    await put(first, 'f', 2n); // gone with the first one's tables
    const second = await store.createShadow(); // the same table names: drops and re-makes them
    // the first rebuild writes on: refused, nothing of it lands in the second one's tables
    await expect(put(first, 'g', 3n)).rejects.toThrow(/dropped/);
    expect(await second.get('things', 'g')).toBeUndefined();
    // a shard of the first rebuild (its own connection, the first one's mark) is refused too
    const shard = await SqliteReadModelStore.openShadow(
      join(dir, 'read-models.sqlite'),
      [spec],
      (first as unknown as SqliteReadModelStore).shadowMark,
    );
    await expect(put(shard, 'h', 3n)).rejects.toThrow(/dropped/);
    await shard.close();
    expect(await second.get('things', 'h')).toBeUndefined();
    await expect(first.promote()).rejects.toThrow(/dropped/);
    expect(await store.get('things', 'live')).toEqual(doc('live', '1'));
    expect(await store.get('things', 'g')).toBeUndefined();
    await first.discard();
    await put(second, 's', 4n);
    await second.promote();
    expect(await store.get('things', 's')).toEqual(doc('s', '4'));
    expect(await store.get('things', 'f')).toBeUndefined();
    expect(await store.get('things', 'live')).toBeUndefined();
    expect(await store.checkpoint('cp')).toBe(4n);
    expect(await store.checkpoint('__shadow')).toBe(0n); // the mark stays behind
    await expect(second.promote()).rejects.toThrow(/dropped/); // nothing left to swap in twice
    await store.close();
  });

  it('a shadow fills without secondary indexes; promote gives the live table every index, and queries use them', async () => {
    const file = join(dir, 'read-models.sqlite');
    const store = SqliteReadModelStore.open(file);
    await store.init([spec]);
    const expected = [
      ['at', 'id'],
      ['status', 'at', 'id'],
      ['tags', 'id'],
    ];
    expect(indexColumns(file, 'rm_things')).toEqual(expected);

    const shadow = await store.createShadow();
    await shadow.commit({
      documents: [
        { collection: 'things', document: { id: 'a', _position: '1', status: 'open', at: 'x' } as never },
      ],
      checkpoint: { name: 'cp', position: 1n },
    });
    expect(indexColumns(file, 'rb_things')).toEqual([]);
    await shadow.promote();
    expect(indexColumns(file, 'rm_things')).toEqual(expected);

    const db = new Database(file, { readonly: true });
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT doc FROM rm_things WHERE status = ? ORDER BY at DESC, id DESC LIMIT 5`,
      )
      .all('open') as { detail: string }[];
    db.close();
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING INDEX rm_things__status_at/);
    expect(
      await store.find('things', {
        where: [{ field: 'status', op: 'eq', value: 'open' }],
        orderBy: { field: 'at', direction: 'desc' },
        limit: 5,
      }),
    ).toHaveLength(1);
    await store.close();
  });
});
