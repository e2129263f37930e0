import { type Collection, MongoClient, MongoServerError } from 'mongodb';
import { clientDefaults, newMongoClient, reachMongo } from '@changeledger/read-models';
import {
  IDEMPOTENCY_TTL_MS,
  type IdempotencyClaim,
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
  judgeClaim,
  type StoredResponse,
} from '../idempotency-store.port';

/** The collection, beside the read models (no rebuild touches it: it is not one of theirs). */
export const IDEMPOTENCY_COLLECTION = 'idempotency_keys';
const DUPLICATE_KEY = 11000;
/** How often a claim looks again after another instance changed the key under it. */
const MAX_CLAIM_ATTEMPTS = 10;
/** One claim in this many also deletes the keys older than 24 h. */
const PURGE_EVERY_CLAIMS = 1000;

interface KeyDocument {
  /**
   * The scope (user and key) as JSON text (`idempotencyDocumentId`): one document per key, so that a first
   * claim is one atomic insert.
   */
  _id: string;
  fingerprint: string;
  state: 'pending' | 'done';
  statusCode: number | null;
  /** The answer as JSON text: an answer's keys need not be valid MongoDB field names. */
  body: string | null;
  /** The claim's identity (ms since the epoch, strictly growing per key), and its age. */
  claimedAt: number;
  /** When its command was last known to be running (`renew`). */
  aliveAt?: number | null;
}

/**
 * A scope as its document's `_id`: JSON text, which spells the NUL between user and key as
 * `\u0000` (PostgreSQL, under FerretDB's default backend, stores no NUL in text).
 */
export const idempotencyDocumentId = (scope: string): string => JSON.stringify(scope);

const isDuplicateKey = (error: unknown) => error instanceof MongoServerError && error.code === DUPLICATE_KEY;
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
/**
 * Idempotency keys shared by every API instance on one MongoDB database, so that a retry reaching
 * another instance is answered as the first one was (the SQLite store is one instance's).
 *
 * Same rules as the SQLite store, without transactions: a fresh key is claimed by inserting its
 * document (the unique `_id` lets one of several racing instances win); a key past its 24 h or an
 * abandoned claim is taken over by an update conditional on the claim it saw (its `claimedAt`),
 * and `complete`, `settle` and `release` are conditional on their claim the same way. MongoDB
 * applies each such update to one document atomically. FerretDB 1.x (CI's server) reads the
 * match and then writes, so there two instances taking over the same abandoned claim in the
 * same moment could both succeed; a fresh key's race is decided by the insert there too.
 */
export class MongoIdempotencyStore implements IdempotencyStore {
  private claimsSincePurge = 0;
  private closed = false;

  private constructor(
    private readonly client: MongoClient,
    private readonly keys: Collection<KeyDocument>,
    /** The server and database, without credentials: for messages. */
    readonly target: string,
  ) {}

  static async connect(url: string, dbName: string): Promise<MongoIdempotencyStore> {
    const opened = newMongoClient(url, clientDefaults(url));
    const { client, scrub } = opened;
    const target = `${opened.target} (database ${dbName})`;
    // From the primary whatever the URL prefers: a claim that lost its insert reads the winner's
    // key at once, which a secondary may not have yet.
    const keys = client
      .db(dbName, { readPreference: 'primary' })
      .collection<KeyDocument>(IDEMPOTENCY_COLLECTION);
    try {
      // for the purge of keys older than 24 h
      await keys.createIndex({ claimedAt: 1 }, { name: 'claimedAt' });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw new Error(
        `cannot open the Idempotency-Key store in MongoDB at ${target}: ${scrub(messageOf(error))}`,
        {
          cause: error,
        },
      );
    }
    return new MongoIdempotencyStore(client, keys, target);
  }

  async claim(
    scope: string,
    fingerprint: string,
    now: Date,
    options: { readonly reclaimAbandoned?: boolean } = {},
  ): Promise<IdempotencyClaim> {
    return this.reach(() =>
      this.claimKey(idempotencyDocumentId(scope), fingerprint, now, options.reclaimAbandoned === true),
    );
  }

