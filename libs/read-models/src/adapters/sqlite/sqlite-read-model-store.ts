import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  CheckpointMovedError,
  type CollectionSpec,
  type CommitBatch,
  type Condition,
  type Query,
  type ReadModelDocument,
  type ReadModelStore,
  SHADOW_MARK,
  type ShadowReadModelStore,
} from '../../read-model-store.port';
import { comparablePosition } from '../../position';

const LIVE = 'rm_';
const SHADOW = 'rb_';
const IDENT = /^[a-z][a-z0-9_]*$/i;

const quote = (name: string) => {
  if (!IDENT.test(name)) throw new Error(`not a valid collection or field name: ${name}`);
  return `"${name}"`;
};

const toSql = (value: unknown) => (typeof value === 'boolean' ? (value ? 1 : 0) : (value ?? null));

/**
 * Read models in one SQLite file (separate from the event store): a table per collection with
 * the document as JSON plus a column per queried field, indexed as the collection asks.
 * Documents and checkpoint of a batch are written in one transaction.
 */
export class SqliteReadModelStore implements ReadModelStore {
  private readonly specs = new Map<string, CollectionSpec>();
  private checkpointsMade = false;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly upserts = new Map<string, { sql: string; columns: string[] }>();

  /**
   * `deferIndexes` (a rebuild's shadow): tables without their secondary indexes while they fill;
   * `promote` builds them once over the finished tables, which is several times cheaper than
   * keeping ten B-trees up to date through hundreds of thousands of inserts.
   */
  private constructor(
    private readonly db: Database.Database,
    private readonly prefix: string,
    private readonly ownsDb: boolean,
    private readonly deferIndexes = false,
  ) {}

