/**
 * The shared contract of the EventStore port. Every adapter runs this suite through a fixture.
 *
 * The suite must also pass against a shared server that is never emptied (EventStoreDB), so every
 * test writes only to stream ids it made up itself (random per test), never assumes the global log
 * is empty, compares positions only with positions it wrote or read itself, and filters the global
 * log down to its own streams.
 */
import { randomUUID } from 'node:crypto';
import {
  AppendTooLargeError,
  ConcurrencyError,
  computeEventHash,
  type EventMetadata,
  type EventStore,
  type EventSubscription,
  MAX_APPEND_BYTES,
  type NewEvent,
  type RecordedEvent,
  type SequencedStream,
} from '@changeledger/event-store';

export interface EventStoreFixture {
  /** A fresh, empty store (a unique stream-id prefix per test is also fine for shared servers). */
  open(): Promise<EventStore>;
  /** Re-open the SAME underlying storage after close() (restart). */
  reopen: (previous: EventStore) => Promise<EventStore>;
  /** Called after each test. */
  cleanup(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// helpers

const GENESIS = '0'.repeat(64);
const HEX_64 = /^[0-9a-f]{64}$/;

const uid = () => randomUUID().replace(/-/g, '');
/** A stream id nobody else uses. */
const newStreamId = () => `changeRequest-T${uid()}`;
/** A stream-id prefix nobody else uses; streams under it are `${prefix}<suffix>`. */
const newPrefix = () => `changeRequest-T${uid()}-`;

const actor = { id: 'user-42', name: 'Ada Operator', roles: ['requester', 'change-manager'] } as const;

let clock = Date.parse('2030-01-01T00:00:00.000Z');
/** An event as the suites append it: a fresh id, one second after the last one made. */
export const newEvent = (
  type = 'ChangeRequestRaised',
  data: Record<string, unknown> = {},
  metadata: Partial<EventMetadata> = {},
): NewEvent => ({
  eventId: randomUUID(),
  type,
  data,
  metadata: {
    actor: { ...actor, roles: [...actor.roles] },
    occurredAt: new Date((clock += 1000)).toISOString(),
    correlationId: randomUUID(),
    causationId: null,
    schemaVersion: 1,
    ...metadata,
  },
});
const newEvents = (n: number, type = 'ChangeRequestUpdated') =>
  Array.from({ length: n }, (_, i) => newEvent(type, { i }));

const ids = (events: readonly { eventId: string }[]) => events.map((e) => e.eventId);
const revisions = (events: readonly RecordedEvent[]) => events.map((e) => e.revision);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const within = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

/** Awaits a promise that must fail with a ConcurrencyError, and returns the error. */
const conflict = async (promise: Promise<unknown>): Promise<ConcurrencyError> => {
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConcurrencyError);
    return error as ConcurrencyError;
  }
  throw new Error(
    `expected a ConcurrencyError, but the append succeeded with ${String(JSON.stringify(result, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)))}`,
  );
};

const expectStrictlyIncreasing = (values: readonly bigint[]) => {
  for (let i = 1; i < values.length; i++) {
    if (!(values[i] > values[i - 1])) {
      throw new Error(`not strictly increasing at index ${i}: ${values[i - 1]} then ${values[i]}`);
    }
  }
};

/** Pages through the global log after `after` up to `until` (inclusive) and keeps only the given streams. */
const readAllOf = async (
  store: EventStore,
  after: bigint,
  until: bigint,
  streams: (id: string) => boolean,
) => {
  const out: RecordedEvent[] = [];
  let cursor = after;
  for (;;) {
    const page = await store.readAll({ after: cursor, limit: 100 });
    if (page.length === 0) return out;
    for (const event of page) {
      if (event.position > until) return out;
      if (streams(event.streamId)) out.push(event);
    }
    const next = page[page.length - 1].position;
    if (next <= cursor)
      throw new Error(`readAll({ after: ${cursor} }) did not move forward (last position ${next})`);
    cursor = next;
    if (cursor >= until) return out;
  }
};

/**
 * Runs a for-await loop over a subscription in the background. A runaway subscription (one that
 * repeats events without end) would starve the timers, so the loop gives up after `max` events.
 */
const consume = (subscription: EventSubscription, max = 20_000) => {
  const received: RecordedEvent[] = [];
  let failure: unknown;
  const done = (async () => {
    for await (const event of subscription) {
      received.push(event);
      if (received.length > max) throw new Error(`runaway subscription: more than ${max} events`);
    }
  })();
  done.catch((error: unknown) => {
    failure = error; // also reported when the test awaits `done`
  });
  return {
    received,
    done,
    async waitFor(count: number, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (failure !== undefined) throw failure;
        if (Date.now() > deadline) {
          throw new Error(
            `the subscription delivered ${received.length} of ${count} events within ${timeoutMs} ms`,
          );
        }
        await sleep(5);
      }
    },
  };
};

/** Strips the chain fields the store adds, leaving what the caller gave. */
const withoutChain = (metadata: EventMetadata) => {
  const { hash: _hash, previousHash: _previousHash, ...rest } = metadata;
  return rest;
};

