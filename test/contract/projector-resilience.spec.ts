import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  Projector,
  PROJECTOR_CHECKPOINT,
  SqliteReadModelStore,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';

describe('projector resilience', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-resilience-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps retrying a batch while the read-model store refuses writes, then catches up', async () => {
    const events = new SqliteEventStore(join(dir, 'events.sqlite'));
    const file = join(dir, 'read-models.sqlite');
    const store = SqliteReadModelStore.open(file);
    const errors: string[] = [];
    const projector = new Projector(events, store, allProjections({ retrospectiveDueBusinessDays: 2 }), {
      logger: { error: (m) => errors.push(m) },
    });
    await projector.start();
    // Another process holds the read-model file exclusively for longer than the busy timeout.
    const blocker = new Database(file);
    blocker.exec('BEGIN EXCLUSIVE');
    await writeRandomLifecycles(events, { seed: 7, count: 5 });
    const head = await events.headPosition();
    await new Promise((resolve) => setTimeout(resolve, 6000));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/retrying/);
    expect(projector.position).toBeLessThan(head);
    blocker.exec('ROLLBACK');
    blocker.close();
    expect(await projector.waitFor(head, 10_000)).toBe(true);
    expect(await store.checkpoint(PROJECTOR_CHECKPOINT)).toBe(head);
    await projector.stop();
    await store.close();
    await events.close();
  }, 30_000);
});