  private async claimKey(
    id: string,
    fingerprint: string,
    now: Date,
    reclaimAbandoned: boolean,
  ): Promise<IdempotencyClaim> {
    const at = now.getTime();
    if (++this.claimsSincePurge >= PURGE_EVERY_CLAIMS) {
      this.claimsSincePurge = 0;
      await this.purge(now);
    }
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      // Most keys are new: one round trip.
      if (await this.insertClaim(id, fingerprint, at)) return { kind: 'claimed', claimedAt: at };
      const seen = await this.keys.findOne({ _id: id });
      if (!seen) continue; // released or purged in between: insert again
      const found = judgeClaim(seen, fingerprint, at, reclaimAbandoned);
      if (found.kind !== 'take-over') return found;
      const { claimedAt } = found;
      const taken = await this.keys.updateOne(
        // (and not renewed since it was judged abandoned)
        { _id: id, claimedAt: seen.claimedAt, state: seen.state, aliveAt: seen.aliveAt ?? null },
        { $set: { fingerprint, state: 'pending', statusCode: null, body: null, claimedAt, aliveAt: null } },
      );
      if (taken.matchedCount === 1) return { kind: 'claimed', claimedAt };
      // another instance changed the key since it was read: look again
    }
    throw new Error(`Idempotency-Key store: the key kept changing under ${MAX_CLAIM_ATTEMPTS} claims`);
  }

  async renew(scope: string, claimedAt: number, now: Date): Promise<void> {
    await this.reach(() =>
      this.keys.updateOne(
        { _id: idempotencyDocumentId(scope), claimedAt, state: 'pending' },
        // never back: a slow renewal may land after a later one
        { $max: { aliveAt: now.getTime() } },
      ),
    );
  }

  async complete(scope: string, claimedAt: number, response: StoredResponse): Promise<void> {
    await this.reach(() =>
      this.keys.updateOne(
        { _id: idempotencyDocumentId(scope), claimedAt, state: 'pending' },
        { $set: { state: 'done', statusCode: response.statusCode, body: JSON.stringify(response.body) } },
      ),
    );
  }

  async settle(scope: string, claimedAt: number, response: StoredResponse): Promise<void> {
    // never over a success: two repeats looking at once, a "not found" must not replace a "found"
    await this.reach(() =>
      this.keys.updateOne(
        { _id: idempotencyDocumentId(scope), claimedAt, state: 'done', statusCode: { $gte: 400 } },
        { $set: { statusCode: response.statusCode, body: JSON.stringify(response.body) } },
      ),
    );
  }

  async release(scope: string, claimedAt: number): Promise<void> {
    await this.reach(() =>
      this.keys.deleteOne({ _id: idempotencyDocumentId(scope), claimedAt, state: 'pending' }),
    );
  }

  /** Deletes the keys claimed 24 h or more before `now`; answers how many. */
  async purgeExpired(now: Date): Promise<number> {
    return this.reach(() => this.purge(now));
  }

  private async purge(now: Date): Promise<number> {
    const { deletedCount } = await this.keys.deleteMany({
      claimedAt: { $lte: now.getTime() - IDEMPOTENCY_TTL_MS },
    });
    return deletedCount;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
  }

  /** Runs one operation; an outage becomes IdempotencyStoreUnavailableError (503), naming the server. */
  private reach<T>(operation: () => Promise<T>): Promise<T> {
    return reachMongo(
      operation,
      (message, cause) =>
        new IdempotencyStoreUnavailableError(
          `the Idempotency-Key store in MongoDB at ${this.target} is unavailable: ${message}`,
          { cause },
        ),
    );
  }

  /** Inserts a pending claim of a key nobody holds; false when the key has a document. */
  private async insertClaim(id: string, fingerprint: string, claimedAt: number): Promise<boolean> {
    try {
      await this.keys.insertOne({
        _id: id,
        fingerprint,
        state: 'pending',
        statusCode: null,
        body: null,
        claimedAt,
      });
      return true;
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }
}