const expectValidChain = (events: readonly RecordedEvent[]) => {
  events.forEach((event, i) => {
    const { hash, previousHash } = event.metadata;
    expect(hash).toMatch(HEX_64);
    expect(previousHash).toMatch(HEX_64);
    expect(previousHash).toBe(i === 0 ? GENESIS : events[i - 1].metadata.hash);
    expect(computeEventHash(event, previousHash as string)).toBe(hash);
  });
};

// ---------------------------------------------------------------------------------------------

export function eventStoreContract(adapterName: string, fixture: () => EventStoreFixture): void {
  // Asked once while collecting the tests; fixtures should create nothing before open().

  describe(`EventStore contract: ${adapterName}`, () => {
    let fx: EventStoreFixture;
    let store: EventStore;

    beforeEach(async () => {
      fx = fixture();
      store = await fx.open();
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    describe('append and readStream', () => {
      it("appends to a new stream with 'no-stream': revisions 0..n-1, increasing positions, result = last event", async () => {
        const streamId = newStreamId();
        const events = [
          newEvent('ChangeRequestRaised'),
          newEvent('ChangeRequestSubmitted'),
          newEvent('ChangeRequestApproved'),
        ];

        const result = await store.append(streamId, events, 'no-stream');
        const read = await store.readStream(streamId);

        expect(read).toHaveLength(3);
        expect(ids(read)).toEqual(ids(events));
        expect(read.map((e) => e.type)).toEqual([
          'ChangeRequestRaised',
          'ChangeRequestSubmitted',
          'ChangeRequestApproved',
        ]);
        expect(read.every((e) => e.streamId === streamId)).toBe(true);
        expect(revisions(read)).toEqual([0n, 1n, 2n]);
        for (const e of read) {
          expect(typeof e.revision).toBe('bigint');
          expect(typeof e.position).toBe('bigint');
        }
        expectStrictlyIncreasing(read.map((e) => e.position));
        expect(result.nextExpectedRevision).toBe(2n);
        expect(result.position).toBe(read[2].position);

        const more = await store.append(streamId, [newEvent('ChangeRequestClosed')], 2n);
        const after = await store.readStream(streamId);
        expect(revisions(after)).toEqual([0n, 1n, 2n, 3n]);
        expectStrictlyIncreasing(after.map((e) => e.position));
        expect(more).toEqual({ nextExpectedRevision: 3n, position: after[3].position });
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('an append over MAX_APPEND_BYTES (UTF-8, all its events together) is refused and stores nothing; one within it is stored', async () => {
        const streamId = newStreamId();
        await store.append(streamId, [newEvent('ChangeRequestRaised')], 'no-stream');
        const head = await store.headPosition();
        // 2 bytes a character: 1.2 MB in all, though 600,000 characters
        const text = (characters: number) => 'é'.repeat(characters);
        const large = [
          newEvent('ChangeRequestAmended', { plan: text(300_000) }),
          newEvent('ChangeRequestAmended', { plan: text(300_000) }),
        ];
        const refused = await store.append(streamId, large, 0n).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refused).toBeInstanceOf(AppendTooLargeError);
        expect((refused as AppendTooLargeError).bytes).toBeGreaterThan(1_200_000);
        expect((refused as AppendTooLargeError).limit).toBe(MAX_APPEND_BYTES);
        expect(await store.headPosition()).toBe(head);
        expect(revisions(await store.readStream(streamId))).toEqual([0n]);

        // over only with its last event, after a first INSERT statement's worth of rows (100 on
        // SQLite) went in: those are taken back too
        const many = [
          ...newEvents(150),
          newEvent('ChangeRequestAmended', { plan: 'x'.repeat(MAX_APPEND_BYTES) }),
        ];
        await expect(store.append(streamId, many, 0n)).rejects.toBeInstanceOf(AppendTooLargeError);
        expect(await store.headPosition()).toBe(head);
        expect(revisions(await store.readStream(streamId))).toEqual([0n]);

        // one of them alone (600 KB) fits, and so does one of 900 KB
        const fits = newEvent('ChangeRequestAmended', { plan: text(450_000) });
        expect((await store.append(streamId, [large[0]], 0n)).nextExpectedRevision).toBe(1n);
        expect((await store.append(streamId, [fits], 1n)).nextExpectedRevision).toBe(2n);
        const read = await store.readStream(streamId);
        expect(read[2].data).toEqual({ plan: text(450_000) });
        expectValidChain(read);
      });

      it('appends of many events keep order, positions and the chain, and repeat idempotently', async () => {
        const before = await store.headPosition();
        const streamId = newStreamId();
        // more than one INSERT statement's worth on SQLite (100 rows each)
        const first = newEvents(250);
        const second = newEvents(33, 'ChangeRequestAmended');

        const one = await store.append(streamId, first, 'no-stream');
        const two = await store.append(streamId, second, 249n);
        const read = await store.readStream(streamId);

        expect(ids(read)).toEqual(ids([...first, ...second]));
        expect(revisions(read)).toEqual(Array.from({ length: 283 }, (_, i) => BigInt(i)));
        expect(read.map((e) => e.data)).toEqual([...first, ...second].map((e) => e.data));
        expectStrictlyIncreasing(read.map((e) => e.position));
        expect(read[0].position).toBeGreaterThan(before);
        expect(one).toEqual({ nextExpectedRevision: 249n, position: read[249].position });
        expect(two).toEqual({ nextExpectedRevision: 282n, position: read[282].position });
        expect(await store.headPosition()).toBe(read[282].position);
        expectValidChain(read);
        // the same 250 again at the same expected revision: answered like the first time
        expect(await store.append(streamId, first, 'no-stream')).toEqual(one);
        expect(await store.readStream(streamId)).toHaveLength(283);
      });

      it('readStream of a missing stream is []; fromRevision starts at that revision', async () => {
        expect(await store.readStream(newStreamId())).toEqual([]);
        expect(await store.readStream(newStreamId(), { fromRevision: 3n })).toEqual([]);

        const streamId = newStreamId();
        const events = newEvents(5);
        await store.append(streamId, events, 'no-stream');
        const all = await store.readStream(streamId);

        expect(await store.readStream(streamId, { fromRevision: 0n })).toEqual(all);
        const tail = await store.readStream(streamId, { fromRevision: 2n });
        expect(revisions(tail)).toEqual([2n, 3n, 4n]);
        expect(ids(tail)).toEqual(ids(events.slice(2)));
        expect(tail).toEqual(all.slice(2));
        expect(revisions(await store.readStream(streamId, { fromRevision: 4n }))).toEqual([4n]);
        expect(await store.readStream(streamId, { fromRevision: 5n })).toEqual([]);
      });

      it('round-trips eventId, type, data and metadata, and adds a valid hash chain', async () => {
        const before = await store.headPosition();
        const streamId = newStreamId();
        const first = newEvent(
          'ChangeRequestRaised',
          {
            title: 'Rotate TLS certificates on edge-01 — “prod” ✓',
            risk: { level: 'high', score: 7.5, factors: ['customer-facing', 'no-rollback'] },
            window: { start: '2030-02-01T22:00:00.000Z', end: '2030-02-01T23:30:00.000Z' },
            approvers: [],
            emergency: false,
            ticket: null,
            count: 0,
          },
          { correlationId: 'corr-1', causationId: null, schemaVersion: 1, idempotencyKey: 'idem-123' },
        );
        const second = newEvent(
          'ChangeRequestSubmitted',
          { note: 'ready' },
          {
            actor: { id: 'svc-ci', name: 'CI pipeline', roles: [] },
            correlationId: 'corr-1',
            causationId: first.eventId,
            schemaVersion: 3,
          },
        );
        const third = newEvent('ChangeRequestApproved', { by: 'user-7' }, { causationId: second.eventId });

        await store.append(streamId, [first, second], 'no-stream');
        await store.append(streamId, [third], 1n);
        const read = await store.readStream(streamId);

        expect(read).toHaveLength(3);
        [first, second, third].forEach((sent, i) => {
          const got = read[i];
          expect(got.eventId).toBe(sent.eventId);
          expect(got.type).toBe(sent.type);
          expect(got.data).toEqual(sent.data);
          expect(got.metadata.actor).toEqual(sent.metadata.actor);
          expect(got.metadata.occurredAt).toBe(sent.metadata.occurredAt);
          expect(got.metadata.correlationId).toBe(sent.metadata.correlationId);
          expect(got.metadata.causationId).toBe(sent.metadata.causationId);
          expect(got.metadata.schemaVersion).toBe(sent.metadata.schemaVersion);
          expect(withoutChain(got.metadata)).toMatchObject(sent.metadata);
        });
        expect(read[0].metadata.idempotencyKey).toBe('idem-123');
        expect(read[1].metadata.causationId).toBe(first.eventId);

        // the chain: genesis, then each previousHash is the hash before it, also across appends
        expect(read[0].metadata.previousHash).toBe(GENESIS);
        expect(read[1].metadata.previousHash).toBe(read[0].metadata.hash);
        expect(read[2].metadata.previousHash).toBe(read[1].metadata.hash);
        expectValidChain(read);
        expect(new Set(read.map((e) => e.metadata.hash)).size).toBe(3);

        // every stream has its own chain
        const other = newStreamId();
        await store.append(other, [newEvent()], 'no-stream');
        const [otherFirst] = await store.readStream(other);
        expect(otherFirst.metadata.previousHash).toBe(GENESIS);
        expect(otherFirst.metadata.hash).toMatch(HEX_64);

        // the global log answers the very same events
        const viaAll = await readAllOf(store, before, read[2].position, (s) => s === streamId);
        expect(viaAll).toEqual(read);
      });
    });

    describe('optimistic concurrency', () => {
      it("'no-stream' on an existing stream and a wrong exact revision fail with ConcurrencyError", async () => {
        const streamId = newStreamId();
        await store.append(streamId, newEvents(2), 'no-stream');

        const noStream = await conflict(store.append(streamId, [newEvent()], 'no-stream'));
        expect(noStream.streamId).toBe(streamId);
        expect(noStream.expected).toBe('no-stream');
        expect(noStream.actual).toBe(1n);

        const stale = await conflict(store.append(streamId, [newEvent()], 0n));
        expect(stale.streamId).toBe(streamId);
        expect(stale.expected).toBe(0n);
        expect(stale.actual).toBe(1n);

        const ahead = await conflict(store.append(streamId, [newEvent()], 5n));
        expect(ahead.streamId).toBe(streamId);
        expect(ahead.actual).toBe(1n);

        const missing = newStreamId();
        const onMissing = await conflict(store.append(missing, [newEvent()], 0n));
        expect(onMissing.streamId).toBe(missing);
        expect(onMissing.actual).toBe('no-stream');
        expect(await store.readStream(missing)).toEqual([]);

        expect(revisions(await store.readStream(streamId))).toEqual([0n, 1n]);
      });

      it("the exact revision works, and 'any' always works", async () => {
        const streamId = newStreamId();
        await store.append(streamId, newEvents(2), 'no-stream');

        const exact = await store.append(streamId, [newEvent()], 1n);
        expect(exact.nextExpectedRevision).toBe(2n);
        const any = await store.append(streamId, newEvents(2), 'any');
        expect(any.nextExpectedRevision).toBe(4n);
        const anyAgain = await store.append(streamId, [newEvent()], 'any');
        expect(anyAgain.nextExpectedRevision).toBe(5n);
        expect(anyAgain.position).toBeGreaterThan(any.position);

        const fresh = newStreamId();
        const anyOnNew = await store.append(fresh, [newEvent()], 'any');
        expect(anyOnNew.nextExpectedRevision).toBe(0n);

        const read = await store.readStream(streamId);
        expect(revisions(read)).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
        expect(anyAgain.position).toBe(read[5].position);
        expectValidChain(read);
        expect(revisions(await store.readStream(fresh))).toEqual([0n]);
      });

      it('an append of several events that conflicts leaves nothing of it behind', async () => {
        const streamId = newStreamId();
        const head = await store.append(streamId, newEvents(2), 'no-stream');
        const rejected = newEvents(3, 'Rejected');

        await conflict(store.append(streamId, rejected, 0n));
        await conflict(store.append(streamId, rejected, 'no-stream'));
        await conflict(store.append(streamId, rejected, 9n));

        expect(revisions(await store.readStream(streamId))).toEqual([0n, 1n]);
        const written = await store.append(streamId, [newEvent('Marker')], 1n);
        const between = await readAllOf(store, head.position, written.position, (s) => s === streamId);
        expect(between.map((e) => e.type)).toEqual(['Marker']);

        // the ids of the rejected batch were never stored: the very same batch now goes through
        const retried = await store.append(streamId, rejected, 2n);
        expect(retried.nextExpectedRevision).toBe(5n);
        const read = await store.readStream(streamId);
        expect(read.map((e) => e.type)).toEqual([
          'ChangeRequestUpdated',
          'ChangeRequestUpdated',
          'Marker',
          'Rejected',
          'Rejected',
          'Rejected',
        ]);
        expect(ids(read.slice(3))).toEqual(ids(rejected));
        expectValidChain(read);
      });
    });

    describe('idempotent re-append', () => {
      it('the same eventIds at the same expected revision write nothing and answer like the first append', async () => {
        const before = await store.headPosition();
        const streamId = newStreamId();
        const batch = newEvents(2);
        const first = await store.append(streamId, batch, 'no-stream');

        expect(await store.append(streamId, batch, 'no-stream')).toEqual(first);
        expect(ids(await store.readStream(streamId))).toEqual(ids(batch));

        const next = [newEvent('Next')];
        const second = await store.append(streamId, next, 1n);
        expect(second.nextExpectedRevision).toBe(2n);
        expect(await store.append(streamId, next, 1n)).toEqual(second);

        // still a no-op after the stream moved on
        expect(await store.append(streamId, batch, 'no-stream')).toEqual(first);

        const read = await store.readStream(streamId);
        expect(ids(read)).toEqual([...ids(batch), ...ids(next)]);
        expect(revisions(read)).toEqual([0n, 1n, 2n]);
        const inLog = await readAllOf(store, before, await store.headPosition(), (s) => s === streamId);
        expect(ids(inLog)).toEqual(ids(read));
      });

      it('the same eventIds at a stale or a future expected revision fail with ConcurrencyError', async () => {
        const streamId = newStreamId();
        const batch = newEvents(2);
        await store.append(streamId, batch, 'no-stream');
        const next = [newEvent('Next')];
        await store.append(streamId, next, 1n);

        const wrong = await conflict(store.append(streamId, batch, 0n));
        expect(wrong.streamId).toBe(streamId);
        await conflict(store.append(streamId, batch, 7n));
        await conflict(store.append(streamId, next, 0n));
        await conflict(store.append(streamId, next, 'no-stream'));

        expect(revisions(await store.readStream(streamId))).toEqual([0n, 1n, 2n]);
      });

      it("with 'any' too: the same eventIds again answer like the first append, also after the stream moved on", async () => {
        const streamId = newStreamId();
        const batch = newEvents(2);
        const first = await store.append(streamId, batch, 'any');
        await store.append(streamId, newEvents(3), 'any');
        expect(await store.append(streamId, batch, 'any')).toEqual(first);
        expect(revisions(await store.readStream(streamId))).toEqual([0n, 1n, 2n, 3n, 4n]);
      });

      it("with 'any', a repeat from 60 events back (a client's retry after others wrote) is still recognised", async () => {
        const streamId = newStreamId();
        const batch = newEvents(2);
        const first = await store.append(streamId, batch, 'any');
        await store.append(streamId, newEvents(60), 'any');
        expect(await store.append(streamId, batch, 'any')).toEqual(first);
        expect((await store.readStream(streamId)).length).toBe(62);
      });

      it('a batch that repeats only part of an earlier one is refused, not half applied', async () => {
        const streamId = newStreamId();
        const batch = newEvents(2);
        await store.append(streamId, batch, 'no-stream');
        await conflict(store.append(streamId, [batch[0], newEvent('Other')], 'no-stream'));
        expect(ids(await store.readStream(streamId))).toEqual(ids(batch));
      });
    });

    describe('readAll and headPosition', () => {
      it('reads the global log in order, after is exclusive, limit is honoured', async () => {
        const before = await store.headPosition();
        const a = newStreamId();
        const b = newStreamId();
        const mine = (s: string) => s === a || s === b;

        const r1 = await store.append(a, newEvents(2, 'A'), 'no-stream');
        const r2 = await store.append(b, newEvents(1, 'B'), 'no-stream');
        const r3 = await store.append(a, newEvents(2, 'A'), 1n);
        const r4 = await store.append(b, newEvents(3, 'B'), 0n);
        expectStrictlyIncreasing([before, r1.position, r2.position, r3.position, r4.position]);

        const head = await store.headPosition();
        expect(head).toBeGreaterThanOrEqual(r4.position);

        const log = await readAllOf(store, before, r4.position, mine);
        expect(log).toHaveLength(8);
        expect(log.map((e) => `${e.streamId === a ? 'a' : 'b'}${e.revision}`)).toEqual([
          'a0',
          'a1',
          'b0',
          'a2',
          'a3',
          'b1',
          'b2',
          'b3',
        ]);
        expectStrictlyIncreasing(log.map((e) => e.position));
        expect(log.every((e) => e.position > before)).toBe(true);
        expect(log[1].position).toBe(r1.position);
        expect(log[2].position).toBe(r2.position);
        expect(log[7].position).toBe(r4.position);
        expect(log).toEqual(
          [...(await store.readStream(a)), ...(await store.readStream(b))].sort((x, y) =>
            x.position < y.position ? -1 : 1,
          ),
        );

        // exclusive `after`
        const fromFirst = await store.readAll({ after: log[0].position, limit: 1 });
        expect(fromFirst).toHaveLength(1);
        expect(fromFirst[0].position).toBeGreaterThan(log[0].position);
        expect(fromFirst[0].position).toBeLessThanOrEqual(log[1].position);
        expect(fromFirst[0].eventId).not.toBe(log[0].eventId);
        const fromBefore = await store.readAll({ after: before, limit: 1 });
        expect(fromBefore).toHaveLength(1);
        expect(fromBefore[0].position).toBeGreaterThan(before);
        expect(fromBefore[0].position).toBeLessThanOrEqual(log[0].position);

        // limit
        for (const limit of [1, 2, 5]) {
          const page = await store.readAll({ after: before, limit });
          expect(page).toHaveLength(limit);
          expectStrictlyIncreasing([before, ...page.map((e) => e.position)]);
        }
        const lastTwo = await store.readAll({ after: log[5].position, limit: 1000 });
        expect(lastTwo.filter((e) => mine(e.streamId)).map((e) => e.eventId)).toEqual(ids(log.slice(6)));
        const afterLast = await store.readAll({ after: r4.position, limit: 1000 });
        expect(afterLast.filter((e) => mine(e.streamId))).toEqual([]);

        // paging through with a small limit gives the same log
        const paged: RecordedEvent[] = [];
        let cursor = before;
        while (cursor < r4.position) {
          const page = await store.readAll({ after: cursor, limit: 3 });
          expect(page.length).toBeGreaterThan(0);
          expect(page.length).toBeLessThanOrEqual(3);
          paged.push(...page.filter((e) => mine(e.streamId) && e.position <= r4.position));
          expect(page[page.length - 1].position).toBeGreaterThan(cursor);
          cursor = page[page.length - 1].position;
        }
        expect(paged).toEqual(log);

        await store.append(a, [newEvent()], 'any');
        expect(await store.headPosition()).toBeGreaterThan(r4.position);
      });
    });

    describe('appendWithSequence', () => {
      const sequenced = (sequence: string, prefix: string, eventsPer = 1): SequencedStream => ({
        sequence,
        build: (n) => ({
          streamId: `${prefix}CHG-${String(n).padStart(3, '0')}`,
          events: Array.from({ length: eventsPer }, (_, i) =>
            newEvent(i === 0 ? 'ChangeRequestRaised' : 'ChangeRequestUpdated', { number: n, i }),
          ),
        }),
      });

      it('numbers a fresh sequence 1, 2, 3 and names the streams after them', async () => {
        const sequence = `change-request-T${uid()}`;
        const prefix = newPrefix();
        const spec = sequenced(sequence, prefix, 2);

        const r1 = await store.appendWithSequence(spec);
        const r2 = await store.appendWithSequence(spec);
        const r3 = await store.appendWithSequence(spec);

        expect([r1.number, r2.number, r3.number]).toEqual([1, 2, 3]);
        expect([r1.streamId, r2.streamId, r3.streamId]).toEqual([
          `${prefix}CHG-001`,
          `${prefix}CHG-002`,
          `${prefix}CHG-003`,
        ]);
        expectStrictlyIncreasing([r1.position, r2.position, r3.position]);
        for (const r of [r1, r2, r3]) {
          expect(r.nextExpectedRevision).toBe(1n);
          const read = await store.readStream(r.streamId);
          expect(revisions(read)).toEqual([0n, 1n]);
          expect(read.map((e) => e.data.number)).toEqual([r.number, r.number]);
          expect(r.position).toBe(read[1].position);
          expectValidChain(read);
        }

        // another sequence counts on its own
        const other = await store.appendWithSequence(sequenced(`change-request-T${uid()}`, newPrefix()));
        expect(other.number).toBe(1);
        expect((await store.appendWithSequence(spec)).number).toBe(4);
      });

      it('a stream over MAX_APPEND_BYTES is refused and takes no number', async () => {
        const sequence = `change-request-T${uid()}`;
        const prefix = newPrefix();
        const huge: SequencedStream = {
          sequence,
          build: (n) => ({
            streamId: `${prefix}CHG-${String(n).padStart(3, '0')}`,
            events: [newEvent('ChangeRequestRaised', { plan: 'x'.repeat(MAX_APPEND_BYTES) })],
          }),
        };
        await expect(store.appendWithSequence(huge)).rejects.toBeInstanceOf(AppendTooLargeError);
        expect(await store.readStream(`${prefix}CHG-001`)).toEqual([]);
        const next = await store.appendWithSequence(sequenced(sequence, prefix));
        expect([next.number, next.streamId]).toEqual([1, `${prefix}CHG-001`]);
      });

      it('skips a number whose stream exists already (written outside the sequence), and keeps going', async () => {
        const sequence = `change-request-T${uid()}`;
        const prefix = newPrefix();
        expect((await store.appendWithSequence(sequenced(sequence, prefix))).number).toBe(1);

        // the stream number 2 would create exists already
        await store.append(`${prefix}CHG-002`, [newEvent('Squatter')], 'no-stream');
        const r = await store.appendWithSequence(sequenced(sequence, prefix));
        expect(r.number).toBe(3);
        expect(r.streamId).toBe(`${prefix}CHG-003`);
        expect(revisions(await store.readStream(r.streamId))).toEqual([0n]);
        // the squatter is left as it was, and later creations do not trip over it
        expect((await store.readStream(`${prefix}CHG-002`)).map((e) => e.type)).toEqual(['Squatter']);
        expect((await store.appendWithSequence(sequenced(sequence, prefix))).number).toBe(4);
      });

      it('creates the stream only while the streams the decision read are unchanged', async () => {
        const sequence = `change-request-T${uid()}`;
        const prefix = newPrefix();
        const template = `${newPrefix()}STD-001`;
        const absent = `${newPrefix()}STD-002`;
        await store.append(template, [newEvent('TemplateCreated', { n: 1 })], 'no-stream');
        const guarded = (revision: bigint | 'no-stream'): SequencedStream => ({
          ...sequenced(sequence, prefix),
          unchanged: [
            { streamId: template, revision },
            { streamId: absent, revision: 'no-stream' },
          ],
        });
        expect((await store.appendWithSequence(guarded(0n))).number).toBe(1);

        // the template moved on (retired) after the decision read it at revision 0
        await store.append(template, [newEvent('TemplateRetired', { n: 2 })], 0n);
        const refused = await store.appendWithSequence(guarded(0n)).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(ConcurrencyError);
        expect(refused).toMatchObject({ streamId: template, actual: 1n });
        expect(await store.readStream(`${prefix}CHG-002`)).toEqual([]);
        // a stream that had to be absent now exists: refused too
        await store.append(absent, [newEvent('TemplateCreated', { n: 3 })], 'no-stream');
        await conflict(store.appendWithSequence({ ...guarded(1n) }));
        // no number was taken by the refused calls
        const r = await store.appendWithSequence({
          ...sequenced(sequence, prefix),
          unchanged: [
            { streamId: template, revision: 1n },
            { streamId: absent, revision: 0n },
          ],
        });
        expect(r.number).toBe(2);
        expect(r.streamId).toBe(`${prefix}CHG-002`);
      });

      it('50 concurrent calls get exactly 1..50 and each writes its stream', async () => {
        const sequence = `change-request-T${uid()}`;
        const prefix = newPrefix();
        const spec = sequenced(sequence, prefix, 2);

        const results = await Promise.all(Array.from({ length: 50 }, () => store.appendWithSequence(spec)));

        const numbers = results.map((r) => r.number).sort((x, y) => x - y);
        expect(numbers).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(new Set(results.map((r) => r.streamId)).size).toBe(50);
        expect(new Set(results.map((r) => r.position)).size).toBe(50);
        for (const r of results) {
          expect(r.streamId).toBe(`${prefix}CHG-${String(r.number).padStart(3, '0')}`);
          expect(r.nextExpectedRevision).toBe(1n);
          const read = await store.readStream(r.streamId);
          expect(revisions(read)).toEqual([0n, 1n]);
          expect(read.map((e) => e.data.number)).toEqual([r.number, r.number]);
          expect(r.position).toBe(read[1].position);
        }
        expect((await store.appendWithSequence(spec)).number).toBe(51);
      }, 30_000);
    });

    describe('subscribeToAll', () => {
      it('catches up, then delivers live events in order, only for its prefixes; close() ends the loop', async () => {
        const before = await store.headPosition();
        const prefix = newPrefix();
        const a = `${prefix}a`;
        const b = `${prefix}b`;
        const foreign = [newStreamId(), `other-${prefix}x`, `${prefix.slice(0, -1)}_y`];

        const expected: NewEvent[] = [];
        const mine = (stream: string, events: NewEvent[], rev: 'no-stream' | bigint) => {
          expected.push(...events);
          return store.append(stream, events, rev);
        };

        // written before subscribing
        await mine(a, newEvents(2, 'A'), 'no-stream');
        await store.append(foreign[0], [newEvent('Foreign')], 'no-stream');
        await mine(b, newEvents(1, 'B'), 'no-stream');
        await store.append(foreign[1], [newEvent('Foreign')], 'no-stream');

        const subscription = store.subscribeToAll({ after: before, streamPrefixes: [prefix] });
        const consumer = consume(subscription);
        try {
          await consumer.waitFor(3);
          expect(ids(consumer.received)).toEqual(ids(expected));

          // written while subscribed
          await store.append(foreign[2], [newEvent('Foreign')], 'no-stream');
          await mine(a, [newEvent('A')], 1n);
          await store.append(foreign[0], [newEvent('Foreign')], 0n);
          await mine(b, newEvents(2, 'B'), 0n);
          await consumer.waitFor(6);
          await sleep(20);
          await mine(`${prefix}end`, [newEvent('Sentinel')], 'no-stream');
          await consumer.waitFor(7);
          await sleep(50);

          const received = consumer.received;
          expect(ids(received)).toEqual(ids(expected));
          expect(received.every((e) => e.streamId.startsWith(prefix))).toBe(true);
          expect(received.every((e) => e.position > before)).toBe(true);
          expectStrictlyIncreasing(received.map((e) => e.position));
          expect(received.map((e) => `${e.streamId.slice(prefix.length)}${e.revision}`)).toEqual([
            'a0',
            'a1',
            'b0',
            'a2',
            'b1',
            'b2',
            'end0',
          ]);
          expect(received).toEqual(
            await readAllOf(store, before, received[6].position, (s) => s.startsWith(prefix)),
          );
        } finally {
          await subscription.close();
        }
        await within(consumer.done, 2000, 'the for-await loop after close()');
        const count = consumer.received.length;
        await store.append(a, [newEvent('AfterClose')], 'any');
        await sleep(50);
        expect(consumer.received).toHaveLength(count);
      });

      it('delivers every listed prefix, and every stream when no prefix is given', async () => {
        const before = await store.headPosition();
        const p1 = newPrefix();
        const p2 = newPrefix();
        const p3 = newPrefix();
        const written: RecordedEvent[] = [];
        for (const [stream, type] of [
          [`${p1}s`, 'One'],
          [`${p3}s`, 'Three'],
          [`${p2}s`, 'Two'],
          [`${p1}t`, 'One'],
        ] as const) {
          await store.append(stream, [newEvent(type)], 'no-stream');
          written.push(...(await store.readStream(stream)));
        }
        written.sort((x, y) => (x.position < y.position ? -1 : 1));
        const last = written[written.length - 1].position;

        const two = store.subscribeToAll({ after: before, streamPrefixes: [p1, p2] });
        const all = store.subscribeToAll({ after: before });
        const twoConsumer = consume(two);
        const allConsumer = consume(all);
        try {
          await twoConsumer.waitFor(3);
          const allDeadline = Date.now() + 5000;
          while (!allConsumer.received.some((e) => e.position >= last)) {
            if (Date.now() > allDeadline)
              throw new Error('the unfiltered subscription did not reach the last event');
            await sleep(5);
          }
          await sleep(20);
          expect(twoConsumer.received.map((e) => e.type)).toEqual(['One', 'Two', 'One']);
          expect(ids(twoConsumer.received)).toEqual(ids(written.filter((e) => e.type !== 'Three')));
          const mine = allConsumer.received.filter((e) => [p1, p2, p3].some((p) => e.streamId.startsWith(p)));
          expect(mine).toEqual(written);
          expectStrictlyIncreasing(allConsumer.received.map((e) => e.position));
          expect(allConsumer.received.every((e) => e.position > before)).toBe(true);
        } finally {
          await two.close();
          await all.close();
        }
        await within(
          Promise.all([twoConsumer.done, allConsumer.done]),
          2000,
          'the for-await loops after close()',
        );
      });

      it('a subscription from a middle position starts right after it', async () => {
        const prefix = newPrefix();
        const streamId = `${prefix}s`;
        const events = newEvents(5);
        await store.append(streamId, events.slice(0, 3), 'no-stream');
        await store.append(streamId, events.slice(3), 2n);
        const read = await store.readStream(streamId);

        const subscription = store.subscribeToAll({ after: read[1].position, streamPrefixes: [prefix] });
        const consumer = consume(subscription);
        try {
          await consumer.waitFor(3);
          await sleep(20);
          expect(ids(consumer.received)).toEqual(ids(events.slice(2)));
          expect(consumer.received[0].revision).toBe(2n);

          // live from the head: nothing old, then the new event
          const head = await store.headPosition();
          const live = store.subscribeToAll({ after: head, streamPrefixes: [prefix] });
          const liveConsumer = consume(live);
          try {
            await sleep(20);
            expect(liveConsumer.received).toEqual([]);
            const extra = newEvent('Live');
            await store.append(streamId, [extra], 4n);
            await liveConsumer.waitFor(1);
            expect(ids(liveConsumer.received)).toEqual([extra.eventId]);
            expect(liveConsumer.received[0].revision).toBe(5n);
            await consumer.waitFor(4);
            expect(ids(consumer.received)).toEqual([...ids(events.slice(2)), extra.eventId]);
          } finally {
            await live.close();
          }
          await within(liveConsumer.done, 2000, 'the live for-await loop after close()');
        } finally {
          await subscription.close();
        }
        await within(consumer.done, 2000, 'the for-await loop after close()');
      });

      it('a slow consumer of a few thousand events still receives all of them, in order', async () => {
        const before = await store.headPosition();
        const prefix = newPrefix();
        const streams = [`${prefix}a`, `${prefix}b`, `${prefix}c`];
        const expected: string[] = [];
        const revs = new Map<string, bigint>();
        const writeRound = async (rounds: number) => {
          for (let r = 0; r < rounds; r++) {
            for (const s of streams) {
              const batch = newEvents(100, 'Bulk');
              const at = revs.get(s);
              const result = await store.append(s, batch, at === undefined ? 'no-stream' : at);
              revs.set(s, result.nextExpectedRevision);
              expected.push(...ids(batch));
            }
          }
        };
        await writeRound(5); // 1500 before subscribing

        const subscription = store.subscribeToAll({ after: before, streamPrefixes: [prefix] });
        const received: RecordedEvent[] = [];
        let writer: Promise<void> | undefined;
        for await (const event of subscription) {
          received.push(event);
          if (received.length === 200) writer = writeRound(5); // 1500 more while consuming
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (received.length % 500 === 0) await sleep(1);
          if (received.length === 3000) break;
        }
        await writer;
        expect(received).toHaveLength(3000);
        expect(ids(received)).toEqual(expected);
        expectStrictlyIncreasing(received.map((e) => e.position));
        for (const s of streams) {
          expect(revisions(received.filter((e) => e.streamId === s))).toEqual(
            Array.from({ length: 1000 }, (_, i) => BigInt(i)),
          );
        }
        await subscription.close();
      }, 30_000);
    });

    it('restart: everything is still there and appends continue', async () => {
      const before = await store.headPosition();
      const streamId = newStreamId();
      const batch = newEvents(2);
      const first = await store.append(streamId, batch, 'no-stream');
      const sequence = `change-request-T${uid()}`;
      const prefix = newPrefix();
      const spec: SequencedStream = {
        sequence,
        build: (n) => ({ streamId: `${prefix}${n}`, events: [newEvent('Raised', { n })] }),
      };
      const seq1 = await store.appendWithSequence(spec);
      const stream = await store.readStream(streamId);
      const log = await readAllOf(
        store,
        before,
        seq1.position,
        (s) => s === streamId || s.startsWith(prefix),
      );
      expect(log).toHaveLength(3);

      await store.close();
      const reopened = await fx.reopen(store);
      store = reopened;

      expect(await reopened.readStream(streamId)).toEqual(stream);
      expect(await reopened.headPosition()).toBeGreaterThanOrEqual(seq1.position);
      expect(
        await readAllOf(reopened, before, seq1.position, (s) => s === streamId || s.startsWith(prefix)),
      ).toEqual(log);

      // concurrency and idempotency survive the restart
      await conflict(reopened.append(streamId, [newEvent()], 'no-stream'));
      expect(await reopened.append(streamId, batch, 'no-stream')).toEqual(first);

      const next = await reopened.append(streamId, [newEvent('AfterRestart')], 1n);
      expect(next.nextExpectedRevision).toBe(2n);
      expect(next.position).toBeGreaterThan(seq1.position);
      const read = await reopened.readStream(streamId);
      expect(revisions(read)).toEqual([0n, 1n, 2n]);
      expect(read[2].position).toBe(next.position);
      expectValidChain(read);

      const seq2 = await reopened.appendWithSequence(spec);
      expect(seq2.number).toBe(2);
      expect(seq2.streamId).toBe(`${prefix}2`);
      expect(seq2.position).toBeGreaterThan(next.position);

      const subscription = reopened.subscribeToAll({ after: before, streamPrefixes: [streamId] });
      const consumer = consume(subscription);
      try {
        await consumer.waitFor(3);
        expect(consumer.received).toEqual(read);
      } finally {
        await subscription.close();
      }
      await within(consumer.done, 2000, 'the for-await loop after close()');
    });
  });
}
