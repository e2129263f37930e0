import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ReadModelStore, SqliteReadModelStore } from '@changeledger/read-models';

/** A read-model store to test on, by adapter name; `open(label)` makes a fresh one. */
export type StoreUnderTest = [adapter: string, open: (label: string) => Promise<ReadModelStore>];

/**
 * The read-model stores a suite runs on: SQLite files in a temporary folder, and MongoDB
 * databases when MONGODB_URL is set (else skipped, saying so once). `cleanUp` (afterAll) removes
 * the folder and drops the databases.
 */
export const readModelStoresUnderTest = (suite: string, databasePrefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), `changeledger-${databasePrefix}-`));
  const databases: string[] = [];
  const stores: StoreUnderTest[] = [
    ['sqlite', async (label) => SqliteReadModelStore.open(join(dir, `${label}.sqlite`))],
  ];
  if (!process.env.MONGODB_URL) console.log(`${suite} on MongoDB skipped: MONGODB_URL is not set`);
  else
    stores.push([
      'mongodb',
      async (label) => {
        const db = `${databasePrefix}_${label}_${process.pid}_${Date.now()}`;
        databases.push(db);
        const { MongoReadModelStore } = await import('@changeledger/read-models');
        return MongoReadModelStore.connect(process.env.MONGODB_URL!, db);
      },
    ]);
  const cleanUp = async () => {
    rmSync(dir, { recursive: true, force: true });
    if (databases.length === 0) return;
    const { MongoClient } = await import('mongodb');
    const client = await MongoClient.connect(process.env.MONGODB_URL!);
    for (const db of databases) await client.db(db).dropDatabase();
    await client.close();
  };
  return { dir, stores, cleanUp };
};
