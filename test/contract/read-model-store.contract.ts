/**
 * The shared contract of the ReadModelStore port. Every adapter runs this suite through a fixture.
 *
 * The fixture hands every test a store of its own (a fresh file, a fresh database): a shadow's
 * `promote` replaces the whole store, checkpoints included. Collection and checkpoint names are
 * random per test all the same. Values that are sorted on are ASCII, so the expected orders
 * (plain `<` in JavaScript) are byte orders for every backend. Nulls sort lowest (first
 * ascending, last descending) and are only ever sorted on in string fields that hold no ''
 * (adapters may treat a null like '' there); `false` sorts before `true`.
 */
import { randomUUID } from 'node:crypto';
import {
  CheckpointMovedError,
  type CollectionSpec,
  type Condition,
  type Query,
  type ReadModelDocument,
  type ReadModelStore,
} from '@changeledger/read-models';

export interface ReadModelStoreFixture {
  /** A fresh, empty store of this test's own (`fixture()` is called once per test). */
  open(): Promise<ReadModelStore>;
  /** Called after each test: closes what `open` opened (a store may already be closed) and cleans up. */
  cleanup(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// helpers

const uid = () => randomUUID().replace(/-/g, '').slice(0, 12);

const MAX_U64 = 18_446_744_073_709_551_615n;

interface Item extends ReadModelDocument {
  readonly status: string;
  readonly active: boolean;
  readonly rank: number;
  readonly at: string;
  readonly tags: string[];
  readonly label: string | null;
  readonly [more: string]: unknown;
}

const itemsSpec = (name: string): CollectionSpec => ({
  name,
  fields: {
    status: 'string',
    active: 'boolean',
    rank: 'number',
    at: 'string',
    label: 'string',
    tags: 'string[]',
  },
  // ['tags', 'at']: over an array field (a multikey index on MongoDB; SQLite indexes the elements joined)
  indexes: [['status', 'at'], ['active', 'at'], ['label'], ['rank'], ['tags', 'at']],
});

const item = (
  id: string,
  position: string | bigint,
  fields: Partial<Omit<Item, 'id' | '_position'>> = {},
): Item => ({
  id,
  _position: position.toString(),
  status: 'open',
  active: true,
  rank: 1,
  at: '2030-01-01',
  tags: [],
  label: null,
  ...fields,
});

const ids = (documents: readonly ReadModelDocument[]) => documents.map((d) => d.id);

type Sortable = string | number | boolean | null | undefined;

/** The contract's order: nulls lowest, false < true, otherwise `<` (ASCII strings, numbers). */
const compareValues = (a: Sortable, b: Sortable): number => {
  const nullA = a === null || a === undefined;
  const nullB = b === null || b === undefined;
  if (nullA || nullB) return nullA && nullB ? 0 : nullA ? -1 : 1;
  if (a === b) return 0;
  return (a as string | number) < (b as string | number) ? -1 : 1;
};

const expectedOrder = <D extends ReadModelDocument>(
  documents: readonly D[],
  field: string,
  direction: 'asc' | 'desc',
): D[] =>
  [...documents].sort((x, y) => {
    const by = compareValues(
      (x as unknown as Record<string, Sortable>)[field],
      (y as unknown as Record<string, Sortable>)[field],
    );
    const c = by !== 0 ? by : compareValues(x.id, y.id);
    return direction === 'asc' ? c : -c;
  });

/** What a condition means, in JavaScript, for computing expected results. */
const matches = (document: ReadModelDocument, condition: Condition): boolean => {
  const value = (document as unknown as Record<string, unknown>)[condition.field];
  switch (condition.op) {
    case 'eq':
      return value === condition.value;
    case 'gte':
      return (
        value !== null &&
        value !== undefined &&
        typeof value === typeof condition.value &&
        value >= condition.value
      );
    case 'lt':
      return (
        value !== null &&
        value !== undefined &&
        typeof value === typeof condition.value &&
        value < condition.value
      );
    case 'contains':
      return Array.isArray(value) && value.includes(condition.value);
    case 'includes':
      return typeof value === 'string' && value.includes(condition.value);
  }
};

// ---------------------------------------------------------------------------------------------

export const readModelStoreContract = (adapterName: string, fixture: () => ReadModelStoreFixture): void => {
  describe(`ReadModelStore contract: ${adapterName}`, () => {
    let fx: ReadModelStoreFixture;
    let store: ReadModelStore;
    /** Collection and checkpoint names of this test. */
    let items: string;
    let other: string;
    let cp: string;

    const put = (
      target: ReadModelStore,
      documents: readonly { collection: string; document: ReadModelDocument }[],
      checkpoint: bigint,
      name = cp,
    ) => target.commit({ documents, checkpoint: { name, position: checkpoint } });
    const into = (collection: string, ...documents: ReadModelDocument[]) =>
      documents.map((document) => ({ collection, document }));
    const everything = (target: ReadModelStore, collection: string) =>
      target.find<Item>(collection, { where: [], orderBy: { field: 'id', direction: 'asc' }, limit: 10_000 });

    beforeEach(async () => {
      const suffix = uid();
      items = `items_${suffix}`;
      other = `other_${suffix}`;
      cp = `cp_${suffix}`;
      fx = fixture();
      store = await fx.open();
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    // -------------------------------------------------------------------------------------------
    describe('init', () => {
      it('is idempotent: initialising again (also with more collections) keeps what is stored', async () => {
        await store.init([itemsSpec(items)]);
        const a = item('a', '1', { tags: ['x'] });
        await put(store, into(items, a), 1n);
        await store.init([itemsSpec(items)]);
        await store.init([itemsSpec(items), itemsSpec(other)]);
        await store.init([itemsSpec(other), itemsSpec(items)]);
        expect(await store.get(items, 'a')).toStrictEqual(a);
        expect(ids(await everything(store, items))).toEqual(['a']);
        expect(
          ids(
            await store.find(items, {
              where: [{ field: 'status', op: 'eq', value: 'open' }],
              orderBy: { field: 'at', direction: 'asc' },
              limit: 10,
            }),
          ),
        ).toEqual(['a']);
        const b = item('b', '2');
        await put(store, into(other, b), 2n);
        expect(await store.get(other, 'b')).toStrictEqual(b);
        expect(await store.checkpoint(cp)).toBe(2n);
      });

      it('a field the documents already held becomes a queried field later: old documents are found by it', async () => {
        // compliance_facts gained a `submittedAt` column its documents already had: the report's
        // filter on it must find the changes closed before the upgrade too
        await store.init([itemsSpec(items)]);
        const old = { ...item('old', '1', { at: '2030-01-01' }), owner: 'ana', done: true, row: { n: [1] } };
        await put(store, into(items, old), 1n);
        const grown: CollectionSpec = {
          ...itemsSpec(items),
          fields: { ...itemsSpec(items).fields, owner: 'string', done: 'boolean', row: 'json' },
          indexes: [...itemsSpec(items).indexes, ['owner']],
        };
        await store.init([grown]);
        const found = async (where: Parameters<typeof store.find>[1]['where']) =>
          ids(await store.find(items, { where, orderBy: { field: 'id', direction: 'asc' }, limit: 10 }));
        expect(await found([{ field: 'owner', op: 'eq', value: 'ana' }])).toEqual(['old']);
        expect(await found([{ field: 'owner', op: 'gte', value: 'a' }])).toEqual(['old']);
        expect(await found([{ field: 'done', op: 'eq', value: true }])).toEqual(['old']);
        const rows = await store.find<typeof old>(items, {
          where: [],
          orderBy: { field: 'id', direction: 'asc' },
          limit: 10,
          select: ['row', 'owner', 'done'],
        });
        expect(rows).toStrictEqual([
          { id: 'old', _position: '1', row: { n: [1] }, owner: 'ana', done: true },
        ]);
        expect(await store.get(items, 'old')).toStrictEqual(old);
      });

      it('a field added to a collection later (an upgrade): old documents lack it, new ones have it, both stay readable', async () => {
        await store.init([itemsSpec(items)]);
        const old = item('old', '1', { at: '2030-01-01' });
        await put(store, into(items, old), 1n);
        const grown: CollectionSpec = {
          ...itemsSpec(items),
          fields: { ...itemsSpec(items).fields, owner: 'string', row: 'json' },
          indexes: [...itemsSpec(items).indexes, ['owner']],
        };
        await store.init([grown]);
        const fresh = {
          ...item('new', '2', { at: '2030-01-02' }),
          owner: 'ana',
          row: { title: 'T', n: [1, 2] },
        };
        await put(store, into(items, fresh), 2n);
        expect(await store.get(items, 'old')).toStrictEqual(old);
        expect(await store.get(items, 'new')).toStrictEqual(fresh);
        const rows = await store.find<Item>(items, {
          where: [],
          orderBy: { field: 'at', direction: 'asc' },
          limit: 10,
          select: ['row', 'owner'],
        });
        expect(ids(rows)).toEqual(['old', 'new']);
        expect(rows[0].row ?? null).toBeNull();
        expect(rows[1]).toStrictEqual({ id: 'new', _position: '2', row: fresh.row, owner: 'ana' });
        expect(
          ids(
            await store.find(items, {
              where: [{ field: 'owner', op: 'eq', value: 'ana' }],
              orderBy: { field: 'id', direction: 'asc' },
              limit: 10,
            }),
          ),
        ).toEqual(['new']);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('documents', () => {
      beforeEach(() => store.init([itemsSpec(items), itemsSpec(other)]));

      it('round-trips nested documents exactly: arrays, nested objects, nulls, booleans, numbers, unicode', async () => {
        const rich = {
          ...item('rich-1', '7', { label: 'Ünïcödé ✓ 变更 🚀', tags: ['db', 'web', 'ünï'] }),
          zero: 0,
          negative: -12.5,
          fraction: 0.1,
          large: 2 ** 53 - 1,
          yes: true,
          no: false,
          nothing: null,
          empty: '',
          quoted: 'say "hi" \\ back\nslash\ttab',
          emptyArray: [],
          emptyObject: {},
          list: [1, 'two', null, true, false, { deep: [[], [1, [2, [3]]]] }],
          nested: { a: { b: { c: 'd', n: null, arr: [{ x: 1 }, { y: [true] }] } }, ключ: '值', e: {} },
        } satisfies Item;
        const plain = item('rich-2', '18446744073709551615');
        const elsewhere = item('rich-1', '3', { status: 'closed', nested: { only: 'other' } });
        await put(store, [...into(items, rich, plain), ...into(other, elsewhere)], 7n);

        expect(await store.get(items, 'rich-1')).toStrictEqual(rich);
        expect(await store.get(items, 'rich-2')).toStrictEqual(plain);
        expect((await store.get<Item>(items, 'rich-2'))?._position).toBe('18446744073709551615');
        expect(await store.get(other, 'rich-1')).toStrictEqual(elsewhere);
        expect(await store.get(items, 'missing')).toBeUndefined();
        expect(await store.get(other, 'rich-2')).toBeUndefined();

        const many = await store.getMany<Item>(items, ['rich-2', 'missing', 'rich-1', 'rich-1']);
        expect([...many.keys()].sort()).toEqual(['rich-1', 'rich-2']);
        expect(many.get('rich-1')).toStrictEqual(rich);
        expect(many.get('rich-2')).toStrictEqual(plain);
        expect((await store.getMany(items, [])).size).toBe(0);
        expect((await store.getMany(items, ['nope', 'nada'])).size).toBe(0);
        const fromOther = await store.getMany(other, ['rich-1', 'rich-2']);
        expect([...fromOther.keys()]).toEqual(['rich-1']);
        expect(fromOther.get('rich-1')).toStrictEqual(elsewhere);

        // find returns the same documents, whole
        expect(await everything(store, items)).toStrictEqual([rich, plain]);
      });

      it('guarded upsert: a lower or equal _position never overwrites, a higher one replaces the whole document', async () => {
        const v5 = item('doc', '5', { status: 'five', tags: ['a'], extra: { kept: 'no' } });
        await put(store, into(items, v5), 5n);
        await put(store, into(items, item('doc', '3', { status: 'three' })), 6n);
        expect(await store.get(items, 'doc')).toStrictEqual(v5);
        await put(store, into(items, item('doc', '5', { status: 'five again' })), 7n);
        expect(await store.get(items, 'doc')).toStrictEqual(v5);
        await put(store, into(items, item('doc', '0', { status: 'zero' })), 8n);
        expect(await store.get(items, 'doc')).toStrictEqual(v5);

        const v6 = item('doc', '6', { status: 'six', tags: [] }); // no `extra`: replaced, not merged
        await put(store, into(items, v6), 9n);
        expect(await store.get(items, 'doc')).toStrictEqual(v6);
        expect((await store.getMany(items, ['doc'])).get('doc')).toStrictEqual(v6);
        // the queried fields follow the document
        const byStatus = (status: string) =>
          store.find(items, {
            where: [{ field: 'status', op: 'eq', value: status }],
            orderBy: { field: 'id', direction: 'asc' },
            limit: 10,
          });
        expect(ids(await byStatus('six'))).toEqual(['doc']);
        expect(ids(await byStatus('five'))).toEqual([]);
      });

      it('guarded upsert compares positions as numbers ("9" < "10"), up to 2^64 - 1', async () => {
        await put(store, into(items, item('n', '9', { status: 'nine' })), 9n);
        await put(store, into(items, item('n', '10', { status: 'ten' })), 10n);
        expect((await store.get<Item>(items, 'n'))?.status).toBe('ten');
        await put(store, into(items, item('n', '9', { status: 'nine again' })), 11n);
        expect(await store.get(items, 'n')).toStrictEqual(item('n', '10', { status: 'ten' }));
        await put(store, into(items, item('n', '99', { status: 'ninety-nine' })), 12n);
        await put(store, into(items, item('n', '100', { status: 'hundred' })), 13n);
        expect((await store.get<Item>(items, 'n'))?.status).toBe('hundred');

        const top = item('top', MAX_U64, { status: 'max' });
        await put(store, into(items, item('top', MAX_U64 - 1n, { status: 'max-1' })), 14n);
        await put(store, into(items, top), 15n);
        await put(store, into(items, item('top', MAX_U64 - 1n, { status: 'late' })), 16n);
        await put(store, into(items, item('top', '9223372036854775808', { status: '2^63' })), 17n);
        expect(await store.get(items, 'top')).toStrictEqual(top);
      });

      it('repeating a whole batch changes nothing', async () => {
        const batchA = [
          ...into(items, item('a', '10', { status: 'a10' }), item('b', '11', { status: 'b11' })),
          ...into(other, item('o', '11', { status: 'o11' })),
        ];
        await put(store, batchA, 11n);
        const batchB = [
          ...into(items, item('a', '12', { status: 'a12', tags: ['later'] })),
          ...into(other, item('p', '12')),
        ];
        await put(store, batchB, 12n);
        const snapshot = async () => ({
          items: await everything(store, items),
          other: await everything(store, other),
          checkpoint: await store.checkpoint(cp),
        });
        const before = await snapshot();
        expect(before.items.map((d) => d.status)).toEqual(['a12', 'b11']);
        expect(before.checkpoint).toBe(12n);

        await put(store, batchA, 11n); // a crash before the checkpoint moved: A comes again
        expect(await snapshot()).toStrictEqual(before);
        await put(store, batchB, 12n);
        await put(store, batchB, 12n);
        expect(await snapshot()).toStrictEqual(before);
        await put(store, [...batchA, ...batchB], 12n);
        expect(await snapshot()).toStrictEqual(before);
      });

      it('the same document twice in one batch: the higher position wins, in either order', async () => {
        await put(
          store,
          into(
            items,
            item('x', '8', { status: 'x8' }),
            item('x', '6', { status: 'x6' }),
            item('y', '6', { status: 'y6' }),
            item('y', '8', { status: 'y8' }),
          ),
          8n,
        );
        expect(await store.get(items, 'x')).toStrictEqual(item('x', '8', { status: 'x8' }));
        expect(await store.get(items, 'y')).toStrictEqual(item('y', '8', { status: 'y8' }));
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('checkpoints', () => {
      beforeEach(() => store.init([itemsSpec(items)]));

      it('is 0n when never written, only moves forward, and each name is its own', async () => {
        expect(await store.checkpoint(cp)).toBe(0n);
        expect(await store.checkpoint(`${cp}_never`)).toBe(0n);
        await put(store, [], 5n); // a batch without documents still moves it
        expect(await store.checkpoint(cp)).toBe(5n);
        await put(store, into(items, item('a', '3')), 3n);
        expect(await store.checkpoint(cp)).toBe(5n);
        await put(store, [], 5n);
        expect(await store.checkpoint(cp)).toBe(5n);
        await put(store, [], 0n);
        expect(await store.checkpoint(cp)).toBe(5n);
        await put(store, [], 6n);
        expect(await store.checkpoint(cp)).toBe(6n);

        await put(store, [], 2n, `${cp}_b`);
        expect(await store.checkpoint(`${cp}_b`)).toBe(2n);
        expect(await store.checkpoint(cp)).toBe(6n);
        // the document of the batch at 3 was written even though the checkpoint stayed at 5
        expect((await store.get(items, 'a'))?._position).toBe('3');
      });

      it('is 64-bit safe and numeric: 9 < 10, and 18446744073709551615 round-trips exactly', async () => {
        await put(store, [], 9n);
        await put(store, [], 10n);
        expect(await store.checkpoint(cp)).toBe(10n);
        await put(store, [], 9n);
        expect(await store.checkpoint(cp)).toBe(10n);
        await put(store, [], 99n);
        await put(store, [], 100n);
        expect(await store.checkpoint(cp)).toBe(100n);
        await put(store, [], 9_007_199_254_740_993n); // above 2^53: no float on the way
        expect(await store.checkpoint(cp)).toBe(9_007_199_254_740_993n);
        await put(store, [], MAX_U64);
        expect(await store.checkpoint(cp)).toBe(MAX_U64);
        await put(store, [], MAX_U64 - 1n);
        await put(store, [], 9_223_372_036_854_775_808n);
        expect(await store.checkpoint(cp)).toBe(MAX_U64);

        await put(store, [], MAX_U64, `${cp}_top`);
        expect(await store.checkpoint(`${cp}_top`)).toBe(18_446_744_073_709_551_615n);
      });

      it('commit with `expect`: writes when that checkpoint holds the value (0n when absent), else writes nothing and says so', async () => {
        const generation = `${cp}_generation`;
        await store.commit({
          documents: into(items, item('a', '1')),
          checkpoint: { name: cp, position: 1n },
          expect: { name: generation, position: 0n },
        });
        expect((await store.get(items, 'a'))?._position).toBe('1');
        await put(store, [], 7n, generation);

        const refused = store.commit({
          documents: into(items, item('a', '2'), item('b', '2')),
          checkpoint: { name: cp, position: 2n },
          expect: { name: generation, position: 6n },
        });
        await expect(refused).rejects.toThrow(CheckpointMovedError);
        await expect(refused).rejects.toMatchObject({
          checkpoint: generation,
          expected: 6n,
          found: 7n,
          maybeWritten: false,
        });
        expect(ids(await everything(store, items))).toEqual(['a']);
        expect((await store.get(items, 'a'))?._position).toBe('1');
        expect(await store.checkpoint(cp)).toBe(1n);

        await store.commit({
          documents: into(items, item('a', '2'), item('b', '2')),
          checkpoint: { name: cp, position: 2n },
          expect: { name: generation, position: 7n },
        });
        expect(ids(await everything(store, items))).toEqual(['a', 'b']);
        expect(await store.checkpoint(cp)).toBe(2n);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('find', () => {
      const TAGS = [[], ['db'], ['web', 'db'], ['dbx'], ['web']];
      /** 16 documents; ids in another order than the fields, ties everywhere. */
      const dataset = (): Item[] =>
        Array.from({ length: 16 }, (_, i) =>
          item(`it-${String((i * 11) % 16).padStart(2, '0')}`, String(100 + i), {
            status: ['open', 'closed', 'draft'][i % 3],
            active: i % 2 === 0,
            rank: (i * 7) % 10,
            at: `2030-01-${String(1 + ((i * 5) % 16)).padStart(2, '0')}`,
            tags: [...TAGS[i % 5]],
            label: i % 4 === 0 ? null : `L${(i * 3) % 5}`,
          }),
        );
      let all: Item[];

      beforeEach(async () => {
        await store.init([itemsSpec(items), itemsSpec(other)]);
        all = dataset();
        await put(
          store,
          [...into(items, ...all), ...into(other, item('it-00', '1', { status: 'elsewhere' }))],
          200n,
        );
      });

      /** Runs the query and compares with what the contract's semantics give on the dataset. */
      const check = async (query: Query, options: { some?: boolean } = {}) => {
        const expected = expectedOrder(
          all.filter((d) => query.where.every((c) => matches(d, c))),
          query.orderBy.field,
          query.orderBy.direction,
        ).slice(0, query.limit);
        if (options.some !== false) {
          // a query that matches nothing or everything would not test the filter
          expect(expected.length).toBeGreaterThan(0);
          if (query.where.length > 0) expect(expected.length).toBeLessThan(all.length);
        }
        const found = await store.find<Item>(items, query);
        expect(ids(found)).toEqual(ids(expected));
        expect(found).toStrictEqual(expected);
        return found;
      };
      const byId = { field: 'id', direction: 'asc' } as const;

      it('eq on strings, booleans, numbers and id', async () => {
        await check({ where: [{ field: 'status', op: 'eq', value: 'open' }], orderBy: byId, limit: 100 });
        await check({
          where: [{ field: 'status', op: 'eq', value: 'closed' }],
          orderBy: { field: 'at', direction: 'asc' },
          limit: 100,
        });
        const yes = await check({
          where: [{ field: 'active', op: 'eq', value: true }],
          orderBy: byId,
          limit: 100,
        });
        const no = await check({
          where: [{ field: 'active', op: 'eq', value: false }],
          orderBy: byId,
          limit: 100,
        });
        expect(yes.length + no.length).toBe(all.length);
        expect(yes.every((d) => d.active === true) && no.every((d) => d.active === false)).toBe(true);
        await check({ where: [{ field: 'rank', op: 'eq', value: 4 }], orderBy: byId, limit: 100 });
        await check({ where: [{ field: 'id', op: 'eq', value: 'it-05' }], orderBy: byId, limit: 100 });
        await check(
          { where: [{ field: 'status', op: 'eq', value: 'OPEN' }], orderBy: byId, limit: 100 },
          { some: false },
        );
        expect(
          await store.find(items, {
            where: [{ field: 'status', op: 'eq', value: 'nope' }],
            orderBy: byId,
            limit: 100,
          }),
        ).toEqual([]);
        await check({
          where: [
            { field: 'status', op: 'eq', value: 'open' },
            { field: 'active', op: 'eq', value: false },
          ],
          orderBy: byId,
          limit: 100,
        });
      });

      it('gte / lt ranges on strings (and numbers)', async () => {
        await check({
          where: [
            { field: 'at', op: 'gte', value: '2030-01-05' },
            { field: 'at', op: 'lt', value: '2030-01-11' },
          ],
          orderBy: { field: 'at', direction: 'asc' },
          limit: 100,
        });
        await check({
          where: [{ field: 'at', op: 'gte', value: '2030-01-09' }],
          orderBy: { field: 'at', direction: 'desc' },
          limit: 100,
        });
        await check({ where: [{ field: 'at', op: 'lt', value: '2030-01-04' }], orderBy: byId, limit: 100 });
        // the bounds: gte includes, lt excludes
        const exact = await check({
          where: [
            { field: 'at', op: 'gte', value: '2030-01-06' },
            { field: 'at', op: 'lt', value: '2030-01-07' },
          ],
          orderBy: byId,
          limit: 100,
        });
        expect(exact.map((d) => d.at)).toEqual(['2030-01-06']);
        await check({
          where: [
            { field: 'status', op: 'eq', value: 'draft' },
            { field: 'at', op: 'gte', value: '2030-01-03' },
          ],
          orderBy: { field: 'at', direction: 'asc' },
          limit: 100,
        });
        await check({
          where: [
            { field: 'rank', op: 'gte', value: 3 },
            { field: 'rank', op: 'lt', value: 7 },
          ],
          orderBy: { field: 'rank', direction: 'asc' },
          limit: 100,
        });
      });

      it('contains on array fields (whole elements, not substrings)', async () => {
        const db = await check({
          where: [{ field: 'tags', op: 'contains', value: 'db' }],
          orderBy: byId,
          limit: 100,
        });
        expect(db.every((d) => d.tags.includes('db'))).toBe(true);
        expect(all.some((d) => d.tags.includes('dbx') && !d.tags.includes('db'))).toBe(true); // the decoy exists
        await check({ where: [{ field: 'tags', op: 'contains', value: 'dbx' }], orderBy: byId, limit: 100 });
        await check({
          where: [
            { field: 'tags', op: 'contains', value: 'web' },
            { field: 'tags', op: 'contains', value: 'db' },
          ],
          orderBy: byId,
          limit: 100,
        });
        await check({
          where: [
            { field: 'tags', op: 'contains', value: 'web' },
            { field: 'status', op: 'eq', value: 'open' },
          ],
          orderBy: { field: 'at', direction: 'desc' },
          limit: 100,
        });
        expect(
          await store.find(items, {
            where: [{ field: 'tags', op: 'contains', value: 'd' }],
            orderBy: byId,
            limit: 100,
          }),
        ).toEqual([]);
      });

      it('includes: a substring of a text field, exactly (no pattern characters, no case folding)', async () => {
        const found = await check({
          where: [{ field: 'label', op: 'includes', value: '3' }],
          orderBy: { field: 'at', direction: 'desc' },
          limit: 100,
        });
        expect(found.every((d) => d.label?.includes('3'))).toBe(true);
        await check({
          where: [
            { field: 'label', op: 'includes', value: 'L' },
            { field: 'status', op: 'eq', value: 'open' },
          ],
          orderBy: byId,
          limit: 100,
        });
        const odd = [
          item('pat-1', '300', { label: 'a.b*c (d)+[e]? ^f$ {g} |h\\i /j-k 50%_off' }),
          item('pat-2', '301', { label: 'axb' }),
          item('pat-3', '302', { label: 'ABC Zürich' }),
        ];
        await put(store, into(items, ...odd), 302n);
        all = [...all, ...odd];
        for (const value of [
          'a.b',
          '*c (d)+',
          '[e]?',
          '^f$',
          '{g} |h\\i',
          '/j-k',
          '50%_',
          'zürich',
          'Zürich',
          'l',
        ]) {
          await check(
            { where: [{ field: 'label', op: 'includes', value }], orderBy: byId, limit: 100 },
            { some: false },
          );
        }
        const exact = await store.find<Item>(items, {
          where: [{ field: 'label', op: 'includes', value: 'a.b' }],
          orderBy: byId,
          limit: 100,
        });
        expect(ids(exact)).toEqual(['pat-1']); // not axb: the dot is a dot
        expect(
          await store.find(items, {
            where: [{ field: 'label', op: 'includes', value: 'abc' }],
            orderBy: byId,
            limit: 100,
          }),
        ).toEqual([]); // not ABC: callers fold case themselves
        await expect(
          store.find(items, {
            where: [{ field: 'tags', op: 'includes', value: 'd' }],
            orderBy: byId,
            limit: 100,
          }),
        ).rejects.toThrow(/\.tags\b.*(includes applies to text fields|only contains applies)/);
      });

      it('contains finds whole elements also when they hold control characters, and after the array changes', async () => {
        const odd = [
          item('odd-1', '300', { tags: ['a\u001fb'] }),
          item('odd-2', '300', { tags: ['a', 'b'] }),
          item('odd-3', '300', { tags: ['x\u001e', 'db'] }),
          item('odd-4', '300', { tags: ['\u001e'] }),
        ];
        await put(store, into(items, ...odd), 300n);
        all = [...all, ...odd];
        for (const value of ['a', 'b', 'a\u001fb', 'x\u001e', '\u001e', 'db', '\u001f']) {
          await check(
            { where: [{ field: 'tags', op: 'contains', value }], orderBy: byId, limit: 100 },
            { some: false },
          );
        }
        // a document's array changes: the old elements no longer find it, the new ones do
        const changed = item('odd-1', '301', { tags: ['web'] });
        await put(store, into(items, changed), 301n);
        all = all.map((d) => (d.id === 'odd-1' ? changed : d));
        for (const value of ['a\u001fb', 'web']) {
          await check(
            { where: [{ field: 'tags', op: 'contains', value }], orderBy: byId, limit: 100 },
            { some: false },
          );
        }
      });

      it.each([
        ['status', 'asc'],
        ['status', 'desc'],
        ['active', 'asc'],
        ['active', 'desc'],
        ['rank', 'asc'],
        ['rank', 'desc'],
        ['label', 'asc'],
        ['label', 'desc'],
        ['at', 'desc'],
        ['id', 'asc'],
        ['id', 'desc'],
      ] as const)('orderBy %s %s, ties broken by id in the same direction', async (field, direction) => {
        const found = await check({ where: [], orderBy: { field, direction }, limit: 100 });
        expect(found).toHaveLength(all.length);
        if (field === 'status' || field === 'active') {
          // ties exist, and within them ids go the sort's direction
          const first = found.filter((d) => d[field] === found[0][field]);
          expect(first.length).toBeGreaterThan(2);
          expect(ids(first)).toEqual(direction === 'asc' ? ids(first).sort() : ids(first).sort().reverse());
        }
        if (field === 'label') {
          // nulls lowest: first ascending, last descending
          const nulls = found.filter((d) => d.label === null).length;
          expect(nulls).toBeGreaterThan(0);
          const edge = direction === 'asc' ? found.slice(0, nulls) : found.slice(-nulls);
          expect(edge.every((d) => d.label === null)).toBe(true);
        }
        if (field === 'active') expect(found[0].active).toBe(direction === 'desc');
      });

      it('limit: the first n of the order; more than there is gives all; 0 gives none', async () => {
        const orderBy = { field: 'status', direction: 'asc' } as const;
        const five = await check({ where: [], orderBy, limit: 5 });
        expect(five).toHaveLength(5);
        await check({ where: [], orderBy: { field: 'at', direction: 'desc' }, limit: 1 });
        await check({ where: [{ field: 'active', op: 'eq', value: true }], orderBy, limit: 3 });
        expect(await store.find(items, { where: [], orderBy, limit: 1000 })).toHaveLength(all.length);
        expect(await store.find(items, { where: [], orderBy, limit: 0 })).toEqual([]);
      });

      it('keyset `after`: strictly after the (value, id) pair, including among ties and nulls', async () => {
        const orderBy = { field: 'label', direction: 'asc' } as const;
        const full = expectedOrder(all, 'label', 'asc');
        for (const at of [0, 1, 3, 5, full.length - 2]) {
          const pivot = full[at];
          const query: Query = {
            where: [],
            orderBy,
            limit: 100,
            after: { value: pivot.label, id: pivot.id },
          };
          expect(ids(await store.find(items, query))).toEqual(ids(full.slice(at + 1)));
        }
        const last = full[full.length - 1];
        expect(
          await store.find(items, {
            where: [],
            orderBy,
            limit: 100,
            after: { value: last.label, id: last.id },
          }),
        ).toEqual([]);
      });

      it('select: only the chosen fields and nested paths (with id and _position), under the same filter, order and limit', async () => {
        const detailed = all.map((d, i) => ({
          ...d,
          _position: String(300 + i),
          detail: {
            title: `T-${d.id}`,
            owner: { id: `u-${i}`, roles: ['a', 'b'] },
            steps: [{ n: 1 }, { n: 2 }],
            big: 'x'.repeat(4000),
            note: null,
            flag: i % 2 === 0,
            count: i,
          },
        }));
        await put(store, into(items, ...detailed), 300n);
        const query: Query = {
          where: [{ field: 'status', op: 'eq', value: 'open' }],
          orderBy: { field: 'at', direction: 'desc' },
          limit: 4,
          select: [
            'at',
            'detail.title',
            'detail.owner',
            'detail.note',
            'detail.flag',
            'detail.count',
            'detail.missing',
          ],
        };
        const expected = expectedOrder(
          detailed.filter((d) => d.status === 'open'),
          'at',
          'desc',
        ).slice(0, 4);
        expect(expected.length).toBe(4);
        const found = await store.find<Item>(items, query);
        expect(ids(found)).toEqual(ids(expected));
        found.forEach((row, i) => {
          const { missing, ...detail } = row.detail as Record<string, unknown>;
          // a path the document lacks: absent or null, depending on the adapter
          expect(missing ?? null).toBeNull();
          expect({ ...row, detail }).toStrictEqual({
            id: expected[i].id,
            _position: expected[i]._position,
            at: expected[i].at,
            detail: {
              title: expected[i].detail.title,
              owner: expected[i].detail.owner,
              note: null,
              flag: expected[i].detail.flag,
              count: expected[i].detail.count,
            },
          });
        });
        // a whole object and a path inside it: the whole object
        const [whole] = await store.find<Item>(items, {
          ...query,
          limit: 1,
          select: ['detail', 'detail.title'],
        });
        expect(whole).toStrictEqual({
          id: expected[0].id,
          _position: expected[0]._position,
          detail: expected[0].detail,
        });
        await expect(store.find(items, { ...query, select: ['detail.$where'] })).rejects.toThrow(
          /not a valid field path/,
        );
        await expect(store.find(items, { ...query, select: ["a') FROM x --"] })).rejects.toThrow(
          /not a valid field path/,
        );
      });

      it('select of top-level fields, `json` ones included: exactly those values, nothing else of the document', async () => {
        const spec: CollectionSpec = {
          ...itemsSpec(other),
          fields: { ...itemsSpec(other).fields, row: 'json' },
        };
        await store.init([spec]);
        const rows = all.map((d, i) => ({
          ...d,
          _position: String(400 + i),
          row: i % 5 === 0 ? null : { title: `T-${d.id}`, tags: d.tags, nested: { ok: i % 2 === 0 } },
          big: 'y'.repeat(3000),
        }));
        await put(store, into(other, ...rows), 400n);
        const query: Query = {
          where: [{ field: 'active', op: 'eq', value: true }],
          orderBy: { field: 'rank', direction: 'desc' },
          limit: 7,
          select: ['row', 'active', 'rank', 'label', 'at'],
        };
        const expected = expectedOrder(
          rows.filter((d) => d.active),
          'rank',
          'desc',
        ).slice(0, 7);
        expect(expected.some((d) => d.row === null)).toBe(true);
        const found = await store.find<Item>(other, query);
        expect(found).toStrictEqual(
          expected.map((d) => ({
            id: d.id,
            _position: d._position,
            row: d.row,
            active: d.active,
            rank: d.rank,
            label: d.label,
            at: d.at,
          })),
        );
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('keyset paging through 250 documents in pages of 40', () => {
      let all: Item[];

      beforeAll(() => {
        all = Array.from({ length: 250 }, (_, i) =>
          item(`p-${String((i * 101) % 250).padStart(3, '0')}`, String(1000 + i), {
            status: `g${i % 7}`,
            active: i % 3 === 0,
            rank: i % 9,
            at: `2030-02-${String(1 + (i % 28)).padStart(2, '0')}T${String(i % 24).padStart(2, '0')}:00:00Z`,
            label: i % 5 === 0 ? null : `n${String((i * 13) % 40).padStart(2, '0')}`,
            tags: i % 2 === 0 ? ['even'] : ['odd'],
          }),
        );
      });

      beforeEach(async () => {
        await store.init([itemsSpec(items)]);
        await put(store, into(items, ...all), 2000n);
      });

      const pageThrough = async (orderBy: Query['orderBy'], where: Condition[] = []) => {
        const seen: Item[] = [];
        const sizes: number[] = [];
        let after: Query['after'];
        for (;;) {
          const page = await store.find<Item>(items, { where, orderBy, limit: 40, after });
          sizes.push(page.length);
          if (page.length === 0) break;
          if (sizes.length > 20) throw new Error(`paging does not end: ${sizes.join(', ')}`);
          seen.push(...page);
          const lastRow = page[page.length - 1];
          after = {
            value: (lastRow[orderBy.field] as string | number | boolean | null) ?? null,
            id: lastRow.id,
          };
        }
        return { seen, sizes };
      };

      it.each([
        ['status', 'asc'],
        ['status', 'desc'],
        ['label', 'asc'],
        ['label', 'desc'],
        ['active', 'asc'],
        ['active', 'desc'],
        ['rank', 'desc'],
        ['at', 'asc'],
        ['id', 'asc'],
        ['id', 'desc'],
      ] as const)(
        'orderBy %s %s: every document exactly once, in order',
        async (field, direction) => {
          const { seen, sizes } = await pageThrough({ field, direction });
          expect(sizes).toEqual([40, 40, 40, 40, 40, 40, 10, 0]);
          expect(new Set(ids(seen)).size).toBe(250);
          expect(ids(seen)).toEqual(ids(expectedOrder(all, field, direction)));
        },
        30_000,
      );

      it('with a filter too', async () => {
        const where: Condition[] = [{ field: 'tags', op: 'contains', value: 'odd' }];
        for (const direction of ['asc', 'desc'] as const) {
          const { seen, sizes } = await pageThrough({ field: 'label', direction }, where);
          const expected = expectedOrder(
            all.filter((d) => d.tags.includes('odd')),
            'label',
            direction,
          );
          expect(expected).toHaveLength(125);
          expect(sizes).toEqual([40, 40, 40, 5, 0]);
          expect(ids(seen)).toEqual(ids(expected));
        }
      }, 30_000);
    });

    // -------------------------------------------------------------------------------------------
    describe('a store opened again on the same backing (a restart)', () => {
      it('has what was committed, and after a promote the shadow’s documents and checkpoints', async () => {
        await store.init([itemsSpec(items)]);
        const a = item('a', '3', { tags: ['x'], label: 'kept' });
        const b = item('b', '5', { status: 'done' });
        await put(store, into(items, a, b), 5n);
        await store.close();

        const again = await fx.open();
        await again.init([itemsSpec(items)]);
        expect(await everything(again, items)).toStrictEqual([a, b]);
        expect(await again.checkpoint(cp)).toBe(5n);
        const where = async (target: ReadModelStore, condition: Condition) =>
          ids(
            await target.find<Item>(items, {
              where: [condition],
              orderBy: { field: 'id', direction: 'asc' },
              limit: 10,
            }),
          );
        expect(await where(again, { field: 'tags', op: 'contains', value: 'x' })).toEqual(['a']); // its indexes too

        const shadow = await again.createShadow();
        await shadow.init([itemsSpec(items)]);
        const c = item('c', '9', { status: 'rebuilt' });
        await put(shadow, into(items, c), 9n);
        await shadow.promote();
        await again.close();

        const third = await fx.open();
        await third.init([itemsSpec(items)]);
        expect(await everything(third, items)).toStrictEqual([c]);
        expect(await third.checkpoint(cp)).toBe(9n);
        expect(await where(third, { field: 'status', op: 'eq', value: 'rebuilt' })).toEqual(['c']);
      });
    });

    describe('createShadow', () => {
      const specs = () => [itemsSpec(items), itemsSpec(other)];

      beforeEach(async () => {
        await store.init(specs());
        await put(
          store,
          [
            ...into(items, item('a', '5', { status: 'live-a' }), item('b', '5', { status: 'live-b' })),
            ...into(other, item('o', '5')),
          ],
          5n,
        );
        await put(store, [], 7n, `${cp}_2`);
      });

      it('writes to the shadow stay invisible until promote; then the live store has exactly the shadow’s documents and checkpoints', async () => {
        const shadow = await store.createShadow();
        await shadow.init(specs());
        // a fresh, empty copy
        expect(await shadow.get(items, 'a')).toBeUndefined();
        expect(await everything(shadow, items)).toEqual([]);
        expect(await everything(shadow, other)).toEqual([]);
        expect(await shadow.checkpoint(cp)).toBe(0n);

        const a3 = item('a', '3', { status: 'shadow-a', tags: ['rebuilt'] });
        const c4 = item('c', '4', { status: 'shadow-c', label: 'c' });
        await put(shadow, into(items, a3, c4), 4n);
        await put(shadow, into(items, item('a', '2', { status: 'older' })), 4n); // the guard holds in the shadow too
        expect(await everything(shadow, items)).toStrictEqual([a3, c4]);
        expect(await shadow.checkpoint(cp)).toBe(4n);

        // the live store does not see any of it
        expect(await store.get(items, 'a')).toStrictEqual(item('a', '5', { status: 'live-a' }));
        expect(await store.get(items, 'c')).toBeUndefined();
        expect((await everything(store, items)).map((d) => d.status)).toEqual(['live-a', 'live-b']);
        expect(ids(await everything(store, other))).toEqual(['o']);
        expect(
          await store.find(items, {
            where: [{ field: 'tags', op: 'contains', value: 'rebuilt' }],
            orderBy: { field: 'id', direction: 'asc' },
            limit: 10,
          }),
        ).toEqual([]);
        expect(await store.checkpoint(cp)).toBe(5n);
        expect(await store.checkpoint(`${cp}_2`)).toBe(7n);

        await shadow.promote();

        expect(await everything(store, items)).toStrictEqual([a3, c4]);
        expect(await store.get(items, 'b')).toBeUndefined();
        expect(await store.get(items, 'a')).toStrictEqual(a3);
        expect((await store.getMany(items, ['a', 'b', 'c'])).size).toBe(2);
        expect(await everything(store, other)).toEqual([]);
        expect(await store.checkpoint(cp)).toBe(4n); // the shadow's, even though the live one was further
        expect(await store.checkpoint(`${cp}_2`)).toBe(0n); // the shadow never had it
        expect(
          ids(
            await store.find(items, {
              where: [{ field: 'tags', op: 'contains', value: 'rebuilt' }],
              orderBy: { field: 'id', direction: 'asc' },
              limit: 10,
            }),
          ),
        ).toEqual(['a']);

        // the promoted collections are ordinary live ones: guarded, queryable, checkpointed
        await put(
          store,
          into(items, item('a', '3', { status: 'same position' }), item('d', '6', { status: 'live-d' })),
          6n,
        );
        expect(await store.get(items, 'a')).toStrictEqual(a3);
        expect(
          ids(
            await store.find(items, {
              where: [{ field: 'status', op: 'eq', value: 'live-d' }],
              orderBy: { field: 'at', direction: 'asc' },
              limit: 10,
            }),
          ),
        ).toEqual(['d']);
        expect(
          ids(
            await store.find(items, { where: [], orderBy: { field: 'label', direction: 'desc' }, limit: 10 }),
          ),
        ).toEqual(['c', 'd', 'a']);
        expect(await store.checkpoint(cp)).toBe(6n);

        // and the next rebuild starts from nothing again
        const next = await store.createShadow();
        await next.init(specs());
        expect(await everything(next, items)).toEqual([]);
        expect(await next.checkpoint(cp)).toBe(0n);
        await next.discard();
        expect(ids(await everything(store, items))).toEqual(['a', 'c', 'd']);
      });

      it('discard leaves the live store untouched, and the next shadow starts empty', async () => {
        const before = {
          items: await everything(store, items),
          other: await everything(store, other),
          checkpoints: [await store.checkpoint(cp), await store.checkpoint(`${cp}_2`)],
        };
        const shadow = await store.createShadow();
        await shadow.init(specs());
        await put(
          shadow,
          [
            ...into(items, item('a', '9', { status: 'discarded' }), item('x', '9')),
            ...into(other, item('y', '9')),
          ],
          9n,
        );
        await shadow.discard();

        expect({
          items: await everything(store, items),
          other: await everything(store, other),
          checkpoints: [await store.checkpoint(cp), await store.checkpoint(`${cp}_2`)],
        }).toStrictEqual(before);
        expect(before.items).toHaveLength(2);

        const next = await store.createShadow();
        await next.init(specs());
        expect(await next.get(items, 'x')).toBeUndefined();
        expect(await everything(next, items)).toEqual([]);
        expect(await everything(next, other)).toEqual([]);
        expect(await next.checkpoint(cp)).toBe(0n);
        await next.discard();
        expect(await everything(store, items)).toStrictEqual(before.items);
      });
    });

    // -------------------------------------------------------------------------------------------
    describe('ping and close', () => {
      it('ping resolves while open; after close the store refuses work', async () => {
        await store.init([itemsSpec(items)]);
        await expect(store.ping()).resolves.toBeUndefined();
        await store.close();
        await expect(store.ping()).rejects.toThrow();
        await expect(store.get(items, 'a')).rejects.toThrow();
      });
    });
  });
};
