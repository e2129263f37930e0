import { randomBytes } from 'node:crypto';
import {
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type Document,
  type Filter,
  MongoBulkWriteError,
  MongoClient,
  type MongoClientOptions,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
  type Sort,
  type WriteError,
} from 'mongodb';
import { comparablePosition } from '../../position';
import type { ProjectorLeaseStore, ProjectorLeaseState } from '../../projector-lease';
import {
  CheckpointMovedError,
  type CollectionSpec,
  type CommitBatch,
  type Condition,
  type Query,
  type ReadModelDocument,
  type PromoteOptions,
  type ReadModelStore,
  ReadModelStoreUnavailableError,
  SHADOW_MARK,
  type ShadowReadModelStore,
} from '../../read-model-store.port';

/**
 * Collections of a rebuild (`createShadow`) are the live names behind `rebuild_<stamp>__`: a new
 * stamp per rebuild, because FerretDB 1.24 names a collection's SQL indexes after the collection
 * it was created as and keeps those names through a rename, so a second `rebuild__x` would
 * collide with the indexes of the `x` that the first rebuild promoted.
 */
export const MONGO_SHADOW_PREFIX = 'rebuild_';
/** Where `promote` parks a live collection while the shadow takes its name (no `dropTarget`). */
const RETIRED_PREFIX = 'retired__';
const CHECKPOINTS = 'checkpoints';
/**
 * One rebuild at a time per database: `createShadow` drops the shadows it finds, which would
 * pull collections from under another rebuild's swap. The lease (one document; its name is
 * outside MONGO_SHADOW_PREFIX, so no drop takes it) is renewed while its rebuild runs and
 * taken over once it has not been for REBUILD_LEASE_MS (that rebuild died).
 */
const REBUILD_LEASES = 'changeledger_rebuild_lease';
/** The projector lease (see LeasedProjector): one document, outside every rebuild's reach too. */
const PROJECTOR_LEASES = 'changeledger_projector_lease';
export const REBUILD_LEASE_MS = 60_000;
const REBUILD_LEASE_RENEW_MS = 10_000;
/** The first batch asked for at most (pages are at most 501 rows; the port allows any limit). */
const MAX_BATCH = 10_000;
/**
 * How long the server may work on one query (`maxTimeMS`): a text search (`q=`) scans, and a
 * query the server cannot finish in time answers MaxTimeMSExpired, an outage (503), instead of
 * holding the request and a pooled connection.
 */
const QUERY_TIME_LIMIT_MS = 10_000;

/** Another rebuild holds the lease: it is running (or died less than REBUILD_LEASE_MS ago). */
export class RebuildInProgressError extends Error {
  constructor(holder: string, until: number) {
    super(
      `another rebuild of these read models is running (${holder}); try again when it is done ` +
        `(its lease runs until ${new Date(until).toISOString()} unless it is renewed)`,
    );
    this.name = 'RebuildInProgressError';
  }
}
const RESERVED_PREFIXES = [MONGO_SHADOW_PREFIX, RETIRED_PREFIX, 'system.'];

const DUPLICATE_KEY = 11000;
/**
 * Operations per bulkWrite of documents: FerretDB 1.24 (SQLite) never answers an `update`
 * command of 100 or more guarded replaces (measured: 95 answer in 0.3 s, 100 hang), which a
 * projector catching up, or healing after a rebuild, sends. MongoDB takes any number; chunks
 * of 50 cost it a round trip per 50 documents.
 */
const BULK_WRITE_CHUNK = 50;
const NAMESPACE_EXISTS = 48;
const NAMESPACE_NOT_FOUND = 26;
const NOT_IMPLEMENTED = 238;

const COLLECTION_NAME = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const DATABASE_NAME = /^[A-Za-z0-9_-]{1,63}$/;
/** The port's positions: canonical unsigned decimals (no sign, no leading zero), at most 64-bit. */
const CANONICAL_POSITION = /^(0|[1-9][0-9]{0,19})$/;

export interface MongoReadModelStoreOptions {
  /** How long `connect` (and every later operation) waits for a server. Default 5000 ms. */
  readonly serverSelectionTimeoutMS?: number;
  /** How long a write waits for a majority to acknowledge it (wtimeoutMS). Default 10,000 ms. */
  readonly writeTimeoutMS?: number;
  /** More driver options (they win over the defaults above). */
  readonly clientOptions?: MongoClientOptions;
}

