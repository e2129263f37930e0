import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@changeledger/event-store';
import { AggregateLoader } from './aggregate-loader';
import type { AnyAggregateOf } from './aggregates';

interface Note {
  readonly version: number;
  readonly text: string;
}
/** A minimal aggregate: the loader only folds, whatever the aggregate is. */
const notes: AnyAggregateOf<Note> = {
  name: 'note',
  schemaVersion: 1,
  streamId: (id) => `changeRequest-${id}`,
  version: (s) => s.version,
  decider: {
    initialState: () => ({ version: 0, text: '' }),
    decide: () => [],
    evolve: (s: Note, e: { data: { text: string } }) => ({
      version: s.version + 1,
      text: s.text + e.data.text,
    }),
  },
};

describe('AggregateLoader (over a real SQLite event store)', () => {
  let dir: string;
  let store: SqliteEventStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-loader-'));
    store = new SqliteEventStore(join(dir, 'events.sqlite'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (id: string, text: string) =>
    store.append(
      notes.streamId(id),
      [
        {
          eventId: randomUUID(),
          type: 'Noted',
          data: { text },
          metadata: {
            actor: { id: 'u', name: 'U', roles: [] },
            occurredAt: '2026-11-27T00:00:00.000Z',
            correlationId: randomUUID(),
            causationId: null,
            schemaVersion: 1,
          },
        },
      ],
      'any',
    );

  it('keeps at most maxEntries states, least recently used out first', async () => {
    const loader = new AggregateLoader(store, { maxEntries: 2, maxBytes: 1e9 });
    for (const id of ['A', 'B', 'C']) await write(id, id);
    await loader.load(notes, 'A');
    await loader.load(notes, 'B');
    await loader.load(notes, 'A'); // used again: B is now the oldest
    await loader.load(notes, 'C');
    expect(loader.cached.entries).toBe(2);
    // Which reads the loads make tell what was kept: a cached state reads only what follows it.
    const reads: string[] = [];
    const readStream = store.readStream.bind(store);
    store.readStream = (streamId, options) => {
      reads.push(`${streamId.slice(-1)} from ${options?.fromRevision ?? 0n}`);
      return readStream(streamId, options);
    };
    await write('A', '+');
    expect(await loader.load(notes, 'A')).toEqual({ version: 2, text: 'A+' });
    expect(await loader.load(notes, 'C')).toEqual({ version: 1, text: 'C' });
    expect(await loader.load(notes, 'B')).toEqual({ version: 1, text: 'B' });
    // A and C were kept, B (least recently used when C came) was dropped and is read whole
    expect(reads).toEqual(['A from 1', 'C from 1', 'B from 0']);
  });

  it('keeps the states within maxBytes, measured by the events folded into them', async () => {
    const loader = new AggregateLoader(store, { maxEntries: 100, maxBytes: 30_000 });
    for (const id of ['A', 'B', 'C', 'D']) await write(id, 'x'.repeat(10_000));
    for (const id of ['A', 'B', 'C', 'D']) await loader.load(notes, id);
    expect(loader.cached.entries).toBe(2); // two of ~10 KB each fit under 30 KB with room to spare, three do not
    expect(loader.cached.bytes).toBeLessThanOrEqual(30_000);
    await write('D', 'y'.repeat(5_000));
    expect((await loader.load(notes, 'D')).text).toHaveLength(15_000);
    expect(loader.cached.bytes).toBeLessThanOrEqual(30_000);
    // a state bigger than the whole budget is not kept (it would push everything else out)
    await write('E', 'z'.repeat(40_000));
    expect((await loader.load(notes, 'E')).text).toHaveLength(40_000);
    expect(loader.cached.entries).toBe(2);
    expect(loader.cached.bytes).toBeLessThanOrEqual(30_000);
  });

  it('counts events once when two loads of one stream overlap', async () => {
    const loader = new AggregateLoader(store, { maxEntries: 100, maxBytes: 1e9 });
    await write('A', 'x'.repeat(1_000));
    await loader.load(notes, 'A');
    const one = loader.cached.bytes;
    await write('A', 'y'.repeat(1_000));
    await Promise.all([loader.load(notes, 'A'), loader.load(notes, 'A')]);
    expect(loader.cached.bytes).toBe(2 * one);
    expect(await loader.load(notes, 'A')).toEqual({
      version: 2,
      text: 'x'.repeat(1_000) + 'y'.repeat(1_000),
    });
  });

  it('forgets a state: the next load reads the stream from its start, and the bytes it held are freed', async () => {
    const loader = new AggregateLoader(store, { maxEntries: 100, maxBytes: 1e9 });
    await write('A', 'x'.repeat(1_000));
    await write('B', 'y');
    await loader.load(notes, 'A');
    await loader.load(notes, 'B');
    const both = loader.cached;
    loader.forget(notes.streamId('A'));
    loader.forget(notes.streamId('Z')); // nothing kept: nothing happens
    expect(loader.cached.entries).toBe(1);
    expect(loader.cached.bytes).toBeLessThan(both.bytes - 1_000);
    const reads: string[] = [];
    const readStream = store.readStream.bind(store);
    store.readStream = (streamId, options) => {
      reads.push(`${streamId.slice(-1)} from ${options?.fromRevision ?? 0n}`);
      return readStream(streamId, options);
    };
    expect(await loader.load(notes, 'A')).toEqual({ version: 1, text: 'x'.repeat(1_000) });
    expect(reads).toEqual(['A from 0']);
    expect(loader.cached).toEqual(both);
  });
});
