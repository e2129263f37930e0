import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allProjections,
  PROJECTOR_CHECKPOINT,
  REBUILD_GENERATION,
  REBUILD_PROMOTING,
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

  it('waits out a swap under way (announced, not done) before it reads: MongoDB moves collections one by one', async () => {
    await mark(REBUILD_PROMOTING, 2n); // announced; the generation (1) is marked last
    const reads: bigint[] = [];
    setTimeout(() => void mark(REBUILD_GENERATION, 2n), 150);
    const started = Date.now();
    await new ReadPosition(store).read(5n, async () => {
      reads.push(await store.checkpoint(REBUILD_GENERATION));
    });
    expect(reads).toEqual([2n]); // read once, on the swapped-in models
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('reads again when a swap was announced while it read, though the generation was not yet marked', async () => {
    let reads = 0;
    const answer = await new ReadPosition(store).read(5n, async () => {
      reads++;
      if (reads === 1) {
        // mid-swap: announced, checkpoint lowered, collections moving; done before the next read
        await mark(REBUILD_PROMOTING, 2n);
        setTimeout(() => void mark(REBUILD_GENERATION, 2n), 50);
      }
      return reads;
    });
    expect(answer).toBe(2);
  });

  it('answers PROJECTION_LAGGING when a swap is still under way at the end of the wait', async () => {
    await mark(REBUILD_PROMOTING, 2n);
    let reads = 0;
    await expect(
      new ReadPosition(store).read(
        5n,
        async () => {
          reads++;
        },
        200,
      ),
    ).rejects.toBeInstanceOf(ProjectionLaggingError);
    expect(reads).toBe(0);
  });

  it('reads once when no swap came, and without a position at once', async () => {
    let reads = 0;
    const read = async () => ++reads;
    expect(await new ReadPosition(store).read(10n, read)).toBe(1);
    expect(await new ReadPosition(store).read(undefined, read)).toBe(2);
  });

  it('waits until the deadline it is given (the one a read shares with its retries), then answers PROJECTION_LAGGING', async () => {
    const started = Date.now();
    await expect(new ReadPosition(store).await(11n, Date.now() + 150)).rejects.toBeInstanceOf(
      ProjectionLaggingError,
    );
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(1000);
  });

  it('returns as soon as the position is reached within the wait', async () => {
    const started = Date.now();
    setTimeout(() => void mark(PROJECTOR_CHECKPOINT, 11n), 100);
    await new ReadPosition(store).await(11n, Date.now() + 3_000);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(90);
    expect(waited).toBeLessThan(1_000);
  });
});
