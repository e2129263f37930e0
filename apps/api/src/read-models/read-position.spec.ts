import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
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
  /** What only a swap does (checkpoints otherwise only move forward): straight in the file. */
  const lowerCheckpoint = (position: bigint) => {
    const db = new Database(join(dir, 'read-models.sqlite'));
    db.prepare('UPDATE rm_checkpoints SET position = ? WHERE name = ?').run(
      position.toString().padStart(20, '0'),
      PROJECTOR_CHECKPOINT,
    );
    db.close();
  };

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

  it('reads again when a swap lowered the checkpoint while it read, before it marked a new generation (MongoDB moves collections one by one)', async () => {
    let reads = 0;
    const answer = await new ReadPosition(store).read(5n, async () => {
      reads++;
      if (reads === 1) {
        // mid-swap: the checkpoint lowered to where the rebuilt models reach, collections moving,
        // the generation not yet marked; the projector applies the rest once the swap is done
        await mark(REBUILD_PROMOTING, 2n);
        lowerCheckpoint(3n);
        setTimeout(() => void mark(PROJECTOR_CHECKPOINT, 10n), 100);
      }
      return reads;
    });
    expect(answer).toBe(2);
  });

  it('a swap that ends, and is healed, between the checks after a read that met it mid-swap: read again', async () => {
    let reads = 0;
    let swapEndsAtNextCheck = false;
    const checkpoint = store.checkpoint.bind(store);
    // the real store; only when the swap ends is chosen: right after the first check that follows the read
    store.checkpoint = async (name) => {
      const value = await checkpoint(name);
      if (swapEndsAtNextCheck) {
        swapEndsAtNextCheck = false;
        await mark(REBUILD_GENERATION, 2n); // the swap's last step
        await mark(PROJECTOR_CHECKPOINT, 10n); // the projector, having re-applied what they lacked
      }
      return value;
    };
    const answer = await new ReadPosition(store).read(5n, async () => {
      reads++;
      if (reads === 1) {
        // mid-swap: the checkpoint lowered below the position, the collection read lacks it
        await mark(REBUILD_PROMOTING, 2n);
        lowerCheckpoint(3n);
        swapEndsAtNextCheck = true;
      }
      return reads;
    });
    expect(answer).toBe(2);
  });

  it('a swap announced and never done (withdrawn, or its rebuild killed) holds no read of an applied position', async () => {
    await mark(REBUILD_PROMOTING, 2n);
    let reads = 0;
    const started = Date.now();
    expect(await new ReadPosition(store).read(10n, async () => ++reads, 1_000)).toBe(1);
    expect(Date.now() - started).toBeLessThan(500);
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
