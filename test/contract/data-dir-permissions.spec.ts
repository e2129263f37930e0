import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@changeledger/event-store';
import { resolveJwtSecret } from '@changeledger/platform';
import { SqliteReadModelStore } from '@changeledger/read-models';
import { SqliteIdempotencyStore } from '../../apps/api/src/idempotency/adapters/sqlite-idempotency-store';

/**
 * DATA_DIR holds the whole log (security reviews, emergency justifications, names): a folder the
 * service creates is its owner's alone, whichever part of it creates the folder first (the
 * secret when none is configured, a store otherwise). SQLite makes its files 0644; the folder
 * keeps other accounts of the host out.
 */
describe('a DATA_DIR the service creates is its owner’s alone (0700)', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'changeledger-perm-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const mode = (path: string) => statSync(path).mode & 0o777;

  it.each<[string, (dataDir: string) => Promise<void> | void]>([
    ['the event store', (d) => new SqliteEventStore(join(d, 'events.sqlite')).close()],
    ['the read-model store', (d) => SqliteReadModelStore.open(join(d, 'read-models.sqlite')).close()],
    ['the idempotency store', (d) => new SqliteIdempotencyStore(join(d, 'idempotency.sqlite')).close()],
    ['the generated JWT secret', (d) => void resolveJwtSecret(undefined, d)],
  ])('%s creating it (and the folders above it)', async (_name, create) => {
    const dataDir = join(root, 'srv', 'changeledger', 'data');
    await create(dataDir);
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(join(root, 'srv'))).toBe(0o700);
  });
});
