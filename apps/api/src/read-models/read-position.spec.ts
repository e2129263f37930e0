import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allProjections,
  PROJECTOR_CHECKPOINT,
  REBUILD_GENERATION,
  SqliteReadModelStore,
} from '@changeledger/read-models';
import { ProjectionLaggingError } from '../application/application-errors';
import { ReadPosition } from './read-position';

/** Over a real SQLite read-model store, read by another process's projector's checkpoint. */
describe('ReadPosition', () => {
  let dir: string;
  let store: SqliteReadModelStore;
  const mark = (name: string, position: bigint) =>
    store.commit({ documents: [], checkpoint: { name, position } });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-read-position-'));
    store = SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
    await store.init(allProjections().map((p) => p.collection));
    await mark(PROJECTOR_CHECKPOINT, 10n);
    await mark(REBUILD_GENERATION, 1n);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads again when a rebuild was swapped in between the wait and the read (its models may lack the position)', async () => {
    const reads: string[] = [];
    const answer = await new ReadPosition(store).read(5n, async () => {
      if (reads.length === 0) {
        // what a swap brings in the moment after the wait: a new generation (and its own models)
        await mark(REBUILD_GENERATION, 2n);
        reads.push('during the swap');
      } else reads.push('after it');
      return reads.at(-1);
    });
    expect(answer).toBe('after it');
    expect(reads).toEqual(['during the swap', 'after it']);
  });

  it('reads once when no swap came, and without a position at once', async () => {
    let reads = 0;
    const read = async () => ++reads;
    expect(await new ReadPosition(store).read(10n, read)).toBe(1);
    expect(await new ReadPosition(store).read(undefined, read)).toBe(2);
  });

  it('gives up at the deadline it is given (retries share one wait), answering PROJECTION_LAGGING', async () => {
    const started = Date.now();
    await expect(new ReadPosition(store).await(11n, Date.now() + 150)).rejects.toBeInstanceOf(
      ProjectionLaggingError,
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
