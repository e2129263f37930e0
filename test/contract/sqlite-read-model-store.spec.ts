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
    fields: { status: 'string', at: 'string' },
    indexes: [['status', 'at'], ['at']],
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

  it('a shadow fills without secondary indexes; promote gives the live table every index, and queries use them', async () => {
    const file = join(dir, 'read-models.sqlite');
    const store = SqliteReadModelStore.open(file);
    await store.init([spec]);
    const expected = [
      ['at', 'id'],
      ['status', 'at', 'id'],
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
