import type { Query, ReadModelDocument, ReadModelStore } from '@changeledger/read-models';
import { RequestValidationError } from '../application/application-errors';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

export interface Cursor {
  readonly value: string | number | boolean | null;
  readonly id: string;
}

export const parseLimit = (limit: string | undefined): number => {
  const n = limit === undefined ? DEFAULT_LIMIT : Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new RequestValidationError(`limit must be an integer from 1 to ${MAX_LIMIT}`, [
      { field: 'limit', message: 'out of range' },
    ]);
  }
  return n;
};

/** Opaque to clients: the sort value and id of the last row served. */
export const encodeCursor = (cursor: Cursor): string =>
  Buffer.from(JSON.stringify([cursor.value, cursor.id])).toString('base64url');

/**
 * What a paged list's sort field holds: every one sorts on text (times, ids) that may be missing.
 * Anything else in a cursor was not made here: stores would throw on an object, and compare a
 * number or a boolean with text differently (SQLite's text affinity served page 1 again,
 * MongoDB nothing).
 */
const isSortValue = (value: unknown): value is Cursor['value'] => value === null || typeof value === 'string';

export const decodeCursor = (cursor: string | undefined): Cursor | undefined => {
  if (cursor === undefined) return undefined;
  try {
    const [value, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [
      Cursor['value'],
      unknown,
    ];
    // ids are never empty (a store refuses one: it was a 500 on MongoDB)
    if (typeof id !== 'string' || id.length === 0 || !isSortValue(value)) throw new Error('bad cursor');
    return { value, id };
  } catch {
    throw new RequestValidationError('cursor is not one this API handed out', [
      { field: 'cursor', message: 'invalid' },
    ]);
  }
};

/** Fetches one more row than asked to know whether a next page exists. */
export const page = <T>(rows: T[], limit: number, cursorOf: (row: T) => Cursor) => {
  const items = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? encodeCursor(cursorOf(items[items.length - 1])) : null;
  return { items, nextCursor };
};

export interface PageRequest {
  readonly limit: number;
  readonly after?: Cursor;
}

/** A list request's `limit` and `cursor`, checked (400 otherwise). */
export const pageRequestOf = (query: { readonly limit?: string; readonly cursor?: string }): PageRequest => ({
  limit: parseLimit(query.limit),
  after: decodeCursor(query.cursor),
});

/**
 * One page of a list: the query with the request's cursor and one row more than asked, cut to
 * the limit; the next cursor is the last row's sort value (the query's `orderBy`) and id.
 */
export const findPage = async <D extends ReadModelDocument>(
  store: ReadModelStore,
  collection: string,
  query: Omit<Query, 'limit' | 'after'>,
  request: PageRequest,
) => {
  const sortField = query.orderBy.field;
  // the cursor needs the sort value of the last row, selected or not
  const select =
    query.select && !query.select.includes(sortField) ? [...query.select, sortField] : query.select;
  const rows = await store.find<D>(collection, {
    ...query,
    select,
    limit: request.limit + 1,
    after: request.after,
  });
  return page(rows, request.limit, (d) => ({
    value: (d as unknown as Record<string, Cursor['value']>)[sortField] ?? null,
    id: d.id,
  }));
};
