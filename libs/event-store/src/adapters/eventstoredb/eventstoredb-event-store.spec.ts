/**
 * The adapter's own logic (hash chain, retries, sequences, subscriptions) on an in-memory double
 * of the client. What EventStoreDB itself does is for the contract suite against a real server
 * (test/contract/eventstoredb-event-store.spec.ts).
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { AccessDeniedError, convertToCommandError, jsonEvent, UnavailableError } from '@eventstore/db-client';
import { verifyHashChains } from '../../audit/verify-chain';
import { computeEventHash, GENESIS_HASH } from '../../event-hash';
import {
  AppendOutcomeUnknownError,
  AppendTooLargeError,
  ConcurrencyError,
  EventStoreUnavailableError,
  StoredEventCorruptError,
} from '../../event-store.errors';
import {
  MAX_APPEND_BYTES,
  type NewEvent,
  type RecordedEvent,
  type SequencedStream,
} from '../../event-store.port';
import {
  EventStoreDbEventStore,
  type EventStoreDbClient,
  type EventStoreDbEventStoreOptions,
} from './eventstoredb-event-store';
import {
  SEQUENCE_NUMBER_ALLOCATED,
  SEQUENCE_NUMBER_RELEASED,
  sequenceStreamId,
} from './eventstoredb-mapping';
import { waitUntil as pollUntil } from '../../../../../test/support/wait-until';
import {
  InMemoryEventStoreDbClient,
  type InMemoryEventStoreDbClientOptions,
} from './testing/in-memory-eventstoredb-client';

const newEvent = (type = 'ChangeRequestUpdated', data: Record<string, unknown> = {}): NewEvent => ({
  eventId: randomUUID(),
  type,
  data,
  metadata: {
    actor: { id: 'user-1', name: 'Ada', roles: ['requester'] },
    occurredAt: '2030-01-01T00:00:00.000Z',
    correlationId: randomUUID(),
    causationId: null,
    schemaVersion: 1,
  },
});
const newEvents = (n: number) => Array.from({ length: n }, (_, i) => newEvent('ChangeRequestUpdated', { i }));
const streamId = () => `changeRequest-T${randomUUID()}`;
const revisions = (events: readonly RecordedEvent[]) => events.map((e) => e.revision);

const expectValidChain = (events: readonly RecordedEvent[]) => {
  events.forEach((event, i) => {
    expect(event.metadata.previousHash).toBe(i === 0 ? GENESIS_HASH : events[i - 1].metadata.hash);
    expect(computeEventHash(event, event.metadata.previousHash as string)).toBe(event.metadata.hash);
  });
};

/** Pulls `count` events without ending the subscription (a for-await `break` would). */
const take = async (
  subscription: AsyncIterable<RecordedEvent>,
  count: number,
  into: RecordedEvent[] = [],
) => {
  const iterator = subscription[Symbol.asyncIterator]();
  while (into.length < count) {
    const next = await iterator.next();
    if (next.done) break;
    into.push(next.value);
  }
  return into;
};

const waitUntil = (condition: () => boolean, what: string) =>
  pollUntil(condition, what, { timeoutMs: 2_000, everyMs: 2 });

