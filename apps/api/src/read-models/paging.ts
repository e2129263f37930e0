import { createHash } from 'node:crypto';
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

/**
 * Opaque to clients: the sort value and id of the last row served, and the tag of the list and
 * filters it was served under (see `listTag`).
 */
export const encodeCursor = (cursor: Cursor, tag?: string): string =>
  Buffer.from(
    JSON.stringify(tag === undefined ? [cursor.value, cursor.id] : [cursor.value, cursor.id, tag]),
  ).toString('base64url');

/** Query parameters that do not choose the rows of a list: a cursor stays good across them. */
const NOT_FILTERS = new Set(['limit', 'cursor', 'minPosition', 'format', 'access_token']);

/**
 * Which list, under which filters, a page was served from: a short digest carried in its cursor.
 * A cursor of another list or other filters would start at a place in another order, silently
 * leaving rows out; it is refused instead.
 */
export const listTag = (list: string, query: object): string => {
  const filters = Object.entries(query)
    .filter(([name, value]) => !NOT_FILTERS.has(name) && value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify([list, filters]))
    .digest('base64url')
    .slice(0, 10);
};

/**
 * What a paged list's sort field holds: every one sorts on text (times, ids) that may be missing.
 * Anything else in a cursor was not made here: stores would throw on an object, and compare a
 * number or a boolean with text differently (SQLite's text affinity served page 1 again,
 * MongoDB nothing).
 */
const isSortValue = (value: unknown): value is Cursor['value'] => value === null || typeof value === 'string';

/**
 * `tag`: the list and filters the cursor must have been served under. Every list hands out tagged
 * cursors; one without a tag was made by hand, or before tags (2026-11), and is refused like one
 * of another list: nothing tells which filters it belongs to.
 */
export const decodeCursor = (cursor: string | undefined, tag?: string): Cursor | undefined => {
  if (cursor === undefined) return undefined;
  let value: unknown, id: unknown, servedUnder: unknown;
  try {
    [value, id, servedUnder] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
  } catch {
    // (not JSON, or not an array)
  }
  // ids are never empty (a store refuses one: it was a 500 on MongoDB)
  if (typeof id !== 'string' || id.length === 0 || !isSortValue(value)) {
    throw new RequestValidationError('cursor is not one this API handed out', [
      { field: 'cursor', message: 'invalid' },
    ]);
  }
  if (tag !== undefined && servedUnder !== tag) {
    throw new RequestValidationError(
      'cursor belongs to another list or to other filters: page with the filters of the request that handed it out',
      [{ field: 'cursor', message: 'of another list or filters' }],
    );
  }
  return { value, id };
};

/** Fetches one more row than asked to know whether a next page exists. */
export const page = <T>(rows: T[], limit: number, cursorOf: (row: T) => Cursor, tag?: string) => {
  const items = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? encodeCursor(cursorOf(items[items.length - 1]), tag) : null;
  return { items, nextCursor };
};

export interface PageRequest {
  readonly limit: number;
  readonly after?: Cursor;
  /** The list and filters (`listTag`) the next page's cursor is tagged with. */
  readonly tag?: string;
}

/**
 * A list request's `limit` and `cursor`, checked (400 otherwise); `list` names the list, whose
 * filters are the query's other parameters (see `listTag`).
 */
export const pageRequestOf = (
  query: { readonly limit?: string; readonly cursor?: string },
  list: string,
): PageRequest => {
  const tag = listTag(list, query);
  return { limit: parseLimit(query.limit), after: decodeCursor(query.cursor, tag), tag };
};

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
  return page(
    rows,
    request.limit,
    (d) => ({
      value: (d as unknown as Record<string, Cursor['value']>)[sortField] ?? null,
      id: d.id,
    }),
    request.tag,
  );
};
