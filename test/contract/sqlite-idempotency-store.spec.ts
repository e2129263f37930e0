import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteIdempotencyStore } from '../../apps/api/src/idempotency/adapters/sqlite-idempotency-store';
import type { IdempotencyStore } from '../../apps/api/src/idempotency/idempotency-store.port';
import { idempotencyStoreContract } from './idempotency-store.contract';

idempotencyStoreContract('SQLite (one file in a temp folder)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-idempotency-'));
  const opened: IdempotencyStore[] = [];
  return {
    async open() {
      const store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((store) => store.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