describe('EventStoreDbEventStore (on an in-memory double of the client)', () => {
  let server: InMemoryEventStoreDbClient;
  let logger: { warn: jest.Mock; error: jest.Mock };
  let sleeps: number[];
  const stores: EventStoreDbEventStore[] = [];

  const open = (
    options: EventStoreDbEventStoreOptions = {},
    client: EventStoreDbClient = server.connection(),
  ) => {
    const store = new EventStoreDbEventStore(client, {
      logger,
      sleep: async (ms) => void sleeps.push(ms),
      ...options,
    });
    stores.push(store);
    return store;
  };
  const newServer = (options: InMemoryEventStoreDbClientOptions = {}) => {
    server = new InMemoryEventStoreDbClient(options);
    return server;
  };

  beforeEach(() => {
    newServer();
    logger = { warn: jest.fn(), error: jest.fn() };
    sleeps = [];
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  describe('append', () => {
    it('chains every stream from genesis, across appends, with positions beyond 2^53', async () => {
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(2), 'no-stream');
      await store.append(id, newEvents(1), 1n);
      await store.append(id, newEvents(2), 'any');
      const read = await store.readStream(id);
      expect(revisions(read)).toEqual([0n, 1n, 2n, 3n, 4n]);
      expectValidChain(read);
      expect(read.every((e) => e.position >= 2n ** 60n)).toBe(true);
    });

    it('refuses to chain onto a last event without a hash (another tool wrote it), as SQLite does, and appends nothing', async () => {
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(1), 'no-stream');
      const stranger = newEvent('WrittenByAnotherTool');
      await server
        .connection()
        .appendToStream(
          id,
          jsonEvent({ id: stranger.eventId, type: stranger.type, data: {}, metadata: { by: 'a script' } }),
        );
      for (const expected of [1n, 'any'] as const) {
        const refused = await store.append(id, newEvents(1), expected).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(StoredEventCorruptError);
        expect(refused).toMatchObject({ streamId: id, revision: 1n, field: 'metadata' });
        expect((refused as Error).message).toMatch(/its metadata holds no hash/);
      }
      expect(revisions(await store.readStream(id))).toEqual([0n, 1n]);
    });

    it("a server whose MaxAppendSize is below the port's limit: its refusal is AppendTooLargeError with that limit, and a creation hands its number back", async () => {
      newServer({ maxAppendSize: 10_000 });
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(1), 'no-stream');
      const big = newEvent('ChangeRequestUpdated', { text: 'x'.repeat(20_000) });
      const refused = await store.append(id, [big], 0n).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(AppendTooLargeError);
      expect(refused).toMatchObject({ streamId: id, bytes: undefined, limit: 10_000 });
      expect(revisions(await store.readStream(id))).toEqual([0n]);

      const prefix = `changeRequest-T${randomUUID()}-`;
      const spec = (text: string): SequencedStream => ({
        sequence: `seq-${randomUUID()}`,
        build: (n) => ({ streamId: `${prefix}${n}`, events: [newEvent('Raised', { text })] }),
      });
      const huge = spec('x'.repeat(20_000));
      await expect(store.appendWithSequence(huge)).rejects.toBeInstanceOf(AppendTooLargeError);
      // the server refused the stream: its number was allocated, then handed back
      const counter = await store.readStream(sequenceStreamId(huge.sequence));
      expect(counter.map((e) => e.type)).toEqual([SEQUENCE_NUMBER_ALLOCATED, SEQUENCE_NUMBER_RELEASED]);
      const next = await store.appendWithSequence({ ...spec('small'), sequence: huge.sequence });
      expect(next.number).toBe(1);
    });

    it('an append over MAX_APPEND_BYTES is refused before anything is sent, a creation before its number is taken', async () => {
      const store = open();
      const id = streamId();
      const calls = server.calls.append;
      const huge = newEvent('ChangeRequestUpdated', { text: 'x'.repeat(MAX_APPEND_BYTES) });
      await expect(store.append(id, [huge], 'no-stream')).rejects.toBeInstanceOf(AppendTooLargeError);
      const sequence = `seq-${randomUUID()}`;
      await expect(
        store.appendWithSequence({
          sequence,
          build: (n) => ({ streamId: `changeRequest-T${randomUUID()}-${n}`, events: [huge] }),
        }),
      ).rejects.toBeInstanceOf(AppendTooLargeError);
      expect(server.calls.append).toBe(calls);
      expect(await store.readStream(sequenceStreamId(sequence))).toEqual([]);
    });

    it("sends 'any' at the revision it read, so racing writers cannot fork the chain", async () => {
      const id = streamId();
      // two processes; the loser of a race backs off for real (jitter), as in production
      const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
      const a = open({ sleep: realSleep });
      const b = open({ sleep: realSleep });
      await a.append(id, [newEvent('Start')], 'no-stream');
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).append(id, [newEvent('Race', { i })], 'any')),
      );
      const read = await a.readStream(id);
      expect(revisions(read)).toEqual(Array.from({ length: 21 }, (_, i) => BigInt(i)));
      expectValidChain(read);
      expect(logger.error).not.toHaveBeenCalled();
    });

    it("gives up an 'any' append that keeps losing the race, with a ConcurrencyError", async () => {
      const id = streamId();
      const store = open({ anyAttempts: 3 });
      await store.append(id, [newEvent()], 'no-stream');
      // another writer appends between every read and write of ours
      const client = server.connection();
      const racing: EventStoreDbClient = {
        ...client,
        appendToStream: (async (stream: string, events: never, options: never) => {
          // (through the adapter: an event without a hash would be refused, not raced)
          if (stream === id) await store.append(id, [newEvent('Other')], 'any');
          return client.appendToStream(stream, events, options);
        }) as EventStoreDbClient['appendToStream'],
      };
      const loser = open({ anyAttempts: 3 }, racing);
      const error = await loser.append(id, [newEvent()], 'any').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ streamId: id, expected: 'any', actual: 3n });
      expect(logger.error).toHaveBeenCalledWith(expect.stringContaining('lost the race'));
    });

    it("answers a repeated 'any' append from the stream's tail, and refuses the same first id with other events", async () => {
      const store = open();
      const id = streamId();
      const batch = newEvents(2);
      const first = await store.append(id, batch, 'any');
      await store.append(id, newEvents(3), 'any');
      expect(await store.append(id, batch, 'any')).toEqual(first);
      await expect(store.append(id, [batch[0], newEvent()], 'any')).rejects.toBeInstanceOf(ConcurrencyError);
      expect(revisions(await store.readStream(id))).toEqual([0n, 1n, 2n, 3n, 4n]);
    });

    it('retries a transient failure with the very same events: a lost answer writes nothing twice', async () => {
      const store = open();
      const id = streamId();
      await store.append(id, [newEvent()], 'no-stream');
      server.failNext('append', () => new UnavailableError(undefined, 'connection reset'), {
        afterWrite: true,
      });
      const result = await store.append(id, newEvents(2), 0n);
      const read = await store.readStream(id);
      expect(revisions(read)).toEqual([0n, 1n, 2n]);
      expect(result).toEqual({ nextExpectedRevision: 2n, position: read[2].position });
      expectValidChain(read);
      expect(logger.warn).toHaveBeenCalledTimes(1);
      expect(logger.warn.mock.calls[0][0]).toMatch(
        /append to changeRequest-T.* failed \(Error \[unavailable\]: connection reset\); retry 1 of 3 in \d+ ms/,
      );
      expect(logger.error).not.toHaveBeenCalled(); // the repeat's answer is not taken for a shifted stream
    });

    it('retries raw gRPC unavailability (the client does not convert every error)', async () => {
      const store = open();
      server.failNext(
        'append',
        () => Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 }),
        { times: 2 },
      );
      await store.append(streamId(), [newEvent()], 'no-stream');
      expect(sleeps).toHaveLength(2);
      expect(sleeps[1]).toBeGreaterThanOrEqual(sleeps[0]);
    });

    it("retries the read before an append that failed with 'No leader info' (no leader elected yet)", async () => {
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(1), 'no-stream');
      // as the client converts the server's NoLeaderInfo: gRPC UNKNOWN, no exception trailer
      const noLeaderInfo = () =>
        convertToCommandError(
          Object.assign(new Error('2 UNKNOWN: No leader info available in response'), {
            code: 2,
            details: 'No leader info available in response',
          }),
        );
      server.failNext('readStream', noLeaderInfo);
      expect((await store.append(id, newEvents(1), 0n)).nextExpectedRevision).toBe(1n);
      server.failNext('readStream', noLeaderInfo);
      expect((await store.append(id, newEvents(1), 'any')).nextExpectedRevision).toBe(2n);
      expect(logger.warn).toHaveBeenCalledWith(
        expect.stringMatching(/read the .* of .* failed \(.*No leader info available in response\); retry 1/),
      );
      expectValidChain(await store.readStream(id));
    });

    it('surfaces EventStoreUnavailableError after the last attempt, and logs it', async () => {
      const store = open({ retry: { maxAttempts: 3 } });
      const id = streamId();
      server.failNext('append', () => new UnavailableError(undefined, 'down'), { times: 3 });
      const error = await store.append(id, [newEvent()], 'no-stream').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailableError);
      expect((error as Error).message).toMatch(
        /is unavailable: append to changeRequest-T.* failed after 3 attempt\(s\)/,
      );
      expect((error as Error & { cause?: unknown }).cause).toBeInstanceOf(UnavailableError);
      expect(logger.warn).toHaveBeenCalledTimes(2);
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(await store.readStream(id)).toEqual([]);
    });

    it('does not retry permanent errors', async () => {
      const store = open();
      server.failNext('append', () => new AccessDeniedError(undefined, 'no write access'));
      await expect(store.append(streamId(), [newEvent()], 'no-stream')).rejects.toBeInstanceOf(
        AccessDeniedError,
      );
      expect(server.calls.append).toBe(1);
      expect(logger.warn).not.toHaveBeenCalled();
    });

    it('turns a client that answers instead of throwing (throwOnAppendFailure=false) into ConcurrencyError with the real revision', async () => {
      newServer({ throwOnAppendFailure: false });
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(3), 'no-stream');
      await expect(store.append(id, [newEvent()], 0n)).rejects.toMatchObject({
        streamId: id,
        expected: 0n,
        actual: 2n,
      });
    });

    it('refuses an exact revision the stream has not reached without sending it (a writer racing to it would leave a wrong previous hash)', async () => {
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(2), 'no-stream');
      const appends = server.calls.append;
      for (const expected of [3n, 2n]) {
        await expect(store.append(id, [newEvent()], expected)).rejects.toMatchObject({
          streamId: id,
          expected,
          actual: 1n,
        });
      }
      await expect(store.append(streamId(), [newEvent()], 0n)).rejects.toMatchObject({ actual: 'no-stream' });
      expect(server.calls.append).toBe(appends);
      // a stream past the revision is still asked: a repeat answers as the first append did
      const events = [newEvent()];
      const first = await store.append(id, events, 1n);
      await store.append(id, newEvents(2), 2n);
      expect(await store.append(id, events, 1n)).toEqual(first);
      expect(logger.error).not.toHaveBeenCalled();
    });

    it('says so when the server stores events past the revisions they were chained for (a soft-deleted stream)', async () => {
      const client = server.connection();
      const shifted: EventStoreDbClient = {
        ...client,
        appendToStream: (async (...args: Parameters<EventStoreDbClient['appendToStream']>) => {
          const result = await client.appendToStream(...args);
          return { ...result, nextExpectedRevision: result.nextExpectedRevision + 5n };
        }) as EventStoreDbClient['appendToStream'],
      };
      const store = open({}, shifted);
      await store.append(streamId(), newEvents(2), 'no-stream');
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringMatching(/stored up to revision 6, chained up to 1/),
      );
    });

    it('an append of no events only checks the expected revision', async () => {
      const store = open();
      const id = streamId();
      expect(await store.append(id, [], 'no-stream')).toEqual({ nextExpectedRevision: -1n, position: 0n });
      await store.append(id, newEvents(2), 'no-stream');
      expect(await store.append(id, [], 1n)).toEqual({ nextExpectedRevision: 1n, position: 0n });
      expect(await store.append(id, [], 'any')).toEqual({ nextExpectedRevision: 1n, position: 0n });
      await expect(store.append(id, [], 0n)).rejects.toMatchObject({ expected: 0n, actual: 1n });
      await expect(store.append(id, [], 'no-stream')).rejects.toBeInstanceOf(ConcurrencyError);
    });

    it('refuses event ids that are no UUID before writing anything', async () => {
      const store = open();
      const id = streamId();
      await expect(store.append(id, [{ ...newEvent(), eventId: 'evt-1' }], 'no-stream')).rejects.toThrow(
        /must be a UUID/,
      );
      expect(server.calls.append).toBe(0);
    });
  });

  describe('reads', () => {
    it('readAll and headPosition see only our categories: no system events, links or counter streams', async () => {
      const store = open({ pageSize: 2 });
      expect(await store.headPosition()).toBe(0n);
      server.writeRaw('$stats-127.0.0.1:2113', '$statsCollected');
      server.writeRaw('other-app-1', 'Foreign');
      expect(await store.headPosition()).toBe(0n);
      expect(await store.readAll({ limit: 10 })).toEqual([]);

      const id = streamId();
      await store.append(id, newEvents(2), 'no-stream');
      await store.appendWithSequence({
        sequence: 'change-request',
        build: (n) => ({ streamId: `changeRequest-CHG-${n}`, events: [newEvent()] }),
      });
      server.writeRaw(id, '$streamDeleted');
      server.writeRaw('other-app-1', 'Foreign');

      const all = await store.readAll({ limit: 100 });
      expect(
        all.map((e) => `${e.streamId.startsWith('changeRequest-T') ? 'T' : e.streamId}@${e.revision}`),
      ).toEqual(['T@0', 'T@1', 'changeRequest-CHG-1@0']);
      expect(await store.headPosition()).toBe(all[2].position);
      expect(
        server.log.some(
          (e) => e.streamId === 'sequence-change-request' && e.type === SEQUENCE_NUMBER_ALLOCATED,
        ),
      ).toBe(true);
      expect(server.log.filter((e) => e.streamId.startsWith('$ce-')).length).toBeGreaterThan(0);

      // after is exclusive; pages of two events still find the next one past the noise
      expect(await store.readAll({ after: all[0].position, limit: 1 })).toEqual([all[1]]);
      expect(await store.readAll({ after: all[2].position, limit: 5 })).toEqual([]);
      expect(await store.readAll({ after: 0n, limit: 2 })).toEqual(all.slice(0, 2));
      expect(await store.readAll({ limit: 0 })).toEqual([]);
    });

    it('answers an empty list for a missing stream, and retries a transient read failure', async () => {
      const store = open();
      expect(await store.readStream(streamId())).toEqual([]);
      const id = streamId();
      await store.append(id, newEvents(3), 'no-stream');
      server.failNext('readStream', () => new UnavailableError());
      expect(revisions(await store.readStream(id, { fromRevision: 1n }))).toEqual([1n, 2n]);
      expect(logger.warn).toHaveBeenCalledTimes(1);
    });

    it('warns once when the server reports no positions on stream reads (before 22.6)', async () => {
      newServer({ streamReadPositions: false });
      const store = open();
      const id = streamId();
      const result = await store.append(id, newEvents(2), 'no-stream');
      const read = await store.readStream(id);
      expect(read.map((e) => e.position)).toEqual([0n, 0n]);
      expect((await store.readAll({ limit: 10 })).map((e) => e.position).at(-1)).toBe(result.position);
      await store.readStream(id);
      expect(logger.warn).toHaveBeenCalledTimes(1);
      expect(logger.warn.mock.calls[0][0]).toMatch(/no \$all position on stream reads/);
    });

    it('finds the position of an idempotent repeat the server answered without one', async () => {
      newServer({ idempotentPositions: false });
      const store = open();
      const id = streamId();
      const batch = newEvents(2);
      const first = await store.append(id, batch, 'no-stream');
      await store.append(id, newEvents(1), 1n);
      const reads = server.streamReadsFromAnyNode;
      expect(await store.append(id, batch, 'no-stream')).toEqual(first);
      // looked up on the leader, where the first append happened (a follower may lag)
      expect(server.streamReadsFromAnyNode).toBe(reads);
    });
  });

  it('a read under way when the store closes fails as unavailable, not with the part read so far', async () => {
    const store = open();
    const id = streamId();
    await store.append(id, newEvents(50), 'no-stream');
    const [stream, all] = [store.readStream(id), store.readAll({ after: 0n, limit: 100 })];
    await store.close();
    await expect(stream).rejects.toBeInstanceOf(EventStoreUnavailableError);
    await expect(all).rejects.toBeInstanceOf(EventStoreUnavailableError);
  });

  describe('verify (hash chains)', () => {
    it('names a stream whose events a delete or truncation hides from its reads, which $all still holds', async () => {
      const store = open();
      const [kept, deleted, truncated] = [streamId(), streamId(), streamId()];
      for (const stream of [kept, deleted, truncated]) await store.append(stream, newEvents(2), 'no-stream');
      expect(await verifyHashChains(store)).toMatchObject({ valid: true, checkedEvents: 6 });
      // metadata that hides nothing (an operator's access rule) is no finding
      server.writeRaw(`$$${kept}`, '$metadata', { $acl: { $r: ['ops'] } });
      expect((await verifyHashChains(store)).valid).toBe(true);

      server.writeRaw(`$$${truncated}`, '$metadata', { $tb: 1 });
      expect(await verifyHashChains(store)).toMatchObject({
        valid: false,
        checkedEvents: 6, // every chain whole in $all
        firstInvalid: { streamId: truncated, reason: expect.stringContaining('{"$tb":1}') },
      });
      const fresh = new InMemoryEventStoreDbClient();
      const other = open({}, fresh.connection());
      await other.append(deleted, newEvents(2), 'no-stream');
      fresh.softDelete(deleted);
      expect(await other.readStream(deleted)).toEqual([]);
      expect(await verifyHashChains(other)).toMatchObject({
        valid: false,
        firstInvalid: { streamId: deleted, reason: expect.stringMatching(/hides events from its reads/) },
      });
    });
  });

  describe('appendWithSequence', () => {
    const spec = (sequence: string, prefix: string, events = 1): SequencedStream => ({
      sequence,
      build: (n) => ({
        streamId: `${prefix}${n}`,
        events: Array.from({ length: events }, () => newEvent('Raised', { n })),
      }),
    });

    it('keeps one chained allocation event per number in sequence-<name>', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await store.appendWithSequence(spec('cr', prefix, 2)));
      expect(results.map((r) => [r.number, r.streamId, r.nextExpectedRevision])).toEqual([
        [1, `${prefix}1`, 1n],
        [2, `${prefix}2`, 1n],
        [3, `${prefix}3`, 1n],
      ]);
      const counter = await store.readStream('sequence-cr');
      expect(counter.map((e) => [e.type, e.data])).toEqual(
        [1, 2, 3].map((n) => [SEQUENCE_NUMBER_ALLOCATED, { number: n, streamId: `${prefix}${n}` }]),
      );
      expectValidChain(counter);
      expect(counter[0].metadata.actor).toEqual(newEvent().metadata.actor);
    });

    it('refuses, taking no number, when a stream the decision read has moved on', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      const template = `standardTemplate-T${randomUUID()}`;
      await store.append(template, [newEvent('Created')], 'no-stream');
      const guarded = (revision: bigint): SequencedStream => ({
        ...spec('guarded', prefix),
        unchanged: [{ streamId: template, revision }],
      });
      expect((await store.appendWithSequence(guarded(0n))).number).toBe(1);
      await store.append(template, [newEvent('Retired')], 0n);
      await expect(store.appendWithSequence(guarded(0n))).rejects.toMatchObject({
        streamId: template,
        expected: 0n,
        actual: 1n,
      });
      expect((await store.readStream('sequence-guarded')).map((e) => e.data.number)).toEqual([1]);
      expect((await store.appendWithSequence(guarded(1n))).number).toBe(2);
    });

    /**
     * A connection whose appends to `stream` wait for `gate` and then do what it answers;
     * `reached` resolves when the first such append arrives (its number is allocated by then).
     */
    const heldAt = (stream: string, gate: Promise<'write' | Error>) => {
      const client = server.connection();
      let arrived: () => void = () => undefined;
      const reached = new Promise<void>((resolve) => (arrived = resolve));
      const held: EventStoreDbClient = {
        ...client,
        appendToStream: (async (target: string, events: never, options: never) => {
          if (target === stream) {
            arrived();
            const verdict = await gate;
            if (verdict instanceof Error) throw verdict;
          }
          return client.appendToStream(target, events, options);
        }) as EventStoreDbClient['appendToStream'],
      };
      return { client: held, reached };
    };
    const counterOf = async (store: EventStoreDbEventStore, sequence: string) =>
      (await store.readStream(`sequence-${sequence}`)).map((e) => [e.type, e.data.number]);

    it('skips a number whose stream exists already (written outside the sequence)', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.appendWithSequence(spec('squat', prefix));
      await store.append(`${prefix}2`, [newEvent('Squatter')], 'no-stream');
      expect(await store.appendWithSequence(spec('squat', prefix))).toMatchObject({
        number: 3,
        streamId: `${prefix}3`,
      });
      expect(await counterOf(store, 'squat')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 2],
        [SEQUENCE_NUMBER_ALLOCATED, 3],
      ]);
      expect((await store.readStream(`${prefix}2`)).map((e) => e.type)).toEqual(['Squatter']);
      expectValidChain(await store.readStream('sequence-squat'));
      expect(logger.error).not.toHaveBeenCalled();
    });

    it('skips a number whose stream an operator hard-deleted (tombstoned), instead of failing for ever', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.appendWithSequence(spec('tomb', prefix));
      server.tombstone(`${prefix}2`);
      expect(await store.appendWithSequence(spec('tomb', prefix))).toMatchObject({
        number: 3,
        streamId: `${prefix}3`,
      });
      expect(await store.appendWithSequence(spec('tomb', prefix))).toMatchObject({ number: 4 });
      expect(await counterOf(store, 'tomb')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 2],
        [SEQUENCE_NUMBER_ALLOCATED, 3],
        [SEQUENCE_NUMBER_ALLOCATED, 4],
      ]);
      expectValidChain(await store.readStream('sequence-tomb'));
      expect(logger.error).toHaveBeenCalledWith(expect.stringContaining(`${prefix}2 was deleted`));
    });

    it('skips a deleted number that was the last one allocated, on the next call too', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.appendWithSequence(spec('tomb-last', prefix));
      server.tombstone(`${prefix}1`); // not a number allocated but never written: never taken again
      expect(await store.appendWithSequence(spec('tomb-last', prefix))).toMatchObject({ number: 2 });
      expect(await store.appendWithSequence(spec('tomb-last', prefix))).toMatchObject({ number: 3 });
      expect(await counterOf(store, 'tomb-last')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 2],
        [SEQUENCE_NUMBER_ALLOCATED, 3],
      ]);
      expect(sleeps).toEqual([]); // no backoff: nothing was tried twice
    });

    it('does not take again the number of the newest stream after an operator soft-deleted it', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.appendWithSequence(spec('soft-newest', prefix));
      await store.appendWithSequence(spec('soft-newest', prefix));
      // reads of it now answer StreamNotFound, yet the server takes a 'no-stream' append to it
      server.softDelete(`${prefix}2`);
      expect(await store.appendWithSequence(spec('soft-newest', prefix))).toMatchObject({
        number: 3,
        streamId: `${prefix}3`,
        nextExpectedRevision: 0n,
      });
      expect(await store.readStream(`${prefix}2`)).toEqual([]); // nothing written into it
      expect(await counterOf(store, 'soft-newest')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 2],
        [SEQUENCE_NUMBER_ALLOCATED, 3],
      ]);
    });

    it('skips, without writing into it, a number whose stream was written outside the sequence and soft-deleted', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.appendWithSequence(spec('soft-import', prefix));
      await store.append(`${prefix}2`, [newEvent('Imported')], 'no-stream');
      server.softDelete(`${prefix}2`);
      expect(await store.appendWithSequence(spec('soft-import', prefix))).toMatchObject({
        number: 3,
        nextExpectedRevision: 0n,
      });
      expect(await store.readStream(`${prefix}2`)).toEqual([]);
    });

    it('a stream soft-deleted between the check and the append: the creation is answered with that number, never written twice', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      await open().appendWithSequence(spec('soft-race', prefix));
      await open().append(`${prefix}2`, [newEvent('Imported')], 'no-stream');
      const client = server.connection();
      let deleted = false;
      const racing: EventStoreDbClient = {
        ...client,
        appendToStream: (async (stream: string, events: never, options: never) => {
          if (stream === `${prefix}2` && !deleted) {
            deleted = true;
            server.softDelete(stream);
          }
          return client.appendToStream(stream, events, options);
        }) as EventStoreDbClient['appendToStream'],
      };
      const store = open({}, racing);
      // the server stored number 2's events in the deleted stream, after the imported one: that
      // is the creation's only copy (taking number 3 as well would create the change twice)
      const created = await store.appendWithSequence(spec('soft-race', prefix));
      expect(created).toMatchObject({ number: 2, streamId: `${prefix}2`, nextExpectedRevision: 1n });
      expect(await store.readStream(`${prefix}3`)).toEqual([]);
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringMatching(/2 was soft-deleted while number 2 was being created: .*at revision 1/),
      );
      expect((await store.appendWithSequence(spec('soft-race', prefix))).number).toBe(3);
    });

    it('creates on a server whose ACL denies this user stream metadata ($mr), warning once', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      const client = server.connection();
      const denying: EventStoreDbClient = {
        ...client,
        readStream: ((stream: string, options: never) => {
          if (stream.startsWith('$$')) throw new AccessDeniedError(undefined, `read of ${stream} denied`);
          return client.readStream(stream, options);
        }) as EventStoreDbClient['readStream'],
      };
      const store = open({}, denying);
      expect((await store.appendWithSequence(spec('no-mr', prefix))).number).toBe(1);
      expect((await store.appendWithSequence(spec('no-mr', prefix))).number).toBe(2);
      expect(logger.warn).toHaveBeenCalledTimes(1);
      expect(logger.warn).toHaveBeenCalledWith(expect.stringMatching(/may not read stream metadata/));
    });

    it('recovering a soft-deleted counter, a build that names one stream for every number is refused, not probed for ever', async () => {
      const store = open();
      const stream = `changeRequest-T${randomUUID()}-only`;
      const one: SequencedStream = {
        sequence: 'one-stream',
        build: () => ({ streamId: stream, events: [newEvent('Raised')] }),
      };
      await store.appendWithSequence(one);
      server.softDelete('sequence-one-stream');
      await expect(store.appendWithSequence(one)).rejects.toThrow(/name the same stream/);
    });

    it('does not restart numbering after an operator soft-deleted the counter stream', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      // fewer attempts than numbers in use: walking past them one by one would give up
      const store = open({ sequenceAttempts: 3 });
      for (let n = 1; n <= 5; n++) await store.appendWithSequence(spec('soft-counter', prefix));
      server.softDelete(`${prefix}1`); // reads as absent, but its number was used
      server.softDelete('sequence-soft-counter');
      expect(await store.readStream('sequence-soft-counter')).toEqual([]);
      expect(await store.appendWithSequence(spec('soft-counter', prefix))).toMatchObject({
        number: 6,
        streamId: `${prefix}6`,
      });
      expect((await store.appendWithSequence(spec('soft-counter', prefix))).number).toBe(7);
      expect(await counterOf(store, 'soft-counter')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 6],
        [SEQUENCE_NUMBER_ALLOCATED, 7],
      ]);
      expect(await store.readStream(`${prefix}1`)).toEqual([]);
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringMatching(/sequence-soft-counter reads as absent but has metadata .* after 5/),
      );
    });

    it('does not take again a number whose stream exists but reads as absent (truncated, or not readable)', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      const store = open();
      await store.appendWithSequence(spec('hidden', prefix));
      // number 2's stream exists, but reads of it answer nothing (as after $maxCount, or an ACL)
      await store.append(`${prefix}2`, [newEvent('Squatter')], 'no-stream');
      const client = server.connection();
      const blind = open(
        {},
        {
          ...client,
          readStream: ((stream: string, options: never) =>
            stream === `${prefix}2`
              ? Readable.from([])
              : client.readStream(stream, options)) as EventStoreDbClient['readStream'],
        },
      );
      expect((await blind.appendWithSequence(spec('hidden', prefix))).number).toBe(3);
      expect((await blind.appendWithSequence(spec('hidden', prefix))).number).toBe(4);
    });

    it('hands a number back when its stream is refused, and the next allocation takes it', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      const refused = open(
        {},
        heldAt(`${prefix}1`, Promise.resolve(new AccessDeniedError(undefined, 'no'))).client,
      );
      await expect(refused.appendWithSequence(spec('refused-once', prefix))).rejects.toBeInstanceOf(
        AccessDeniedError,
      );
      const store = open();
      expect(await counterOf(store, 'refused-once')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_RELEASED, 1],
      ]);
      expect((await store.appendWithSequence(spec('refused-once', prefix))).number).toBe(1);
      expectValidChain(await store.readStream('sequence-refused-once'));
      expect(logger.error).not.toHaveBeenCalled();
    });

    it('takes a number again when its allocator never wrote the stream (it crashed): no gap', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      const crash = heldAt(`${prefix}1`, new Promise(() => undefined)); // never answers
      // (its append gives up after appendTimeoutMs, long after this test: nobody hears of it)
      open({}, crash.client)
        .appendWithSequence(spec('crash', prefix))
        .catch(() => undefined);
      await crash.reached;
      const store = open();
      expect(await store.appendWithSequence(spec('crash', prefix))).toMatchObject({
        number: 1,
        streamId: `${prefix}1`,
      });
      expect((await store.appendWithSequence(spec('crash', prefix))).number).toBe(2);
      expect(await counterOf(store, 'crash')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 2],
      ]);
      expectValidChain(await store.readStream('sequence-crash'));
    });

    it('a slow allocator whose number was taken again moves on to the next number', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      let letThrough: (verdict: 'write' | Error) => void = () => undefined;
      const slow = heldAt(`${prefix}1`, new Promise((resolve) => (letThrough = resolve)));
      const slowResult = open({}, slow.client).appendWithSequence(spec('slow', prefix));
      await slow.reached;
      const store = open();
      expect((await store.appendWithSequence(spec('slow', prefix))).number).toBe(1);
      letThrough('write'); // its 'no-stream' append of the same stream now fails
      expect(await slowResult).toMatchObject({ number: 2, streamId: `${prefix}2` });
      expect((await store.readStream(`${prefix}1`)).map((e) => e.data.n)).toEqual([1]);
      expect(await counterOf(store, 'slow')).toEqual([
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 1],
        [SEQUENCE_NUMBER_ALLOCATED, 2],
      ]);
      expectValidChain(await store.readStream('sequence-slow'));
      expect(logger.error).not.toHaveBeenCalled();
    });

    it("does not call a number lost when a refused stream's number was taken again meanwhile", async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      let answer: (verdict: 'write' | Error) => void = () => undefined;
      const refused = heldAt(`${prefix}1`, new Promise((resolve) => (answer = resolve)));
      const refusedResult = open({}, refused.client).appendWithSequence(spec('meanwhile', prefix));
      await refused.reached;
      const store = open();
      expect((await store.appendWithSequence(spec('meanwhile', prefix))).number).toBe(1);
      answer(new AccessDeniedError(undefined, 'no write access'));
      await expect(refusedResult).rejects.toBeInstanceOf(AccessDeniedError);
      expect(logger.error).not.toHaveBeenCalled();
      expect((await store.appendWithSequence(spec('meanwhile', prefix))).number).toBe(2);
    });

    it('numbers are unique and gap-free across processes racing for the counter', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      const processes = [open(), open(), open()];
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => processes[i % 3].appendWithSequence(spec('race', prefix))),
      );
      expect(results.map((r) => r.number).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      for (const r of results) expect(revisions(await processes[0].readStream(r.streamId))).toEqual([0n]);
      expect(sleeps.length).toBeGreaterThan(0); // conflicts on the counter were retried
    });

    it('builds nothing and writes nothing when build() throws', async () => {
      const store = open();
      await expect(
        store.appendWithSequence({
          sequence: 'refused',
          build: () => {
            throw new Error('refused by the domain');
          },
        }),
      ).rejects.toThrow('refused by the domain');
      expect(await store.readStream('sequence-refused')).toEqual([]);
    });

    it('says so when a number is lost: its stream failed and another process took the next number', async () => {
      const prefix = `changeRequest-T${randomUUID()}-`;
      const other = open();
      const client = server.connection();
      const failing: EventStoreDbClient = {
        ...client,
        appendToStream: (async (stream: string, events: never, options: never) => {
          if (stream === `${prefix}1`) {
            await other.appendWithSequence(spec('lost', `changeRequest-T${randomUUID()}-`));
            throw new AccessDeniedError(undefined, 'no write access');
          }
          return client.appendToStream(stream, events, options);
        }) as EventStoreDbClient['appendToStream'],
      };
      const store = open({}, failing);
      await expect(store.appendWithSequence(spec('lost', prefix))).rejects.toBeInstanceOf(AccessDeniedError);
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringMatching(/sequence lost: number 1 is lost \(a gap\)/),
      );
      expect((await store.appendWithSequence(spec('lost', prefix))).number).toBe(3);
    });

    it('does not hand a number back when it cannot know whether the stream was written', async () => {
      const store = open({ retry: { maxAttempts: 2 } });
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.appendWithSequence(spec('unknown', prefix));
      const client = server.connection();
      const flaky = open(
        { retry: { maxAttempts: 2 } },
        {
          ...client,
          appendToStream: (async (stream: string, events: never, options: never) => {
            if (stream === `${prefix}2`) throw new UnavailableError(undefined, 'timed out');
            return client.appendToStream(stream, events, options);
          }) as EventStoreDbClient['appendToStream'],
        },
      );
      const unknown = flaky.appendWithSequence(spec('unknown', prefix));
      await expect(unknown).rejects.toBeInstanceOf(AppendOutcomeUnknownError);
      await expect(unknown).rejects.toBeInstanceOf(EventStoreUnavailableError); // a 503 to clients
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringMatching(
          /number 2 was allocated, but whether .*2 was written is unknown .*; if it was not, the next allocation takes the number again/,
        ),
      );
      expect((await store.readStream('sequence-unknown')).map((e) => e.type)).toEqual([
        SEQUENCE_NUMBER_ALLOCATED,
        SEQUENCE_NUMBER_ALLOCATED,
      ]);
      // It was not written: the next allocation takes 2 again.
      expect((await store.appendWithSequence(spec('unknown', prefix))).number).toBe(2);
    });
  });

  it('reads what an append chains onto from the leader only (requiresLeader)', async () => {
    const store = open();
    const stream = streamId();
    await store.append(stream, newEvents(2), 'no-stream');
    await store.append(stream, newEvents(1), 1n);
    await store.append(stream, newEvents(1), 'any');
    await store.appendWithSequence({
      sequence: 'changeRequest',
      build: (n) => ({ streamId: `changeRequest-L${n}-${randomUUID()}`, events: newEvents(1) }),
    });
    expect(server.calls.readStream).toBeGreaterThan(0);
    expect(server.streamReadsFromAnyNode).toBe(0);
    expectValidChain(await store.readStream(stream));
  });

  it('cancels a read the server does not answer within readTimeoutMs and retries it like a dropped connection', async () => {
    // 300 ms: far longer than an answered read takes, however loaded the machine
    const store = open({ readTimeoutMs: 300, retry: { maxAttempts: 2 } });
    const stream = streamId();
    await store.append(stream, newEvents(2), 'no-stream');
    server.stallNextReads(1);
    expect(revisions(await store.readStream(stream))).toEqual([0n, 1n]);
    expect(server.cancelledReads).toBe(1);
    server.stallNextReads(2);
    await expect(store.readAll({ limit: 10 })).rejects.toThrow(EventStoreUnavailableError);
    expect(server.cancelledReads).toBe(3);
    // an append reads the stream's last event first: it no longer waits for ever either
    server.stallNextReads(2);
    await expect(store.append(stream, newEvents(1), 1n)).rejects.toThrow(EventStoreUnavailableError);
    expect(revisions(await store.readStream(stream))).toEqual([0n, 1n]);
  });

  it('sends an append again when it goes unanswered for appendTimeoutMs: stored once, answered as the first; unanswered every time, 503', async () => {
    const store = open({ appendTimeoutMs: 300, retry: { maxAttempts: 3 } });
    const stream = streamId();
    await store.append(stream, newEvents(1), 'no-stream');
    // stored, then its answer lost: the repeat (same ids, same expected revision) is answered
    // as the first was, and the stream holds one copy
    server.stallNextAppends(1, { afterWrite: true });
    const sent = newEvents(2);
    const first = await store.append(stream, sent, 0n);
    expect(first.nextExpectedRevision).toBe(2n);
    expect((await store.readStream(stream)).map((e) => e.eventId)).toEqual([
      expect.any(String),
      ...sent.map((e) => e.eventId),
    ]);
    // never answered: given up after the attempts, as an unreachable server is (nothing stored)
    server.stallNextAppends(3);
    const calls = server.calls.append;
    await expect(store.append(stream, newEvents(1), 2n)).rejects.toThrow(EventStoreUnavailableError);
    expect(server.calls.append - calls).toBe(3);
    expect(revisions(await store.readStream(stream))).toEqual([0n, 1n, 2n]);
  });

  it('a refusal that is no refusal of the position (access denied) is not taken for one: no read of the log from its start', async () => {
    const store = open();
    const stream = streamId();
    await store.append(stream, newEvents(2), 'no-stream');
    const [first] = (await store.readAll({ limit: 10_000 })).filter((e) => e.streamId === stream);
    server.failNext('readAll', () => new AccessDeniedError(undefined, 'no read access to $all'));
    const reads = server.calls.readAll;
    await expect(store.readAll({ after: first.position, limit: 10 })).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    expect(server.calls.readAll - reads).toBe(1); // not again from the start
    expect(logger.warn).not.toHaveBeenCalledWith(expect.stringMatching(/reading from the start of the log/));
  });

  it('readAll after a position where no event begins reads on from the next event (the server refuses such a start)', async () => {
    const store = open();
    const stream = streamId();
    await store.append(stream, newEvents(3), 'no-stream');
    const mine = (await store.readAll({ limit: 10_000 })).filter((e) => e.streamId === stream);
    const between = mine[0].position + 1n; // inside the first event's record
    const after = (await store.readAll({ after: between, limit: 10_000 })).filter(
      (e) => e.streamId === stream,
    );
    expect(revisions(after)).toEqual([1n, 2n]);
    expect(logger.warn).toHaveBeenCalledWith(
      expect.stringMatching(
        /refused to read \$all from position \d+ .*reading from the start of the log instead/,
      ),
    );
    // a position where an event begins is read from directly
    logger.warn.mockClear();
    expect(
      revisions(
        (await store.readAll({ after: mine[0].position, limit: 10_000 })).filter(
          (e) => e.streamId === stream,
        ),
      ),
    ).toEqual([1n, 2n]);
    expect(logger.warn).not.toHaveBeenCalled();
  });

  describe('subscribeToAll', () => {
    it('counts drops anew once the server confirms a subscription: more drops than maxAttempts on a quiet log do not end it', async () => {
      const store = open({ subscriptionRetry: { maxAttempts: 2 } });
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.append(`${prefix}a`, newEvents(1), 'no-stream');
      const subscription = store.subscribeToAll({ streamPrefixes: [prefix] });
      const received = await take(subscription, 1);
      const second = take(subscription, 2, received); // waiting on a quiet log
      for (let drop = 1; drop <= 3; drop++) {
        // each time: subscribed again and confirmed, then dropped, with no event in between
        await waitUntil(() => server.subscriptionCount === 1, 'a confirmed subscription');
        await new Promise((resolve) => setImmediate(resolve));
        server.dropSubscriptions(new UnavailableError(undefined, 'connection lost'));
      }
      await waitUntil(() => server.subscriptionCount === 1, 'the fourth subscription');
      await store.append(`${prefix}a`, newEvents(1), 0n);
      await second;
      expect(revisions(received)).toEqual([0n, 1n]);
      expect(server.calls.subscribe).toBe(4);
      await subscription.close();
    });

    it('after a position where no event begins, subscribes from the start and delivers what follows it (as readAll does)', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.append(`${prefix}a`, newEvents(3), 'no-stream');
      const [first] = (await store.readAll({ limit: 10_000 })).filter((e) => e.streamId === `${prefix}a`);
      const subscription = store.subscribeToAll({ streamPrefixes: [prefix], after: first.position + 1n });
      const received = await take(subscription, 2);
      expect(revisions(received)).toEqual([1n, 2n]);
      expect(logger.warn).toHaveBeenCalledWith(
        expect.stringMatching(
          /refused to subscribe to \$all after position \d+ .*from the start of the log instead/,
        ),
      );
      // live events still arrive, and a drop resubscribes from the last event, not the start
      server.dropSubscriptions(new UnavailableError(undefined, 'connection lost'));
      await store.append(`${prefix}a`, newEvents(1), 2n);
      await take(subscription, 3, received);
      expect(revisions(received)).toEqual([1n, 2n, 3n]);
      expect(logger.error).not.toHaveBeenCalled();
      await subscription.close();
    });

    it('resumes after a dropped connection from the last position, without losing or repeating events', async () => {
      const store = open();
      const prefix = `changeRequest-T${randomUUID()}-`;
      await store.append(`${prefix}a`, newEvents(3), 'no-stream');
      const subscription = store.subscribeToAll({ streamPrefixes: [prefix] });
      const received = await take(subscription, 2);
      server.dropSubscriptions(new UnavailableError(undefined, 'connection lost'));
      await store.append(`${prefix}a`, newEvents(2), 2n);
      await take(subscription, 5, received);
      expect(revisions(received)).toEqual([0n, 1n, 2n, 3n, 4n]);
      expect(server.calls.subscribe).toBe(2);
      expect(logger.warn).toHaveBeenCalledWith(
        expect.stringMatching(/subscription to \$all .* dropped .*; resubscribing after position \d+/),
      );
      await subscription.close();
    });

    it('ends the loop with the error when the failure is permanent', async () => {
      const store = open();
      const id = streamId();
      await store.append(id, newEvents(1), 'no-stream');
      const subscription = store.subscribeToAll({ streamPrefixes: [id] });
      const received: RecordedEvent[] = [];
      const loop = (async () => {
        for await (const event of subscription) {
          received.push(event);
          server.dropSubscriptions(new AccessDeniedError(undefined, 'read access revoked'));
        }
      })();
      await expect(loop).rejects.toBeInstanceOf(AccessDeniedError);
      expect(received).toHaveLength(1);
      expect(server.subscriptionCount).toBe(0);
    });

    it('close() ends a waiting loop; closing the store closes its subscriptions', async () => {
      const store = open();
      const one = store.subscribeToAll();
      const two = store.subscribeToAll({ streamPrefixes: [] });
      const loops = [one, two].map(async (s) => {
        const got: RecordedEvent[] = [];
        for await (const event of s) got.push(event);
        return got;
      });
      await waitUntil(() => server.subscriptionCount === 1, 'the server-side subscription');
      await one.close();
      expect(await loops[0]).toEqual([]);
      await store.close();
      expect(await loops[1]).toEqual([]);
      expect(server.subscriptionCount).toBe(0);
      await expect(store.readStream(streamId())).rejects.toThrow('the event store is closed');
      expect(() => store.subscribeToAll()).toThrow('the event store is closed');
    });
  });

  describe('connecting', () => {
    it('connect() names the unreachable server without its credentials', async () => {
      const error = await EventStoreDbEventStore.connect('esdb://admin:s3cret-pw@127.0.0.1:1?tls=false', {
        logger,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailableError);
      expect((error as Error).message).toMatch(
        /^cannot reach EventStoreDB at esdb:\/\/127\.0\.0\.1:1\?tls=false: /,
      );
      expect((error as Error).message).toMatch(/: Error \[unavailable\]: 14 UNAVAILABLE: .*ECONNREFUSED/);
      expect((error as Error).message).not.toContain('s3cret');
    });

    it('refuses a malformed connection string without echoing its credentials', () => {
      expect(() => new EventStoreDbEventStore('esdb://admin:s3cret-pw@localhost:2113?tls=maybe')).toThrow(
        /^invalid EventStoreDB connection string esdb:\/\/localhost:2113\?tls=maybe: .*true or false/,
      );
      expect(() => new EventStoreDbEventStore('esdb://admin:s3cret-pw@localhost:2113?tls=maybe')).not.toThrow(
        /s3cret/,
      );
      expect(() => new EventStoreDbEventStore('http://localhost:2113')).toThrow(/esdb:\/\//);
      // the @ after the credentials forgotten: the client sees no credentials, and its message
      // (and the string) would show the password, whatever it holds (?, =, &, a comma)
      for (const forgotten of [
        'esdb://admin:s3cret-pw:localhost:2113?tls=false',
        'esdb://admin:s3cret-pw:localhost:2113?tls=false&tlsVerifyCert=false',
        'esdb://admin:s3c?ret:localhost:2113',
        'esdb://admin:s3c=ret:localhost:2113?tls=false&tlsVerifyCert=false',
        'esdb://admin:s3c&ret:localhost:2113?tlsVerifyCert=false',
        'esdb://admin:s3c,ret:localhost:2113?tls=false&nodePrefrence=leader',
      ]) {
        expect(() => new EventStoreDbEventStore(forgotten)).toThrow(
          /^invalid EventStoreDB connection string esdb:\/\/…[ :]/,
        );
        expect(() => new EventStoreDbEventStore(forgotten)).not.toThrow(/s3c/);
      }
      expect(() => new EventStoreDbEventStore('esdb://admin:s3cret-pw:localhost:2113?tls=false')).toThrow(
        /not shown: it may hold credentials\): the client cannot read it from character 23 \(expected , or \?key=value\)$/,
      );
      // a seed list and IPv6 addresses are shown as they are
      expect(
        () => new EventStoreDbEventStore('esdb://h1:2113,[::1]:2113?tls=false&nodePrefrence=leader'),
      ).toThrow(
        /^invalid EventStoreDB connection string esdb:\/\/h1:2113,\[::1\]:2113\?tls=false&nodePrefrence=leader: /,
      );
    });

    it('refuses the options for which the client would print the whole string, credentials included', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        const unsupported = 'esdb://admin:s3cret@localhost:2113?tls=false&tlsVerifyCert=false';
        const misspelt = 'esdb://admin:s3cret@localhost:2113?tls=false&nodePrefrence=leader';
        const errors = [
          (() => {
            try {
              new EventStoreDbEventStore(unsupported);
            } catch (error) {
              return error;
            }
          })(),
          await EventStoreDbEventStore.connect(unsupported, { logger }).catch((e: unknown) => e),
          await EventStoreDbEventStore.connect(misspelt, { logger }).catch((e: unknown) => e),
        ] as Error[];
        expect(errors.map((e) => [e?.constructor, e?.message])).toEqual([
          [
            TypeError,
            'invalid EventStoreDB connection string esdb://localhost:2113?tls=false&tlsVerifyCert=false: ' +
              'tlsVerifyCert=false is not supported by the client (it would be ignored); ' +
              "trust the server's certificate with tlsCAFile or NODE_EXTRA_CA_CERTS instead",
          ],
          [TypeError, errors[0]?.message],
          [
            TypeError,
            expect.stringMatching(
              /^invalid EventStoreDB connection string esdb:\/\/localhost:2113\?tls=false&nodePrefrence=leader: unknown option "nodePrefrence" \(the client would ignore it\); known: .*nodePreference/,
            ),
          ],
        ]);
        const printed = warn.mock.calls.flat().map(String);
        expect(printed.filter((line) => line.includes('s3cret'))).toEqual([]);
        // spelt as the client accepts them (any case, - and _ ignored): no refusal, no warning
        await new EventStoreDbEventStore(
          'esdb://admin:s3cret@localhost:2113?TLS=false&node-preference=leader&tls_verify_cert=true',
        ).close();
        expect(warn).not.toHaveBeenCalled();
      } finally {
        warn.mockRestore();
      }
    });

    it('ping() reports a server that does not answer in time', async () => {
      const client = server.connection();
      const never = () =>
        Object.assign(new Readable({ objectMode: true, read: () => undefined }), {
          cancel: async () => undefined,
        });
      const silent: EventStoreDbClient = { ...client, readAll: never as never };
      const store = open({ pingTimeoutMs: 20 }, silent);
      await expect(store.ping()).rejects.toThrow(/did not answer within 20 ms/);
      // connect() pings through the real client: nothing listens on port 9
      const refused = await EventStoreDbEventStore.connect('esdb://127.0.0.1:9?tls=false', {
        pingTimeoutMs: 500,
        logger,
      }).catch((error: unknown) => error as Error);
      expect(refused).toBeInstanceOf(EventStoreUnavailableError);
      expect(refused).toMatchObject({
        message: expect.stringMatching(
          /^cannot reach EventStoreDB at esdb:\/\/127\.0\.0\.1:9\?tls=false: \S/,
        ),
        cause: expect.anything(),
      });
    });
  });
});
