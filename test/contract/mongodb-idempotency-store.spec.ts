/**
 * The IdempotencyStore contract against a MongoDB wire-protocol server (MongoDB itself, or
 * FerretDB 1.x as in CI):
 *   MONGODB_URL=mongodb://127.0.0.1:27017 npx jest --selectProjects contract test/contract/mongodb-idempotency
 * Every test gets a database of its own (`idem_<random>`), dropped afterwards.
 */
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import {
  IDEMPOTENCY_COLLECTION,
  MongoIdempotencyStore,
} from '../../apps/api/src/idempotency/adapters/mongodb-idempotency-store';
import { IdempotencyStoreUnavailableError } from '../../apps/api/src/idempotency/idempotency-store.port';
import { toProblem } from '../../apps/api/src/http/problem-details.filter';
import { mongoAddress, startTcpProxy } from '../support/tcp-proxy';
import { idempotencyStoreContract } from './idempotency-store.contract';

const url = process.env.MONGODB_URL;

/** `adminUrl`: where the database is dropped afterwards (the server itself, past any proxy). */
const mongoFixture = (serverUrl: string, adminUrl = serverUrl) => {
  const dbName = `idem_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const opened: MongoIdempotencyStore[] = [];
  return {
    dbName,
    async open() {
      const store = await MongoIdempotencyStore.connect(serverUrl, dbName);
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((store) => store.close()));
      const client = await MongoClient.connect(adminUrl, { serverSelectionTimeoutMS: 5000 });
      try {
        await client.db(dbName).dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
};

if (url) {
  idempotencyStoreContract('MongoDB', () => mongoFixture(url));

  describe('MongoIdempotencyStore specifics', () => {
    it('keeps one document per key in its own collection, the answer as JSON text', async () => {
      const fx = mongoFixture(url);
      try {
        const store = await fx.open();
        await store.claim('u\u0000k', 'f1', new Date(1_000));
        await store.complete('u\u0000k', 1_000, { statusCode: 201, body: { id: 'CHG-001' } });
        const client = await MongoClient.connect(url, { serverSelectionTimeoutMS: 5000 });
        try {
          const stored = await client.db(fx.dbName).collection(IDEMPOTENCY_COLLECTION).find().toArray();
          // the scope as JSON text: no NUL stored (PostgreSQL under FerretDB refuses one)
          expect(stored.map((d) => String(d._id).includes('\u0000'))).toEqual([false]);
          expect(stored).toEqual([
            {
              _id: '"u\\u0000k"',
              fingerprint: 'f1',
              state: 'done',
              statusCode: 201,
              body: '{"id":"CHG-001"}',
              claimedAt: 1_000,
            },
          ]);
        } finally {
          await client.close();
        }
      } finally {
        await fx.cleanup();
      }
    });

    it('reads keys from the primary whatever the URL prefers (a claim that lost its insert reads the winner at once)', async () => {
      const preferring = new URL(url);
      preferring.searchParams.set('readPreference', 'secondaryPreferred');
      const fx = mongoFixture(preferring.toString(), url);
      try {
        const store = await fx.open();
        const keys = (store as unknown as { keys: { readPreference: { mode: string } } }).keys;
        expect(keys.readPreference.mode).toBe('primary');
        expect((await store.claim('u\u0000k', 'f1', new Date(1_000))).kind).toBe('claimed');
      } finally {
        await fx.cleanup();
      }
    });

    it('a server lost after the start is an outage (503 SERVICE_UNAVAILABLE), not an unexpected error', async () => {
      const proxy = await startTcpProxy(mongoAddress(url));
      const port = proxy.port;
      const fx = mongoFixture(
        `mongodb://127.0.0.1:${port}/?directConnection=true&serverSelectionTimeoutMS=500`,
        url,
      );
      try {
        const store = await fx.open();
        expect((await store.claim('u\u0000k', 'f1', new Date(1_000))).kind).toBe('claimed');
        await proxy.cut();
        const error = await store.claim('u\u0000j', 'f1', new Date(2_000)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IdempotencyStoreUnavailableError);
        expect((error as Error).message).toContain(`MongoDB at mongodb://127.0.0.1:${port}/`);
        expect(toProblem(error)).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
        await expect(store.release('u\u0000k', 1_000)).rejects.toBeInstanceOf(
          IdempotencyStoreUnavailableError,
        );
      } finally {
        await proxy.close();
        await fx.cleanup();
      }
    });

    it('names the server without its credentials when it cannot be reached', async () => {
      const unreachable = 'mongodb://admin:s3cret@127.0.0.1:9/?serverSelectionTimeoutMS=300';
      const error = await MongoIdempotencyStore.connect(unreachable, 'idem_x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(
        /^cannot open the Idempotency-Key store in MongoDB at mongodb:\/\/127\.0\.0\.1:9\//,
      );
      expect((error as Error).message).not.toContain('s3cret');
    });
  });
} else {
  describe.skip('IdempotencyStore contract: MongoDB', () => {
    it('needs a server: set MONGODB_URL (CI starts FerretDB)', () => undefined);
  });
}