/** Drops the user:password part of a MongoDB URL and blanks secrets in its query string. */
export const redactMongoUrl = (url: string): string =>
  url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1')
    // then anything up to an @ left before the query: the rest of a password that held an
    // unencoded @ and a / (`u:p@ss/x@host`, which the driver parses as host `ss`)
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)[^?]*@/i, '$1')
    .replace(/([?&](?:[^=&#]*(?:password|secret|token)[^=&#]*|authMechanismProperties)=)[^&#]*/gi, '$1***');

/** A stored `_position`/checkpoint: 20 digits, zero-padded, so string order is numeric order. */
const storedPosition = (position: string, what: string): string => {
  if (typeof position !== 'string' || !CANONICAL_POSITION.test(position)) {
    throw new RangeError(
      `${what}: a position must be a canonical unsigned decimal string, got ${String(position)}`,
    );
  }
  return comparablePosition(position); // also rejects anything above 2^64 - 1
};

const portPosition = (stored: unknown): unknown =>
  typeof stored === 'string' && /^[0-9]{1,20}$/.test(stored) ? BigInt(stored).toString() : stored;

const isServerError = (error: unknown, code: number): boolean =>
  error instanceof MongoServerError && error.code === code;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A socket's own failures, which the driver passes on unwrapped from a write to a lost server. */
const NETWORK_ERROR_CODES = new Set([
  'EPIPE',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * What a server answers while it fails over or shuts down: NotWritablePrimary (10107),
 * NotPrimaryNoSecondaryOk (13435), NotPrimaryOrSecondary (13436), InterruptedDueToReplStateChange
 * (11602), InterruptedAtShutdown (11600), ShutdownInProgress (91), PrimarySteppedDown (189),
 * HostUnreachable (6), HostNotFound (7), NetworkTimeout (89), SocketException (9001),
 * ExceededTimeLimit (262), MaxTimeMSExpired (50). The driver retries such a write once (never on
 * a standalone server) and then hands the error on.
 */
const OUTAGE_SERVER_CODES = new Set([10107, 13435, 13436, 11602, 11600, 91, 189, 6, 7, 89, 9001, 262, 50]);

/** The server could not be reached or did not confirm in time: an outage, not a bug. */
export const isMongoOutage = (error: unknown) =>
  // not `instanceof Error`: Node's own errors may come from another realm (a vm context, jest)
  (typeof error === 'object' &&
    error !== null &&
    NETWORK_ERROR_CODES.has(String((error as { code?: unknown }).code))) ||
  error instanceof MongoNetworkError ||
  error instanceof MongoServerSelectionError ||
  error instanceof MongoNotConnectedError ||
  error instanceof MongoTopologyClosedError ||
  error instanceof MongoWriteConcernError ||
  // a bulk's write-concern failure comes as a bulk error (the writes may yet be on a majority)
  (error instanceof MongoBulkWriteError &&
    (error.writeConcernError !== undefined || error.result?.getWriteConcernError?.() !== undefined)) ||
  // every pooled connection busy (with a stalled server) for waitQueueTimeoutMS; the driver
  // does not export the class
  (error as { name?: unknown } | null)?.name === 'MongoWaitQueueTimeoutError' ||
  (error instanceof MongoServerError &&
    (OUTAGE_SERVER_CODES.has(Number(error.code)) || error.hasErrorLabel('RetryableWriteError')));

/** Runs an operation; an outage (`isMongoOutage`) becomes the error `unavailable` makes of it. */
export const reachMongo = async <T>(
  operation: () => Promise<T>,
  unavailable: (message: string, cause: unknown) => Error,
): Promise<T> => {
  try {
    return await operation();
  } catch (error) {
    if (!isMongoOutage(error)) throw error;
    throw unavailable(messageOf(error), error);
  }
};

/** Runs an operation on the store; an outage becomes ReadModelStoreUnavailableError naming `target`. */
const reach = <T>(target: string, read: () => Promise<T>): Promise<T> =>
  reachMongo(
    read,
    (message, cause) =>
      new ReadModelStoreUnavailableError(`the read models in ${target} are unavailable: ${message}`, {
        cause,
      }),
  );

/**
 * A client for `url` (not connected yet), what messages may name of it (`target`: the URL without
 * credentials) and `scrub`, which blanks the URL's credentials in a driver's message. An invalid
 * URL is an error saying so without the URL: a password with an unencoded `/`, `?`, `#` or `@`
 * (common in generated ones) is what makes it invalid, and what `redactMongoUrl` cannot then find.
 */
export const newMongoClient = (url: string, options: MongoClientOptions) => {
  const target = redactMongoUrl(url);
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^@/?#]*)@/i.exec(url)?.[1];
  const scrub = (message: string) => (userinfo ? message.split(userinfo).join('***') : message);
  // A second unencoded @ is a password that holds one (`u:p@ss/x@host` even parses, as host
  // `ss`): refused, since what the URL names, and where its password ends, cannot be told. An @
  // in an option's value is written %40.
  if ((url.match(/@/g) ?? []).length > 1) {
    throw new Error(
      'invalid MongoDB URL (not shown: it may hold a password): more than one @ (a user name, password or option value needs : / ? # [ ] @ percent-encoded)',
    );
  }
  try {
    return { client: new MongoClient(url, options), target, scrub };
  } catch (error) {
    throw new Error(
      `invalid MongoDB URL (not shown: it may hold a password): ${scrub(messageOf(error))} (a user name or password needs : / ? # [ ] @ percent-encoded)`,
    );
  }
};

type Stored = Document & { _id: string; _position: string };
interface Checkpoint {
  _id: string;
  position: string;
  /** Only on a shadow's mark. */
  prefix?: string;
  /**
   * Set by a swap on the checkpoints it writes (`fenceOf` its announcement): from then on only a
   * writer whose `expect` is that announcement moves them (see `commit`).
   */
  fence?: string;
}

/** A swap's announcement (or a writer's expectation of it) as a checkpoint's `fence`. */
const fenceOf = (expect: { readonly name: string; readonly position: bigint }) =>
  `${expect.name}:${expect.position}`;
type Scalar = string | number | boolean;

/** What a live store and its shadows share: one client, one database. */
interface Connection {
  readonly client: MongoClient;
  readonly db: Db;
  readonly target: string;
  ownsClient: boolean;
  closed: boolean;
  /** Unknown until tried: MongoDB has `renameCollection … dropTarget`, FerretDB 1.x does not. */
  dropTargetRename?: boolean;
  /** Whether the server is a replica set member (index builds then take a commit quorum). */
  replicaSet?: Promise<boolean>;
}

export type MongoShadowReadModelStore = MongoReadModelStore & ShadowReadModelStore;

/**
 * Client options for what the URL leaves out (the driver lets client options win over the
 * URL's, so each default is given only when the URL does not set it):
 * - 5 s to find a server (an election takes up to ~12 s: set serverSelectionTimeoutMS in
 *   MONGODB_URL to ride one out);
 * - writes acknowledged by a majority, journaled: not rolled back by a failover (the projector
 *   would never re-apply what it believes written);
 * - within 10 s, or the write fails (and is retried): with a majority unreachable while the
 *   primary stays up, it would otherwise wait forever, and the projector with it, never
 *   reported stalled. Each on its own: a URL with `w=majority` (as Atlas gives) keeps the
 *   journal and the timeout.
 */
export const clientDefaults = (
  url: string,
  { serverSelectionTimeoutMS = 5000, writeTimeoutMS = 10_000 }: MongoReadModelStoreOptions = {},
): MongoClientOptions => {
  const urlSets = (...options: string[]) =>
    options.some((option) => new RegExp(`[?&]${option}=`, 'i').test(url));
  return {
    ...(urlSets('serverSelectionTimeoutMS') ? {} : { serverSelectionTimeoutMS }),
    ...(urlSets('w') ? {} : { w: 'majority' as const }),
    // the driver still takes the older names (`j`, `wtimeout`), and ours would override them
    ...(urlSets('journal', 'j') ? {} : { journal: true }),
    ...(urlSets('wtimeoutMS', 'wtimeout') ? {} : { wtimeoutMS: writeTimeoutMS }),
    // a request waits this long for a pooled connection (all busy with a stalled server), not forever
    ...(urlSets('waitQueueTimeoutMS') ? {} : { waitQueueTimeoutMS: serverSelectionTimeoutMS }),
  };
};

/**
 * Read models in a MongoDB database (or FerretDB, over the wire protocol): one collection per
 * read model, documents stored as they are with `_id = id` and `_position` zero-padded to 20
 * digits, and a `checkpoints` collection of `{ _id: name, position }` (padded the same way).
 *
 * No transactions (FerretDB has none): `commit` writes the documents, each only over a lower
 * `_position`, and then moves the checkpoint forward. A crash in between leaves documents ahead of
 * the checkpoint, and the replay that follows is skipped document by document by the same guard.
 *
 * Sorting follows the server: a null or missing sort value is the lowest of all (below ''), so it
 * comes first ascending and last descending; `false` sorts before `true`. Keyset cursors follow
 * the same order (an `after.value` of null means "among the nulls").
 */
export class MongoReadModelStore implements ReadModelStore, ProjectorLeaseStore {
  private readonly specs = new Map<string, CollectionSpec>();
  private connection: Connection;
  private prefix = '';
  private finished?: 'promoted' | 'discarded' | 'closed';
  /** A rebuild's shadow fills without secondary indexes; `promote` builds them once, at the end. */
  private deferIndexes = false;
  /** A shadow's renewal of its rebuild lease. */
  private leaseRenewal?: NodeJS.Timeout;

  /** Over a client someone else owns (and closes); `connect` is the usual way in. */
  constructor(client: MongoClient, dbName: string, target = `MongoDB database ${dbName}`) {
    if (!DATABASE_NAME.test(dbName)) throw new Error(`not a valid database name: ${dbName}`);
    // undefined fields are left out, as JSON leaves them out: the same documents as the other
    // adapters. Reads from the primary whatever the URL prefers: a `minPosition` read checks the
    // checkpoint and then reads documents, and a secondary could be behind on either.
    const db = client.db(dbName, { ignoreUndefined: true, readPreference: 'primary' });
    this.connection = { client, db, target, ownsClient: false, closed: false };
  }

  /** Connects and pings once; an unreachable server is an error naming the URL (credentials left out). */
  static async connect(
    url: string,
    dbName: string,
    options: MongoReadModelStoreOptions = {},
  ): Promise<MongoReadModelStore> {
    const { client, target, scrub } = newMongoClient(url, {
      ...clientDefaults(url, options),
      ...options.clientOptions,
    });
    const store = new MongoReadModelStore(client, dbName, `${target} (database ${dbName})`);
    store.connection.ownsClient = true;
    try {
      await store.ping();
      return store;
    } catch (error) {
      await client.close().catch(() => undefined);
      throw new Error(`cannot reach MongoDB at ${target} (database ${dbName}): ${scrub(messageOf(error))}`, {
        cause: error,
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // names

  private usable() {
    if (this.connection.closed)
      throw new Error(`MongoReadModelStore over ${this.connection.target} is closed`);
    if (this.finished) throw new Error(`this read-model store was ${this.finished}`);
    return this.connection.db;
  }

  private name(collection: string): string {
    if (
      typeof collection !== 'string' ||
      !COLLECTION_NAME.test(collection) ||
      collection === CHECKPOINTS ||
      RESERVED_PREFIXES.some((p) => collection.startsWith(p))
    ) {
      throw new Error(`not a valid read-model collection name: ${String(collection)}`);
    }
    return `${this.prefix}${collection}`;
  }

  private collection(collection: string): Collection<Stored> {
    return this.usable().collection<Stored>(this.name(collection));
  }

  private checkpoints(): Collection<Checkpoint> {
    return this.usable().collection<Checkpoint>(`${this.prefix}${CHECKPOINTS}`);
  }

  private async collectionNames(): Promise<string[]> {
    const listed = await this.usable().listCollections({}, { nameOnly: true }).toArray();
    return listed.map((c) => c.name);
  }

  // -------------------------------------------------------------------------------------------
  // schema

  async init(collections: readonly CollectionSpec[]): Promise<void> {
    const db = this.usable();
    for (const spec of collections) {
      this.name(spec.name);
      for (const fields of spec.indexes) fields.forEach((f) => storedField(f));
    }
    const existing = new Set(await this.collectionNames());
    const create = async (name: string) => {
      if (existing.has(name)) return;
      await db.createCollection(name).catch((error: unknown) => {
        if (!isServerError(error, NAMESPACE_EXISTS)) throw error;
      });
      existing.add(name);
    };
    await create(`${this.prefix}${CHECKPOINTS}`);
    for (const spec of collections) {
      this.specs.set(spec.name, spec);
      await create(this.name(spec.name));
      if (!this.deferIndexes) await this.indexCollection(spec);
    }
  }

  private async indexCollection(spec: CollectionSpec) {
    const name = this.name(spec.name);
    const indexes = spec.indexes.filter((fields) => fields.length > 0).map(indexOf);
    if (indexes.length === 0) return;
    try {
      await this.ensureIndexes(this.usable().collection(name), indexes);
    } catch (error) {
      throw new Error(`cannot create the indexes of ${name}: ${messageOf(error)}`, { cause: error });
    }
  }

  private onReplicaSet(): Promise<boolean> {
    this.connection.replicaSet ??= this.usable()
      .admin()
      .command({ hello: 1 })
      .then((hello) => typeof hello.setName === 'string')
      .catch(() => {
        this.connection.replicaSet = undefined; // asked again next time
        return false;
      });
    return this.connection.replicaSet;
  }

  /**
   * Only the missing indexes, one `createIndexes` each: FerretDB 1.24 drops the connection
   * (a server-side panic) when one `createIndexes` names two or more indexes that already exist.
   * An index under our name with another key (the spec changed) is dropped and made again.
   */
  private async ensureIndexes(target: Collection, indexes: readonly IndexSpec[]) {
    const existing = new Map(
      (await target.listIndexes().toArray()).map((i) => [i.name as string, i.key as Document]),
    );
    for (const index of indexes) {
      const present = existing.get(index.name);
      if (present && JSON.stringify(present) === JSON.stringify(index.key)) continue;
      if (present) await target.dropIndex(index.name);
      // On a replica set, a majority of it, not every voting member (the default): with one
      // secondary down a build over a full collection (a rebuild's swap, a new index on upgrade)
      // would wait for it. A standalone server refuses the option (as FerretDB has no sets).
      const quorum = (await this.onReplicaSet()) ? { commitQuorum: 'majority' } : {};
      await target.createIndexes([index], quorum);
    }
  }

  // -------------------------------------------------------------------------------------------
  // reads

  async get<D extends ReadModelDocument>(collection: string, id: string): Promise<D | undefined> {
    const target = this.collection(collection);
    const found = await reach(this.connection.target, () => target.findOne({ _id: documentId(id) }));
    return found ? fromStored<D>(found) : undefined;
  }

  async getMany<D extends ReadModelDocument>(
    collection: string,
    ids: readonly string[],
  ): Promise<Map<string, D>> {
    const wanted = [...new Set(ids.map(documentId))];
    const found = new Map<string, D>();
    if (wanted.length === 0) {
      this.collection(collection); // still refuses a bad name or a closed store
      return found;
    }
    // One batch (no getMore): a rebuild's swap renames collections, which kills open cursors.
    // The limit too: a batch that is exactly full otherwise leaves the cursor open on the server,
    // and the driver asks it for more. Read as the primary has them, not as a majority does: the
    // projector folds onto these, and with w=1 (or a new primary's lagging commit point) a
    // majority read could miss its own last batch and fold over an older copy.
    const batchSize = Math.min(wanted.length, MAX_BATCH);
    const cursor = this.collection(collection).find(
      { _id: { $in: wanted } },
      // `local` said, not left to the URL's readConcernLevel (see above)
      { batchSize, limit: wanted.length, readConcern: { level: 'local' } },
    );
    const rows = await reach(this.connection.target, () => cursor.toArray());
    for (const stored of rows) found.set(stored._id, fromStored<D>(stored));
    return found;
  }

  async find<D extends ReadModelDocument>(collection: string, query: Query): Promise<D[]> {
    const target = this.collection(collection);
    const { limit } = query;
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new RangeError(`limit must be a whole number ≥ 0, got ${limit}`);
    // On an array, $regex would match an element's substring: not what `includes` means. (The
    // settings are known where `init` ran: not in an API instance that leaves it to the projector.)
    const spec = this.specs.get(collection);
    for (const condition of query.where) {
      if (condition.op === 'includes' && spec && spec.fields[condition.field] !== 'string')
        throw new Error(`${collection}.${condition.field}: includes applies to text fields`);
    }
    const filters = query.where.map(conditionFilter);
    const field = storedField(query.orderBy.field);
    const direction = query.orderBy.direction;
    if (direction !== 'asc' && direction !== 'desc')
      throw new Error(`not a sort direction: ${String(direction)}`);
    if (query.after) filters.push(keysetFilter(field, direction, query.after));
    if (limit === 0) return [];
    const order = direction === 'asc' ? 1 : -1;
    const sort: Sort =
      field === '_id'
        ? [['_id', order]]
        : [
            [field, order],
            ['_id', order],
          ];
    const filter: Filter<Stored> =
      filters.length === 0 ? {} : filters.length === 1 ? filters[0] : { $and: filters };
    const projection = query.select ? projectionOf(query.select) : undefined;
    // batchSize: the whole page in the first batch (the server's default is 101 and the rest by
    // getMore), so a rebuild's swap, whose renames kill open cursors, cannot break a page halfway.
    // (Pages are at most 501 rows; a larger limit still gets batches of 10,000.)
    const batchSize = Math.min(limit, MAX_BATCH);
    const rows = await reach(this.connection.target, () =>
      target
        .find(filter, {
          sort,
          limit,
          batchSize,
          maxTimeMS: QUERY_TIME_LIMIT_MS,
          ...(projection && { projection }),
        })
        .toArray(),
    );
    return rows.map((row) => fromStored<D>(row));
  }

  async checkpoint(name: string): Promise<bigint> {
    const checkpoints = this.checkpoints();
    const found = await reach(this.connection.target, () =>
      checkpoints.findOne({ _id: checkpointName(name) }),
    );
    return found ? BigInt(found.position) : 0n;
  }

  // -------------------------------------------------------------------------------------------
  // writes

  async commit({ documents, checkpoint, expect }: CommitBatch): Promise<void> {
    this.usable();
    const name = checkpointName(checkpoint.name);
    if (typeof checkpoint.position !== 'bigint') throw new TypeError('checkpoint.position must be a bigint');
    const position = comparablePosition(checkpoint.position);
    // No transactions: the expectation is checked before the write and again after it, so that
    // a writer learns of a change (a swap announced by `promote`) that came while it wrote.
    const verify = async (maybeWritten: boolean) => {
      if (!expect) return;
      const found = await this.checkpoint(expect.name);
      if (found !== expect.position)
        throw new CheckpointMovedError(expect.name, expect.position, found, maybeWritten);
    };
    await verify(false);

    // per collection, per id: the highest position of the batch (an equal one never overwrites)
    const groups = new Map<string, Map<string, Stored>>();
    for (const { collection, document } of documents) {
      const stored = toStored(document);
      this.name(collection);
      let byId = groups.get(collection);
      if (!byId) groups.set(collection, (byId = new Map()));
      const seen = byId.get(stored._id);
      if (!seen || seen._position < stored._position) byId.set(stored._id, stored);
    }
    // ...and before every bulk after the first: a writer held up mid-batch (a long pause, past
    // its lease) that resumes after a rebuild's swap was announced stops at its next bulk, rather
    // than writing the rest of the batch into the models swapped in. (Not a fence: a bulk sent
    // in the instant after its check can still land; see the README.)
    let bulks = 0;
    const beforeBulk = () => (bulks++ === 0 ? Promise.resolve() : verify(false));
    for (const [collection, byId] of groups)
      await this.writeGuarded(collection, [...byId.values()], beforeBulk);

    // A writer that expects an announcement moves no checkpoint a later swap fenced: one that
    // checked before the swap was announced and writes while its collections move would raise the
    // position reads wait on above what the moved models hold (CheckpointMovedError follows).
    const guarded = {
      _id: name,
      position: { $lt: position },
      ...(expect && { $or: [{ fence: { $exists: false } }, { fence: fenceOf(expect) }] }),
    };
    try {
      await this.checkpoints().updateOne(guarded, { $set: { position } }, { upsert: true });
    } catch (error) {
      if (!isServerError(error, DUPLICATE_KEY)) throw error;
      // It exists: either not lower (it only moves forward), fenced, or another writer inserted
      // it between this write's miss and its insert, maybe lower: try the guarded update again.
      await this.checkpoints().updateOne(guarded, { $set: { position } });
    }
    await verify(true);
  }

  /**
   * The stored `_position`s of these ids (absent ids are not in the map), as a majority has them:
   * a write of an earlier attempt that only the old primary holds (its acknowledgement timed out)
   * must not count as done, or the checkpoint would move past documents a failover rolls back.
   */
  private async storedPositions(collection: string, ids: readonly string[]): Promise<Map<string, string>> {
    const positions = new Map<string, string>();
    const cursor = this.collection(collection).find(
      { _id: { $in: [...ids] } },
      { projection: { _position: 1 }, readConcern: { level: 'majority' } },
    );
    for await (const row of cursor)
      positions.set(row._id, typeof row._position === 'string' ? row._position : '');
    return positions;
  }

  /**
   * Guarded upserts in unordered bulkWrites (of BULK_WRITE_CHUNK each): an id not there yet is
   * inserted, one stored with a lower `_position` is replaced under the guard `_position < new`,
   * anything else is skipped
   * (so a repeated batch writes nothing). An insert that loses a race with another writer (E11000)
   * becomes a guarded replace. Why not `replaceOne(guard, { upsert: true })` for everything:
   * FerretDB 1.24 stops an unordered `update` at its first E11000, dropping the rest of the batch.
   */
  private async writeGuarded(
    collection: string,
    documents: readonly Stored[],
    beforeBulk: () => Promise<void> = () => Promise.resolve(),
  ): Promise<void> {
    const target = this.collection(collection);
    const stored = await this.storedPositions(
      collection,
      documents.map((d) => d._id),
    );
    const replace = (document: Stored) => {
      const { _id, ...replacement } = document;
      return { filter: { _id, _position: { $lt: document._position } }, replacement };
    };
    const writes: { document: Stored; operation: AnyBulkWriteOperation<Stored> }[] = [];
    for (const document of documents) {
      const current = stored.get(document._id);
      if (current === undefined) writes.push({ document, operation: { insertOne: { document } } });
      else if (current < document._position)
        writes.push({ document, operation: { replaceOne: replace(document) } });
    }
    const raced: Stored[] = [];
    for (let start = 0; start < writes.length; start += BULK_WRITE_CHUNK) {
      await beforeBulk();
      raced.push(...(await this.bulkWriteRacing(target, writes.slice(start, start + BULK_WRITE_CHUNK))));
    }
    // inserted meanwhile by someone else: replace it only if it is older (documents are never deleted)
    if (raced.length > 0) await beforeBulk();
    for (const document of raced) {
      const { filter, replacement } = replace(document);
      await target.replaceOne(filter, replacement);
    }
  }

  /** One unordered bulkWrite: the documents whose insert lost a race (E11000), any other error thrown. */
  private async bulkWriteRacing(
    target: Collection<Stored>,
    writes: readonly { document: Stored; operation: AnyBulkWriteOperation<Stored> }[],
  ): Promise<Stored[]> {
    try {
      await target.bulkWrite(
        writes.map((w) => w.operation),
        { ordered: false },
      );
      return [];
    } catch (error) {
      // (with write errors too, the driver keeps a write-concern error only in the result)
      if (
        !(error instanceof MongoBulkWriteError) ||
        error.writeConcernError ||
        error.result?.getWriteConcernError()
      ) {
        throw error;
      }
      const failures: WriteError[] = Array.isArray(error.writeErrors)
        ? error.writeErrors
        : [error.writeErrors];
      if (failures.length === 0) throw error;
      return failures.map((failure) => {
        const write = writes[failure.index];
        if (failure.code !== DUPLICATE_KEY || !write || !('insertOne' in write.operation)) throw error;
        return write.document;
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // rebuilds

  /**
   * A fresh, empty store over `rebuild_<stamp>__<name>` collections of the same database (leftovers of an
   * earlier rebuild are dropped), initialised with this store's collections. One rebuild at a time.
   */
  async createShadow(): Promise<MongoShadowReadModelStore> {
    this.usable();
    if (this.prefix) throw new Error('a shadow store cannot have a shadow of its own');
    const shadow = new MongoReadModelStore(this.connection.client, this.connection.db.databaseName);
    shadow.connection = this.connection;
    shadow.prefix = `${MONGO_SHADOW_PREFIX}${Date.now().toString(36)}${randomBytes(2).toString('hex')}__`;
    await this.takeRebuildLease(shadow.prefix);
    shadow.leaseRenewal = setInterval(() => {
      this.renewRebuildLease(shadow).catch(() => undefined); // a store that is down fails the rebuild anyway
    }, REBUILD_LEASE_RENEW_MS);
    shadow.leaseRenewal.unref();
    try {
      await this.dropPrefixed(MONGO_SHADOW_PREFIX); // leftovers of rebuilds that died
      shadow.deferIndexes = true;
      await shadow.init([...this.specs.values()]);
      // Gone if a later `createShadow` drops these collections (writes would re-create them empty).
      await shadow
        .checkpoints()
        .insertOne({ _id: SHADOW_MARK, position: comparablePosition(0n), prefix: shadow.prefix });
    } catch (error) {
      await this.releaseRebuildLease(shadow);
      throw error;
    }
    return Object.assign(shadow, {
      promote: (options?: PromoteOptions) => this.promoteShadow(shadow, options),
      discard: () => this.discardShadow(shadow),
    });
  }

  /**
   * Moves every shadow collection over its live one, then makes the live checkpoints exactly the
   * shadow's. Not one step (no transactions): `announce`, a checkpoint written into the live
   * store before anything moves, tells live writers that a swap is under way, and
   * `acknowledged` waits for them to pause (`Projector` writes nothing from then until the
   * shadow's generation is in). Per collection this is one
   * `renameCollection` with `dropTarget` on MongoDB; FerretDB 1.x has no `dropTarget`, so there
   * the live collection is renamed aside, the shadow renamed in and the old one dropped: a reader
   * can find that one collection missing (so empty) for that moment. The checkpoints are written
   * in place, not renamed, so they are never missing: a checkpoint read mid-swap finds the old or
   * the new value. A crash half-way leaves the announcement without its generation; the next
   * rebuild completes it.
   */
  private async promoteShadow(shadow: MongoReadModelStore, options?: PromoteOptions): Promise<void> {
    this.usable();
    if (shadow.finished === 'promoted' || shadow.finished === 'discarded') {
      throw new Error(`this shadow store was already ${shadow.finished}`);
    }
    const held = await this.intactCheckpoints(shadow); // fail fast, before building indexes
    if (options) {
      // Copying the announced value in is what marks the swap done: the shadow must hold it.
      const { name, position } = options.announce;
      if (!held.some((c) => c._id === name && c.position === comparablePosition(position))) {
        throw new Error(`this shadow does not hold ${name} = ${position}: was another rebuild started?`);
      }
    }
    // Indexes built once over the full collections, before any of them is visible.
    for (const spec of shadow.specs.values()) await shadow.indexCollection(spec);
    let withdraw: (() => Promise<void>) | undefined;
    if (options) {
      const { name, position } = options.announce;
      const previous = await this.checkpoint(name);
      await this.commit({ documents: [], checkpoint: options.announce });
      // Until something moves, a failure (the wait, a read, an interrupt) withdraws the
      // announcement, or live projectors would wait for a swap that never comes. Only ours: a
      // checkpoint still holding our value (another rebuild's announcement stays).
      withdraw = async () => {
        await this.checkpoints()
          .updateOne(
            { _id: name, position: comparablePosition(position) },
            { $set: { position: comparablePosition(previous) } },
          )
          .catch(() => undefined);
      };
    }
    let rebuilt: Checkpoint[];
    let names: string[];
    const fence = options && fenceOf(options.announce);
    const lowered: { name: string; before: Checkpoint | null; to: string }[] = [];
    const checkpoints = `${shadow.prefix}${CHECKPOINTS}`;
    try {
      if (options) {
        const { name, position } = options.announce;
        await options.acknowledged?.();
        if ((await this.checkpoint(name)) !== position) {
          throw new Error(`another swap was announced over this one (${name}); nothing was moved`);
        }
      }
      // Read again just before anything moves: the indexes and the wait took time.
      if (!(await this.renewRebuildLease(shadow))) {
        throw new Error(
          'this rebuild lost its lease (not renewed in time); another may have started; nothing was moved',
        );
      }
      rebuilt = await this.intactCheckpoints(shadow);
      names = (await this.collectionNames()).filter((n) => n.startsWith(shadow.prefix) && n !== checkpoints);
      // The collections move one by one: first the position reads wait on comes down to the
      // rebuilt one where the live models ran ahead (their projector went on while the shadow
      // filled), or a `minPosition` read mid-swap would pass and read the rebuilt collections.
      // It is fenced as it comes down, so that a writer that checked before the announcement
      // (a report's catch-up, a projector past its lease) cannot raise it again meanwhile.
      for (const name of options?.lowerFirst ?? []) {
        const rebuiltAt = rebuilt.find((c) => c._id === name)?.position;
        if (rebuiltAt === undefined) continue;
        for (;;) {
          const before = await this.checkpoints().findOne({ _id: name });
          const to = before && before.position <= rebuiltAt ? before.position : rebuiltAt;
          // listed before the write: one that fails unheard (a lost acknowledgement) may have
          // landed, and is put back with the others (a no-op where it did not land)
          lowered.push({ name, before, to });
          if (before) {
            const { matchedCount } = await this.checkpoints().updateOne(
              { _id: name, position: before.position, fence: before.fence ?? { $exists: false } },
              { $set: { position: to, fence } },
            );
            if (matchedCount === 0) {
              lowered.pop(); // a writer moved it meanwhile: read it again
              continue;
            }
          } else {
            try {
              await this.checkpoints().insertOne({ _id: name, position: to, fence });
            } catch (error) {
              if (!isServerError(error, DUPLICATE_KEY)) throw error;
              lowered.pop();
              continue;
            }
          }
          break;
        }
      }
    } catch (error) {
      // nothing moved: what was lowered goes back up, unfenced (unless something moved it meanwhile)
      for (const { name, before, to } of lowered) {
        const ours = { _id: name, position: to, fence };
        await (
          before ? this.checkpoints().replaceOne(ours, before) : this.checkpoints().deleteOne(ours)
        ).catch(() => undefined);
      }
      // ...and, should a put-back fail too, any still fenced: unfenced where it stands (lowered:
      // reads wait until the projector raises it again), or its writer would be kept from it for
      // good once the announcement is withdrawn
      if (fence && options?.lowerFirst?.length) {
        await this.checkpoints()
          .updateMany({ _id: { $in: [...options.lowerFirst] }, fence }, { $unset: { fence: '' } })
          .catch(() => undefined);
      }
      await withdraw?.();
      throw error;
    }
    for (const from of names.sort()) await this.moveOver(from, from.slice(shadow.prefix.length));
    // The ones holding the announced value last: once one of them is in, the swap is done.
    const done = options && comparablePosition(options.announce.position);
    rebuilt.sort((a, b) => Number(a.position === done) - Number(b.position === done));
    await this.checkpoints().deleteMany({ _id: { $nin: rebuilt.map((c) => c._id) } });
    for (const { _id, position } of rebuilt) {
      // fenced: a writer that still expects the models before this swap moves none of them
      await this.checkpoints().replaceOne({ _id }, fence ? { position, fence } : { position }, {
        upsert: true,
      });
    }
    await this.drop(checkpoints);
    for (const [name, spec] of shadow.specs) this.specs.set(name, spec);
    shadow.finished = 'promoted';
    await this.releaseRebuildLease(shadow);
  }

  /**
   * The shadow's checkpoints, without its mark; refuses a shadow whose collections a later
   * `createShadow` dropped (writes re-create them empty, the mark does not come back).
   */
  private async intactCheckpoints(shadow: MongoReadModelStore): Promise<Checkpoint[]> {
    const all = await shadow.checkpoints().find({}).toArray();
    const intact = all.some((c) => c._id === SHADOW_MARK && c.prefix === shadow.prefix);
    const rebuilt = all.filter((c) => c._id !== SHADOW_MARK);
    if (!intact || rebuilt.length === 0) {
      throw new Error('this shadow was dropped (by another rebuild started meanwhile?); nothing was moved');
    }
    return rebuilt;
  }

  private async discardShadow(shadow: MongoReadModelStore): Promise<void> {
    if (shadow.finished === 'promoted' || shadow.finished === 'discarded') return; // nothing left
    this.usable();
    await this.dropPrefixed(shadow.prefix); // its own: not those of a rebuild started after it
    shadow.finished = 'discarded';
    await this.releaseRebuildLease(shadow);
  }

  /** A lease collection: one document per lease, `{ _id, owner, until }` (ms since the epoch). */
  private leaseCollection(name: typeof REBUILD_LEASES | typeof PROJECTOR_LEASES) {
    return this.connection.db.collection<{ _id: string; owner: string; until: number }>(name);
  }

  private leases() {
    return this.leaseCollection(REBUILD_LEASES);
  }

  /** Takes the lease if nobody holds it or its holder stopped renewing it. */
  private async takeRebuildLease(owner: string): Promise<void> {
    const now = Date.now();
    try {
      await this.leases().updateOne(
        { _id: 'rebuild', until: { $lt: now } },
        { $set: { owner, until: now + REBUILD_LEASE_MS } },
        { upsert: true },
      );
    } catch (error) {
      if (!isServerError(error, DUPLICATE_KEY)) throw error;
      // held: the upsert found no expired lease and could not insert a second one
      const held = await this.leases().findOne({ _id: 'rebuild' });
      throw new RebuildInProgressError(held?.owner ?? 'unknown', held?.until ?? now);
    }
  }

  /**
   * Extends the lease while this shadow's rebuild holds it; false once it does not (it was not
   * renewed in time and another rebuild took it): that rebuild must not move anything.
   */
  private async renewRebuildLease(shadow: MongoReadModelStore): Promise<boolean> {
    const now = Date.now();
    const renewed = await this.leases().updateOne(
      { _id: 'rebuild', owner: shadow.prefix, until: { $gte: now } },
      { $set: { until: now + REBUILD_LEASE_MS } },
    );
    return renewed.matchedCount === 1;
  }

  private async releaseRebuildLease(shadow: MongoReadModelStore): Promise<void> {
    clearInterval(shadow.leaseRenewal);
    shadow.leaseRenewal = undefined;
    await this.leases()
      .deleteOne({ _id: 'rebuild', owner: shadow.prefix })
      .catch(() => undefined); // then it runs out by itself
  }

  /**
   * Takes the projector lease if nobody holds it or it ran out, or extends it for its holder. The
   * update is conditional on either, atomic on MongoDB; a second holder's insert fails on the
   * unique `_id`. The lease is read back, since FerretDB 1.x applies a conditional update as a
   * read and then a write: there two claims in the same moment could both write, and the one
   * written last holds it (the other learns so at its next renewal at the latest).
   */
  async claimProjectorLease(owner: string, ttlMs: number, now = Date.now()): Promise<ProjectorLeaseState> {
    this.usable();
    const leases = this.projectorLeases();
    return reach(this.connection.target, async () => {
      try {
        await leases.updateOne(
          { _id: 'projector', $or: [{ owner }, { until: { $lt: now } }] },
          { $set: { owner, until: now + ttlMs } },
          { upsert: true },
        );
      } catch (error) {
        if (!isServerError(error, DUPLICATE_KEY)) throw error; // held by another: read below
      }
      const lease = await leases.findOne({ _id: 'projector' });
      return {
        held: lease?.owner === owner,
        owner: lease?.owner ?? '',
        until: lease?.until ?? 0,
      };
    });
  }

  async releaseProjectorLease(owner: string): Promise<void> {
    this.usable();
    await reach(this.connection.target, () => this.projectorLeases().deleteOne({ _id: 'projector', owner }));
  }

  private projectorLeases() {
    return this.leaseCollection(PROJECTOR_LEASES);
  }

  private async dropPrefixed(prefix: string) {
    for (const name of await this.collectionNames()) {
      if (name.startsWith(prefix)) await this.drop(name);
    }
  }

  private async drop(name: string) {
    await this.connection.db.dropCollection(name).catch((error: unknown) => {
      if (!isServerError(error, NAMESPACE_NOT_FOUND)) throw error;
    });
  }

  private async moveOver(from: string, to: string) {
    const { db } = this.connection;
    if (this.connection.dropTargetRename !== false) {
      try {
        await db.renameCollection(from, to, { dropTarget: true });
        this.connection.dropTargetRename = true;
        return;
      } catch (error) {
        if (!isServerError(error, NOT_IMPLEMENTED)) throw error;
        this.connection.dropTargetRename = false;
      }
    }
    const parked = `${RETIRED_PREFIX}${to}`;
    await this.drop(parked);
    let parkedLive = true;
    try {
      await db.renameCollection(to, parked);
    } catch (error) {
      if (!isServerError(error, NAMESPACE_NOT_FOUND)) throw error;
      parkedLive = false;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await db.renameCollection(from, to);
        break;
      } catch (error) {
        // A live write that began before the swap was announced re-created `to` after it was
        // parked: drop that one and go on (the writer finds the announcement when it checks
        // after writing, and applies its batch again once the swap is done).
        if (attempt < 5 && isServerError(error, NAMESPACE_EXISTS)) {
          await this.drop(to);
          continue;
        }
        if (parkedLive) await db.renameCollection(parked, to).catch(() => undefined); // put it back
        throw error;
      }
    }
    if (parkedLive) await this.drop(parked);
  }

  // -------------------------------------------------------------------------------------------

  async ping(): Promise<void> {
    await this.usable().command({ ping: 1 });
  }

  /** Closes the client if this store opened it (`connect`); a shadow's close leaves the live store be. */
  async close(): Promise<void> {
    if (this.prefix) {
      this.finished ??= 'closed';
      clearInterval(this.leaseRenewal); // a rebuild abandoned unfinished: its lease runs out
      return;
    }
    if (this.connection.closed) return;
    this.connection.closed = true;
    if (this.connection.ownsClient) await this.connection.client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// mapping

const documentId = (id: string): string => {
  if (typeof id !== 'string' || id.length === 0)
    throw new TypeError(`a document id must be a non-empty string`);
  return id;
};

const checkpointName = (name: string): string => {
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError('a checkpoint name must be a non-empty string');
  if (name === SHADOW_MARK) throw new TypeError(`${SHADOW_MARK} is a reserved checkpoint name`);
  return name;
};

/** `id` is the `_id`; any other field (or dotted path) is stored as is. */
const storedField = (field: string): string => {
  if (field === 'id') return '_id';
  if (typeof field !== 'string' || !FIELD_PATH.test(field) || field === '_id') {
    throw new Error(`not a queryable field: ${String(field)}`);
  }
  return field;
};

/**
 * An array directly inside an array is stored as `{ [NESTED_ARRAY]: [...] }`: FerretDB 1.x
 * refuses nested arrays ("nested arrays are not supported"). Done on every server, so the stored
 * form does not depend on it; top-level arrays (the ones `contains` looks into) stay as they are.
 */
export const NESTED_ARRAY = '__nested_array__';

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
};

const encode = (value: unknown, id: string): unknown => {
  if (Array.isArray(value)) {
    return value.map((element) =>
      Array.isArray(element) ? { [NESTED_ARRAY]: encode(element, id) } : encode(element, id),
    );
  }
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === NESTED_ARRAY) throw new Error(`document ${id}: the field name ${NESTED_ARRAY} is reserved`);
    out[key] = encode(inner, id);
  }
  return out;
};

const decode = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(decode);
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === NESTED_ARRAY && Array.isArray(value[NESTED_ARRAY])) {
    return decode(value[NESTED_ARRAY]);
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = decode(value[key]);
  return out;
};

const toStored = (document: ReadModelDocument): Stored => {
  if (!isPlainObject(document)) throw new TypeError('a read-model document must be a plain object');
  const id = documentId(document.id);
  if ('_id' in document) throw new Error(`document ${id}: the field _id is reserved`);
  const fields = encode(document, id) as Record<string, unknown>;
  return { _id: id, ...fields, _position: storedPosition(document._position, `document ${id}`) };
};

/** The document as committed: without `_id`, `_position` back to its plain decimal. */
const fromStored = <D>(stored: Document): D => {
  const document: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(stored)) {
    if (key === '_id') continue;
    document[key] = key === '_position' ? portPosition(value) : decode(value);
  }
  return document as D;
};

/** A find projection of these paths (a path inside another selected one is left to it). */
const projectionOf = (paths: readonly string[]): Document => {
  // the stored document keeps its own `id` next to `_id`
  const projection: Document = { id: 1, _position: 1 };
  const wanted = paths.map((path) => {
    if (typeof path !== 'string' || !FIELD_PATH.test(path) || path === '_id')
      throw new Error(`not a valid field path: ${String(path)}`);
    return path;
  });
  for (const path of wanted) {
    if (!wanted.some((other) => path.startsWith(`${other}.`))) projection[path] = 1;
  }
  return projection;
};

interface IndexSpec {
  readonly key: Record<string, 1>;
  readonly name: string;
}

const indexOf = (fields: readonly string[]): IndexSpec => {
  const key: Record<string, 1> = {};
  for (const field of [...fields.map(storedField), '_id']) key[field] = 1; // `_id` breaks sort ties
  return { key, name: `by_${fields.join('_').replace(/\./g, '_')}` };
};

/** A query value as stored: `_position` padded; nothing but plain scalars (no operator objects). */
const queryValue = (field: string, value: unknown, allowed: readonly string[]): Scalar => {
  const type = typeof value;
  if (!allowed.includes(type) || (type === 'number' && !Number.isFinite(value as number))) {
    throw new TypeError(`${field}: not a valid value for this condition: ${String(value)}`);
  }
  if (field === '_position') return storedPosition(value as string, 'query on _position');
  return value as Scalar;
};

const conditionFilter = (condition: Condition): Filter<Stored> => {
  const field = storedField(condition.field);
  switch (condition.op) {
    case 'eq':
      return { [field]: queryValue(field, condition.value, ['string', 'number', 'boolean']) };
    case 'gte':
      return { [field]: { $gte: queryValue(field, condition.value, ['string', 'number']) } };
    case 'lt':
      return { [field]: { $lt: queryValue(field, condition.value, ['string', 'number']) } };
    case 'contains':
      // an array field holding the value (MongoDB matches array elements by equality)
      return { [field]: queryValue(field, condition.value, ['string']) };
    case 'includes': {
      // a plain substring: every character that means something in a pattern is escaped
      const text = queryValue(field, condition.value, ['string']) as string;
      return { [field]: { $regex: text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&') } };
    }
    default:
      throw new Error(`not a query operator: ${String((condition as { op: unknown }).op)}`);
  }
};

/**
 * Rows strictly after (value, id) in the sort order, nulls (and missing) lowest. A typed field
 * holds one type, and `$gt`/`$lt` compare within that type, so nulls are added back by hand.
 */
const keysetFilter = (
  field: string,
  direction: 'asc' | 'desc',
  after: NonNullable<Query['after']>,
): Filter<Stored> => {
  const id = documentId(after.id);
  const beyond = direction === 'asc' ? '$gt' : '$lt';
  if (field === '_id') return { _id: { [beyond]: id } };
  if (after.value === null || after.value === undefined) {
    const amongNulls = { [field]: null, _id: { [beyond]: id } };
    return direction === 'asc' ? { $or: [amongNulls, { [field]: { $ne: null } }] } : amongNulls;
  }
  const value = queryValue(field, after.value, ['string', 'number', 'boolean']);
  const or: Filter<Stored>[] = [{ [field]: { [beyond]: value } }, { [field]: value, _id: { [beyond]: id } }];
  if (direction === 'desc') or.push({ [field]: null });
  return { $or: or };
};