  static open(file: string): SqliteReadModelStore {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 }); // as the event store's
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    // A lost tail after a power cut is replayed from the event store: NORMAL is enough here.
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    return new SqliteReadModelStore(db, LIVE, true);
  }

  /**
   * How long a write waits for another connection's write lock before it fails (SQLITE_BUSY).
   * A projector on the API's own thread sets it short: SQLite waits synchronously, so a file
   * held elsewhere (a rebuild's batch, a backup) would stop every request for the whole wait at
   * each attempt; failing soon hands the wait to the projector's retry with backoff instead.
   */
  waitForLocksAtMost(ms: number): void {
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(ms))}`);
  }

  /**
   * A rebuild's shadow tables (made by `createShadow` on another connection) over a connection
   * of its own: one shard of a parallel rebuild writes its documents there.
   */
  static async openShadow(
    file: string,
    collections: readonly CollectionSpec[],
    /** The rebuild's mark (`shadowMark` of its shadow): writes stop once another took the tables. */
    mark?: string,
  ): Promise<SqliteReadModelStore> {
    const live = SqliteReadModelStore.open(file);
    // Shards and a live projector take turns at the write lock, each for a batch: a shard
    // waits as long as it must rather than fail a long rebuild near its end.
    live.waitForLocksAtMost(60_000);
    const shadow = new SqliteReadModelStore(live.db, SHADOW, true, true);
    shadow.mark = mark;
    await shadow.init(collections);
    return shadow;
  }

  /**
   * A shadow's mark: every rebuild's shadow has the same table names, and a later one drops and
   * makes them again. Each commit checks the mark in the same transaction, so a rebuild that
   * was superseded writes nothing into the later one's tables (its folds would be wrong there).
   */
  private mark?: string;

  get shadowMark(): string | undefined {
    return this.mark;
  }

  /** The database file (`:memory:` for an in-memory one). */
  get file(): string {
    return this.db.name;
  }

  private table(collection: string) {
    return quote(`${this.prefix}${collection}`);
  }

  private get checkpoints() {
    return quote(`${this.prefix}checkpoints`);
  }

  private statement(sql: string) {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  async init(collections: readonly CollectionSpec[]): Promise<void> {
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS ${this.checkpoints} (name TEXT PRIMARY KEY, position TEXT NOT NULL)`,
    );
    for (const spec of collections) {
      this.specs.set(spec.name, spec);
      const columns = this.columnsOf(spec).map((field) => `${quote(field)} ${sqlType(spec.fields[field])}`);
      // The document last: a row longer than a page spills into overflow pages, and a column
      // stored after it would be reached only by walking them.
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ${this.table(spec.name)} (id TEXT PRIMARY KEY, position TEXT NOT NULL${columns.map((c) => `, ${c}`).join('')}, doc TEXT NOT NULL)`,
      );
      this.fillColumns(spec);
      this.upserts.delete(spec.name);
      if (!this.deferIndexes) this.createIndexes(spec);
    }
  }

  /**
   * A field added to a collection's queried fields since its table was made gets its column
   * filled from the documents, in the transaction that adds it: a document written before may
   * hold the field already, and a change closed long ago is never written again, so a NULL there
   * would drop it from every filter on the field (MongoDB reads the document itself). Columns
   * added by a release that did not fill them (before this existed) are filled once, recorded in
   * `filled_columns`. The migration waits for another process doing the same (a busy file).
   */
  private fillColumns(spec: CollectionSpec) {
    if (this.deferIndexes) return; // a rebuild's shadow: its tables are made new, with every column
    const table = this.table(spec.name);
    const present = new Set(
      (this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name),
    );
    const filled = quote(`${this.prefix}filled_columns`);
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS ${filled} (tbl TEXT NOT NULL, col TEXT NOT NULL, PRIMARY KEY (tbl, col))`,
    );
    const isFilled = this.db.prepare(`SELECT 1 FROM ${filled} WHERE tbl = ? AND col = ?`);
    const markFilled = this.db.prepare(`INSERT OR IGNORE INTO ${filled} (tbl, col) VALUES (?, ?)`);
    for (const field of this.columnsOf(spec)) {
      const column = quote(field); // checks the name before it goes into the JSON path too
      const isNew = !present.has(field);
      if (!isNew && isFilled.get(spec.name, field)) continue;
      // JSON columns hold the JSON text (`->`), arrays their elements' text (see `toColumn`), the
      // others the SQL value (`->>`: true is 1)
      const type = spec.fields[field];
      const path = `'$.${field}'`;
      const fromDoc =
        type === 'string[]'
          ? `(CASE json_type(doc, ${path}) ` +
            `WHEN 'array' THEN (CASE WHEN EXISTS (SELECT 1 FROM json_each(doc, ${path}) WHERE type <> 'text' OR instr(value, char(31)) > 0) ` +
            `THEN char(30) ELSE (SELECT char(31) || group_concat(value, char(31)) || char(31) FROM json_each(doc, ${path})) END) ` +
            `WHEN 'text' THEN (CASE WHEN instr(doc ->> ${path}, char(31)) > 0 THEN char(30) ELSE char(31) || (doc ->> ${path}) || char(31) END) ` +
            `END)`
          : `doc ${type === 'json' ? '->' : '->>'} ${path}`;
      withBusyRetries(() =>
        this.db
          .transaction(() => {
            const added = Boolean(
              (this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).find(
                (c) => c.name === field,
              ),
            );
            if (added && isFilled.get(spec.name, field)) return; // another process did it meanwhile
            if (!added)
              this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${sqlType(spec.fields[field])}`);
            this.db.exec(
              `UPDATE ${table} SET ${column} = ${fromDoc} WHERE ${column} IS NULL AND ${fromDoc} IS NOT NULL`,
            );
            markFilled.run(spec.name, field);
          })
          .immediate(),
      );
    }
  }

  /** Another process may be building the same index over a large table: wait for it, as for a fill. */
  private createIndexes(spec: CollectionSpec) {
    for (const fields of this.indexesOf(spec)) {
      const name = quote(this.indexName(spec, fields));
      withBusyRetries(() =>
        this.db.exec(
          `CREATE INDEX IF NOT EXISTS ${name} ON ${this.table(spec.name)} (${[...fields.map(quote), 'id'].join(', ')})`,
        ),
      );
    }
  }

  /** The spec's indexes over fields it has, its scan indexes among them. */
  private indexesOf(spec: CollectionSpec) {
    const columns = new Set(this.columnsOf(spec));
    return [...spec.indexes, ...(spec.scanIndexes ?? []).map((field) => [field])].filter((index) =>
      index.every((f) => f === 'id' || columns.has(f)),
    );
  }

  /**
   * For a `contains` on an array field (or an `includes` on a text field) whose value few
   * documents hold: their ids, found by
   * scanning the index over that field (cheap: one short text per document). SQLite's planner
   * would walk the sort order through the table instead, reading every row when few match
   * (460 ms at 100,000 changes). When many hold it (ARRAY_INDEX_MATCHES or more), that walk finds
   * a page soon: undefined, left to the planner.
   */
  private fewHolding(spec: CollectionSpec, query: Query): string[] | undefined {
    if (this.deferIndexes) return undefined; // a shadow: no secondary index yet
    // An `includes` on an indexed text field, the same way: the index holds the text without
    // the document (a row's text column sits after its document, read through to reach it).
    // Each such condition in turn (a common system may stand beside a rare text): the first that
    // few documents meet gives the ids.
    for (const probe of query.where) {
      if (probe.op !== 'contains' && probe.op !== 'includes') continue;
      const fields = this.indexesOf(spec).find((index) => index[0] === probe.field);
      if (!fields) continue;
      const { sql, values } = this.conditionSql(spec, probe);
      try {
        const ids = this.statement(
          `SELECT id FROM ${this.table(spec.name)} INDEXED BY ${quote(this.indexName(spec, fields))} WHERE ${sql} LIMIT ${ARRAY_INDEX_MATCHES}`,
        )
          .pluck()
          .all(...values) as string[];
        if (ids.length < ARRAY_INDEX_MATCHES) return ids;
      } catch (error) {
        // Tables swapped in by a release that did not make the index: the planner's way, slower.
        if (!/no such index/.test((error as Error).message)) throw error;
      }
    }
    return undefined;
  }

  private indexName(spec: CollectionSpec, fields: readonly string[]) {
    return `${this.prefix}${spec.name}__${fields.join('_')}`;
  }

  /** Every queried field has a column (an array field: its elements as one text, see `toColumn`). */
  private columnsOf(spec: CollectionSpec) {
    return Object.keys(spec.fields);
  }

  private spec(collection: string): CollectionSpec {
    const spec = this.specs.get(collection);
    if (!spec) throw new Error(`collection ${collection} was not initialised`);
    return spec;
  }

  async get<D extends ReadModelDocument>(collection: string, id: string): Promise<D | undefined> {
    const row = this.statement(`SELECT doc FROM ${this.table(collection)} WHERE id = ?`).get(id) as
      { doc: string } | undefined;
    return row ? (JSON.parse(row.doc) as D) : undefined;
  }

  async getMany<D extends ReadModelDocument>(
    collection: string,
    ids: readonly string[],
  ): Promise<Map<string, D>> {
    const found = new Map<string, D>();
    if (ids.length === 0) return found;
    const rows = this.statement(
      `SELECT doc FROM ${this.table(collection)} WHERE id IN (SELECT value FROM json_each(?))`,
    ).all(JSON.stringify(ids)) as { doc: string }[];
    for (const row of rows) {
      const doc = JSON.parse(row.doc) as D;
      found.set(doc.id, doc);
    }
    return found;
  }

  async find<D extends ReadModelDocument>(collection: string, query: Query): Promise<D[]> {
    const spec = this.spec(collection);
    const where: string[] = [];
    const params: unknown[] = [];
    for (const condition of query.where) {
      const { sql, values } = this.conditionSql(spec, condition);
      where.push(sql);
      params.push(...values);
    }
    const few = this.fewHolding(spec, query);
    const { field, direction } = query.orderBy;
    if (spec.fields[field] === 'json' || spec.fields[field] === 'string[]')
      throw new Error(`${spec.name}.${field} is not a sortable field`);
    // The bare column (NULLs lowest, as in MongoDB), so that the (field, id) index serves the sort.
    const sortColumn = field === 'id' ? 'id' : quote(field);
    if (query.after) {
      const op = direction === 'asc' ? '>' : '<';
      const value = toSql(query.after.value);
      if (value === null) {
        where.push(
          direction === 'asc'
            ? `(${sortColumn} IS NOT NULL OR (${sortColumn} IS NULL AND id > ?))`
            : `(${sortColumn} IS NULL AND id < ?)`,
        );
        params.push(query.after.id);
      } else {
        where.push(
          `(${sortColumn} ${op} ?${direction === 'desc' ? ` OR ${sortColumn} IS NULL` : ''} OR (${sortColumn} = ? AND id ${op} ?))`,
        );
        params.push(value, value, query.after.id);
      }
    }
    // Only columns selected: read them, not the document.
    const fromColumns = query.select?.every(
      (f) => Object.hasOwn(spec.fields, f) && spec.fields[f] !== 'string[]', // arrays: from the document
    )
      ? query.select
      : undefined;
    const selected = fromColumns
      ? ['id', 'position', ...fromColumns.map(quote)].join(', ')
      : query.select
        ? selectSql(query.select)
        : 'doc';
    const sql =
      `SELECT ${selected} FROM ` +
      // the few documents found in the index, each looked up by id (CROSS JOIN keeps that order)
      (few
        ? `(SELECT value AS found FROM json_each(?)) CROSS JOIN ${this.table(collection)} ON id = found`
        : this.table(collection)) +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY ${sortColumn} ${direction}, id ${direction} LIMIT ?`;
    params.push(query.limit);
    if (few) params.unshift(JSON.stringify(few));
    if (fromColumns) {
      return (this.statement(sql).all(...params) as Record<string, unknown>[]).map((row) => {
        const document: Record<string, unknown> = {
          id: row.id,
          _position: plainPosition(row.position as string),
        };
        for (const field of fromColumns) document[field] = fromSql(spec.fields[field], row[field]);
        return document as unknown as D;
      });
    }
    return (this.statement(sql).all(...params) as { doc: string }[]).map((r) => JSON.parse(r.doc) as D);
  }

  private conditionSql(spec: CollectionSpec, condition: Condition): { sql: string; values: unknown[] } {
    const type = spec.fields[condition.field];
    if (condition.field !== 'id' && (!type || type === 'json'))
      throw new Error(`${spec.name}.${condition.field} is not a queryable field`);
    if (type === 'string[]' && condition.op !== 'contains')
      throw new Error(`${spec.name}.${condition.field} is an array: only contains applies`);
    if (condition.op === 'includes' && (type !== 'string' || typeof condition.value !== 'string'))
      throw new Error(`${spec.name}.${condition.field}: includes applies to text fields and text values`);
    const column = condition.field === 'id' ? 'id' : quote(condition.field);
    const value = toSql(condition.value);
    switch (condition.op) {
      case 'eq':
        return { sql: `${column} = ?`, values: [value] };
      case 'gte':
        return { sql: `${column} >= ?`, values: [value] };
      case 'lt':
        return { sql: `${column} < ?`, values: [value] };
      case 'includes':
        // instr: a plain substring (LIKE would read % and _ and fold ASCII case)
        return { sql: `instr(${column}, ?) > 0`, values: [value] };
      case 'contains': {
        // Documents whose elements could not be joined unambiguously are searched in the JSON.
        const inDocument = `(${column} = char(30) AND EXISTS (SELECT 1 FROM json_each(doc, '$.${condition.field}') WHERE value = ?))`;
        if (typeof condition.value !== 'string' || condition.value.includes(ELEMENT_SEPARATOR))
          return { sql: inDocument, values: [value] };
        return {
          sql: `(instr(${column}, ?) > 0 OR ${inDocument})`,
          values: [`${ELEMENT_SEPARATOR}${condition.value}${ELEMENT_SEPARATOR}`, value],
        };
      }
    }
  }

  /** The guarded upsert of a collection: written only over a lower position. */
  private upsertOf(collection: string) {
    let upsert = this.upserts.get(collection);
    if (!upsert) {
      const columns = this.columnsOf(this.spec(collection));
      const table = this.table(collection);
      const assigned = ['position', 'doc', ...columns.map(quote)];
      const sql =
        `INSERT INTO ${table} (id, ${assigned.join(', ')}) VALUES (?, ?, ?${columns.map(() => ', ?').join('')}) ` +
        `ON CONFLICT (id) DO UPDATE SET ${assigned.map((c) => `${c} = excluded.${c}`).join(', ')} ` +
        `WHERE excluded.position > ${table}.position`;
      upsert = { sql, columns };
      this.upserts.set(collection, upsert);
    }
    return upsert;
  }

  async commit({ documents, checkpoint, expect }: CommitBatch): Promise<void> {
    const write = this.db.transaction(() => {
      if (this.mark !== undefined) this.assertShadowIntact(this.mark);
      if (expect) {
        const found = this.checkpointIn(expect.name);
        if (found !== expect.position)
          throw new CheckpointMovedError(expect.name, expect.position, found, false);
      }
      for (const { collection, document } of documents) {
        const { fields } = this.spec(collection);
        const { sql, columns } = this.upsertOf(collection);
        const record = document as unknown as Record<string, unknown>;
        this.statement(sql).run(
          document.id,
          comparablePosition(document._position),
          JSON.stringify(document),
          ...columns.map((c) => toColumn(fields[c], record[c])),
        );
      }
      this.statement(
        `INSERT INTO ${this.checkpoints} (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position WHERE excluded.position > ${this.checkpoints}.position`,
      ).run(checkpoint.name, comparablePosition(checkpoint.position));
    });
    // IMMEDIATE: the expectation (or a shadow's mark) is read under the write lock, so no swap
    // (or other rebuild) can come in between.
    if (expect || this.mark !== undefined) write.immediate();
    else write();
  }

  async checkpoint(name: string): Promise<bigint> {
    return this.checkpointIn(name);
  }

  private checkpointIn(name: string): bigint {
    // Once per handle: a swap replaces the table in one transaction, it is never missing after.
    if (!this.checkpointsMade) {
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ${this.checkpoints} (name TEXT PRIMARY KEY, position TEXT NOT NULL)`,
      );
      this.checkpointsMade = true;
    }
    const row = this.statement(`SELECT position FROM ${this.checkpoints} WHERE name = ?`).get(name) as
      { position: string } | undefined;
    return row ? BigInt(row.position) : 0n;
  }

  /**
   * The swap is one transaction: no announcement needed (`promote` takes none). A shadow carries
   * a random mark in its checkpoints: a later `createShadow` (another rebuild) drops and re-makes
   * the same tables, and the earlier one must then neither swap in nor drop what is now the
   * later one's.
   */
  async createShadow(): Promise<ShadowReadModelStore> {
    const shadow = new SqliteReadModelStore(this.db, SHADOW, false, true);
    const mark = comparablePosition(BigInt.asUintN(63, randomBytes(8).readBigUInt64BE()));
    this.db.transaction(() => {
      for (const spec of this.specs.values()) this.db.exec(`DROP TABLE IF EXISTS ${shadow.table(spec.name)}`);
      this.db.exec(`DROP TABLE IF EXISTS ${shadow.checkpoints}`);
    })();
    await shadow.init([...this.specs.values()]);
    this.statement(`INSERT INTO ${shadow.checkpoints} (name, position) VALUES (?, ?)`).run(SHADOW_MARK, mark);
    shadow.mark = mark;
    return Object.assign(shadow, {
      promote: () => this.promoteShadow(shadow, mark),
      discard: async () => {
        this.db
          .transaction(() => {
            if (!this.isIntact(shadow, mark)) return; // another rebuild's now
            for (const spec of shadow.specs.values())
              this.db.exec(`DROP TABLE IF EXISTS ${shadow.table(spec.name)}`);
            this.db.exec(`DROP TABLE IF EXISTS ${shadow.checkpoints}`);
          })
          .immediate();
      },
    });
  }

  private assertShadowIntact(mark: string) {
    if (!this.isIntact(this, mark)) {
      throw new Error('this shadow was dropped (by another rebuild started meanwhile?); nothing was written');
    }
  }

  private isIntact(shadow: SqliteReadModelStore, mark: string): boolean {
    const exists = this.statement(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(
      `${SHADOW}checkpoints`,
    );
    if (!exists) return false;
    const row = this.statement(`SELECT position FROM ${shadow.checkpoints} WHERE name = ?`).get(
      SHADOW_MARK,
    ) as { position: string } | undefined;
    return row?.position === mark;
  }

  /** One transaction: readers see the old models or the new ones, never a mix. */
  private async promoteShadow(shadow: SqliteReadModelStore, mark: string) {
    this.db
      .transaction(() => {
        if (!this.isIntact(shadow, mark)) {
          throw new Error(
            'this shadow was dropped (by another rebuild started meanwhile?); nothing was moved',
          );
        }
        for (const spec of shadow.specs.values()) {
          this.db.exec(`DROP TABLE IF EXISTS ${this.table(spec.name)}`);
          for (const fields of this.indexesOf(spec)) {
            this.db.exec(`DROP INDEX IF EXISTS ${quote(`${SHADOW}${spec.name}__${fields.join('_')}`)}`);
          }
          this.db.exec(`ALTER TABLE ${shadow.table(spec.name)} RENAME TO ${quote(`${LIVE}${spec.name}`)}`);
          this.createIndexes(spec);
        }
        this.db.exec(`DROP TABLE IF EXISTS ${this.checkpoints}`);
        this.db.exec(`ALTER TABLE ${shadow.checkpoints} RENAME TO ${quote(`${LIVE}checkpoints`)}`);
        this.db.prepare(`DELETE FROM ${this.checkpoints} WHERE name = ?`).run(SHADOW_MARK);
      })
      .immediate();
    for (const [name, spec] of shadow.specs) this.specs.set(name, spec); // the live tables are the shadow's now
    this.statements.clear();
    this.upserts.clear();
    shadow.statements.clear();
    shadow.upserts.clear();
  }

  async ping(): Promise<void> {
    this.statement('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.ownsDb && this.db.open) this.db.close();
  }
}

/**
 * Only the selected paths of the document, rebuilt by SQLite from the stored JSON: a list of
 * 50 rows then costs 50 small parses in JavaScript instead of 50 whole documents.
 */
const selectSql = (paths: readonly string[]): string => {
  interface Node {
    [key: string]: Node | string;
  }
  const tree: Node = {};
  for (const path of ['id', '_position', ...paths]) {
    const parts = path.split('.');
    if (parts.some((part) => !IDENT.test(part) && part !== '_position'))
      throw new Error(`not a valid field path: ${path}`);
    let node = tree;
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1) {
        node[part] = `$.${path}`;
        break;
      }
      const next = node[part];
      if (typeof next === 'string') break; // the whole parent is selected already
      node = node[part] = next ?? {};
    }
  }
  const emit = (node: Node): string =>
    `json_object(${Object.entries(node)
      .map(
        ([key, value]) =>
          // `->` gives JSON (true stays true; json_extract would give 1)
          `'${key}', ${typeof value === 'string' ? `doc -> '${value}'` : emit(value)}`,
      )
      .join(', ')})`;
  return `${emit(tree)} AS doc`;
};

/** A document's value as its column holds it (the inverse of `fromSql`). */
/**
 * Runs a write that may meet another process's migration of the same file: SQLite's busy
 * timeout (5 s) can be shorter than a large table's fill, so it waits on for up to a minute.
 */
const withBusyRetries = (write: () => void) => {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      write();
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error;
    }
  }
};

/** Below this many documents holding a value, `contains` scans the array field's index. */
const ARRAY_INDEX_MATCHES = 1000;

/**
 * An array field's column: its elements between separators (`\x1fpve1\x1fpve2\x1f`), so that
 * `contains` is a search for `\x1fvalue\x1f` in an index; `\x1e` when an element is not text
 * or holds the separator itself (then the document is searched); NULL when empty or absent.
 */
const ELEMENT_SEPARATOR = '\x1f';
const SEARCH_DOCUMENT = '\x1e';
const arrayColumn = (value: unknown): string | null => {
  if (typeof value === 'string') return arrayColumn([value]); // contains matches it, as MongoDB does
  if (!Array.isArray(value) || value.length === 0) return null;
  if (value.some((e) => typeof e !== 'string' || e.includes(ELEMENT_SEPARATOR))) return SEARCH_DOCUMENT;
  return `${ELEMENT_SEPARATOR}${value.join(ELEMENT_SEPARATOR)}${ELEMENT_SEPARATOR}`;
};

const toColumn = (type: CollectionSpec['fields'][string], value: unknown): unknown =>
  type === 'json'
    ? value === undefined
      ? null
      : JSON.stringify(value)
    : type === 'string[]'
      ? arrayColumn(value)
      : toSql(value);

/** A column's value as the document holds it. */
const fromSql = (type: CollectionSpec['fields'][string], value: unknown): unknown => {
  if (value === null) return null;
  if (type === 'json') return JSON.parse(value as string);
  if (type === 'boolean') return value === 1;
  return value;
};

/** The zero-padded position column back to the document's plain decimal. */
const plainPosition = (padded: string) => padded.replace(/^0+(?=\d)/, '');

const sqlType = (type: CollectionSpec['fields'][string]) =>
  type === 'number' ? 'REAL' : type === 'boolean' ? 'INTEGER' : 'TEXT';
