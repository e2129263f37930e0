import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteReadModelStore } from '@changeledger/read-models';
import { readModelStoreContract } from './read-model-store.contract';

/** The shared ReadModelStore contract on the embedded adapter: a fresh file per test. */
readModelStoreContract('sqlite', () => {
  let dir: string | undefined;
  const opened: SqliteReadModelStore[] = [];
  return {
    async open() {
      dir ??= mkdtempSync(join(tmpdir(), 'changeledger-rm-'));
      const store = SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
      opened.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(opened.splice(0).map((store) => store.close()));
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
});
