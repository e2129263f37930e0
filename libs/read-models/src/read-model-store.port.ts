/** DI token for the ReadModelStore port. */
export const READ_MODEL_STORE = Symbol('READ_MODEL_STORE');

/**
 * A read-model document. `_position` is the global position of the last event applied to it:
 * an event at or below it is skipped, so replays and crashes never apply anything twice.
 */
export interface ReadModelDocument {
  readonly id: string;
  readonly _position: string;
}

export type FieldType = 'string' | 'number' | 'boolean';

/**
 * The fields a collection is filtered or sorted on (adapters index exactly the `indexes`; an
 * index over a `string[]` field is a multikey index on MongoDB; SQLite indexes the elements
 * joined into one text and `contains` scans that index), and
 * `json` fields: any JSON value that is only ever `select`ed (a list row kept beside a large
 * document), which an adapter may store apart so that reading it skips the rest.
 */
export interface CollectionSpec {
  readonly name: string;
  readonly fields: Readonly<Record<string, FieldType | 'string[]' | 'json'>>;
  /** Index definitions: each a list of fields (compound), in order. */
  readonly indexes: readonly (readonly string[])[];
  /**
   * Text fields of unbounded length that `includes` searches: an adapter may index each alone so
   * that a search scans the index instead of the documents (SQLite, where a row's columns sit
   * behind its document), or not (MongoDB: a server may limit an index key's size, as
   * PostgreSQL under FerretDB does, and a write over it would stop the projector).
   */
  readonly scanIndexes?: readonly string[];
}

export type Condition =
  | { readonly field: string; readonly op: 'eq'; readonly value: string | number | boolean }
  | { readonly field: string; readonly op: 'gte' | 'lt'; readonly value: string | number }
  /** The array field contains the value. */
  | { readonly field: string; readonly op: 'contains'; readonly value: string }
  /**
   * The string field holds the value as a substring, exactly (case and all: callers store and ask
   * normalised text). No ordinary index serves it: the rows the other conditions leave are read
   * (or, where the field has one, its scan index: `scanIndexes`).
   */
  | { readonly field: string; readonly op: 'includes'; readonly value: string };

export interface Query {
  readonly where: readonly Condition[];
  /** Ties are broken by `id` in the same direction. */
  readonly orderBy: { readonly field: string; readonly direction: 'asc' | 'desc' };
  readonly limit: number;
  /** Keyset cursor: rows strictly after this (sort value, id) pair. */
  readonly after?: { readonly value: string | number | boolean | null; readonly id: string };
  /**
   * Only these fields (dotted paths into nested objects) besides `id` and `_position`: list
   * endpoints read a few fields of large documents. A selected path the document lacks comes
   * back absent or null, depending on the adapter.
   */
  readonly select?: readonly string[];
}

export interface CheckpointMark {
  readonly name: string;
  readonly position: bigint;
}

/** For adapters whose swap is not one transaction; one that is may ignore them. */
export interface PromoteOptions {
  /** Written into the live checkpoints before anything moves, so live writers can tell. */
  readonly announce: CheckpointMark;
  /** Awaited after the announcement, before anything moves (a live writer pausing). */
  readonly acknowledged?: () => Promise<void>;
  /**
   * Checkpoints that say how far the models are (what `minPosition` reads wait on). An adapter
   * that cannot swap models and checkpoints at once lowers each of these to the rebuilt value
   * before anything moves, so that no read takes the rebuilt models for further along than
   * they are (a live writer replays onto them from there: lowering is always safe).
   */
  readonly lowerFirst?: readonly string[];
}

/**
 * The checkpoint in which an adapter marks a shadow as its own rebuild's: a later `createShadow`
 * drops it with the shadow's collections, and a promote that finds it gone refuses.
 */
export const SHADOW_MARK = '__shadow';

export type ShadowReadModelStore = ReadModelStore & {
  promote(options?: PromoteOptions): Promise<void>;
  discard(): Promise<void>;
};

export interface CommitBatch {
  readonly documents: readonly { readonly collection: string; readonly document: ReadModelDocument }[];
  readonly checkpoint: CheckpointMark;
  /**
   * Write only if checkpoint `name` holds `position` (0 when absent): a live projector's writes
   * belong to the read models it loaded from, not to rebuilt ones swapped in meanwhile.
   */
  readonly expect?: CheckpointMark;
}

/**
 * The store's server cannot be reached, or did not answer in time: an outage, not a bug (the
 * API answers 503 SERVICE_UNAVAILABLE; the same read may succeed shortly). Its message names the
 * server without credentials, for the log.
 */
export class ReadModelStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReadModelStoreUnavailableError';
  }
}

/**
 * A commit's `expect`ed checkpoint had moved. `maybeWritten` is false when nothing was written
 * (checked atomically with the write, or before it began); true when an adapter without
 * transactions saw it move while it was writing, so some documents may have gone to the new models.
 */
export class CheckpointMovedError extends Error {
  constructor(
    readonly checkpoint: string,
    readonly expected: bigint,
    readonly found: bigint,
    readonly maybeWritten: boolean,
  ) {
    super(
      `checkpoint ${checkpoint} is ${found}, not ${expected}` +
        (maybeWritten ? ' (it moved while the documents were being written)' : ''),
    );
    this.name = 'CheckpointMovedError';
  }
}

export interface ReadModelStore {
  /** Creates collections and their indexes (idempotent). */
  init(collections: readonly CollectionSpec[]): Promise<void>;
  getMany<D extends ReadModelDocument>(collection: string, ids: readonly string[]): Promise<Map<string, D>>;
  get<D extends ReadModelDocument>(collection: string, id: string): Promise<D | undefined>;
  find<D extends ReadModelDocument>(collection: string, query: Query): Promise<D[]>;
  /**
   * Writes documents and then the checkpoint. A document is written only if its stored
   * `_position` is lower (guarded upsert), so a repeated batch changes nothing. With `expect`,
   * rejects with `CheckpointMovedError` when that checkpoint is not as expected.
   */
  commit(batch: CommitBatch): Promise<void>;
  checkpoint(name: string): Promise<bigint>;
  /**
   * A fresh, empty copy of the store for a rebuild: written while the live one keeps serving,
   * then `promote`d: afterwards the live store holds exactly the shadow's documents and
   * checkpoints. An adapter that cannot swap in one transaction first writes `announce` into the
   * live checkpoints and awaits `acknowledged`, and writes the checkpoints holding the announced
   * value last, so that a checkpoint equal to the announcement means the swap is done.
   */
  createShadow(): Promise<ShadowReadModelStore>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
