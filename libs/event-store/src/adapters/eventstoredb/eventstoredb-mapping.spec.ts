// the client's own parser (its package index does not export it)
import { parseConnectionString } from '@eventstore/db-client/dist/Client/parseConnectionString';
import {
  AccessDeniedError,
  ANY,
  CancelledError,
  convertToCommandError,
  DeadlineExceededError,
  InvalidArgumentError,
  MaxAppendSizeExceededError,
  NO_STREAM,
  NotLeaderError,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  TimeoutError,
  UnavailableError,
  UnknownError,
  WrongExpectedVersionError,
  type AllStreamResolvedEvent,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { ConcurrencyError, StoredEventCorruptError } from '../../event-store.errors';
import type { EventMetadata, NewEvent } from '../../event-store.port';
import {
  backoffDelay,
  chainHashOf,
  comparePositions,
  connectionStringProblem,
  counterStateOf,
  DEFAULT_CATEGORIES,
  describeError,
  fromClientExpectedRevision,
  isDefiniteRejection,
  isStreamDeleted,
  isStreamNotFound,
  isTransientError,
  isVisibleEvent,
  isWrongExpectedVersion,
  positionOf,
  readStartAfter,
  redactConnectionString,
  SEQUENCE_NUMBER_ALLOCATED,
  SEQUENCE_NUMBER_RELEASED,
  sequenceStreamId,
  streamPrefixFilter,
  toActualRevision,
  toClientExpectedRevision,
  toConcurrencyError,
  toEventData,
  toPortPosition,
  toRecordedEvent,
  toStorePosition,
  UNKNOWN_POSITION,
} from './eventstoredb-mapping';

/** What the client's errors read from gRPC trailers: only `metadata.getMap()` is used. */
const serviceError = (trailers: Record<string, string>, code = 9) =>
  ({
    code,
    details: 'from the server',
    message: `${code} FAILED_PRECONDITION: from the server`,
    metadata: { getMap: () => trailers },
  }) as never;

/** A gRPC status as grpc-js reports the server's NoLeaderInfo (UNKNOWN, no exception trailer). */
const NO_LEADER_INFO = () =>
  Object.assign(new Error('2 UNKNOWN: No leader info available in response'), {
    code: 2,
    details: 'No leader info available in response',
  });

const TWO_53 = 2n ** 53n;
const U64_MAX = 2n ** 64n - 1n;
/** The largest position the server can hold (a signed 64-bit integer). */
const I64_MAX = 2n ** 63n - 1n;

const metadata: EventMetadata = {
  actor: { id: 'user-1', name: 'Ada', roles: ['requester'] },
  occurredAt: '2030-01-01T00:00:00.000Z',
  correlationId: 'corr-1',
  causationId: null,
  schemaVersion: 1,
  previousHash: '0'.repeat(64),
  hash: 'a'.repeat(64),
};

const resolved = (overrides: Partial<Record<string, unknown>> = {}, commitPosition?: bigint): ResolvedEvent =>
  ({
    event: {
      streamId: 'changeRequest-CHG-001',
      id: '6f1c2b1e-1d2c-4c3b-9a8d-7e6f5a4b3c2d',
      isJson: true,
      revision: 3n,
      type: 'ChangeRequestRaised',
      created: new Date(0),
      data: { title: 'Rotate certificates', risk: { level: 'high' } },
      metadata,
      position: { commit: TWO_53 + 7n, prepare: TWO_53 + 7n },
      ...overrides,
    },
    commitPosition,
  }) as ResolvedEvent;

/** What grpc-js reports when an HTTP/2 stream is reset under a call. */
const RST_STREAM = Object.assign(
  new Error(
    '13 INTERNAL: Received RST_STREAM with code 2 triggered by internal client error: read ECONNRESET',
  ),
  {
    code: 13,
    details: 'Received RST_STREAM with code 2 triggered by internal client error: read ECONNRESET',
  },
);

describe('EventStoreDB mapping', () => {
  describe('expected revisions', () => {
    it("maps 'any', 'no-stream' and exact revisions to the client's constants and bigints", () => {
      expect(toClientExpectedRevision('any')).toBe(ANY);
      expect(toClientExpectedRevision('no-stream')).toBe(NO_STREAM);
      expect(toClientExpectedRevision(0n)).toBe(0n);
      expect(toClientExpectedRevision(41n)).toBe(41n);
      expect(toClientExpectedRevision(TWO_53 + 1n)).toBe(TWO_53 + 1n);
    });

    it('refuses negative revisions and non-bigints', () => {
      expect(() => toClientExpectedRevision(-1n)).toThrow(TypeError);
      expect(() => toClientExpectedRevision(3 as unknown as bigint)).toThrow(TypeError);
      expect(() => toClientExpectedRevision('stream_exists' as never)).toThrow(TypeError);
    });

    it("reads the client's expected revisions back, legacy numbers from gRPC trailers included", () => {
      expect(fromClientExpectedRevision(ANY)).toBe('any');
      expect(fromClientExpectedRevision(NO_STREAM)).toBe('no-stream');
      expect(fromClientExpectedRevision(7n)).toBe(7n);
      expect(fromClientExpectedRevision(-1n)).toBe('no-stream');
      expect(fromClientExpectedRevision(-2n)).toBe('any');
      expect(fromClientExpectedRevision('stream_exists')).toBeUndefined();
      expect(fromClientExpectedRevision(-4n)).toBeUndefined();
      expect(fromClientExpectedRevision(undefined)).toBeUndefined();
    });

    it('reads the actual revision an error reports', () => {
      expect(toActualRevision(5n)).toBe(5n);
      expect(toActualRevision(0n)).toBe(0n);
      expect(toActualRevision(NO_STREAM)).toBe('no-stream');
      expect(toActualRevision(-1n)).toBe('no-stream');
      expect(toActualRevision(undefined)).toBe('no-stream');
    });
  });

  describe('positions', () => {
    it('goes to {commit, prepare} and back without loss, above 2^53 too', () => {
      for (const p of [0n, 1n, 4_096n, TWO_53 - 1n, TWO_53, TWO_53 + 1n, 2n ** 62n + 12_345n, I64_MAX]) {
        const store = toStorePosition(p);
        expect(store).toEqual({ commit: p, prepare: p });
        expect(typeof store.commit).toBe('bigint');
        expect(toPortPosition(store)).toBe(p);
      }
      // a commit position is the port position, whatever the prepare position
      expect(toPortPosition({ commit: TWO_53 + 3n, prepare: TWO_53 + 1n })).toBe(TWO_53 + 3n);
    });

    it('refuses what is no log position', () => {
      expect(() => toStorePosition(-1n)).toThrow(TypeError);
      expect(() => toStorePosition(I64_MAX + 1n)).toThrow(TypeError);
      expect(() => toStorePosition(U64_MAX)).toThrow(TypeError);
      expect(() => toStorePosition(12 as unknown as bigint)).toThrow(TypeError);
    });

    it("starts reads at the beginning for no 'after' (or 0n), else at the event at 'after'", () => {
      expect(readStartAfter(undefined)).toBe(START);
      expect(readStartAfter(0n)).toBe(START);
      expect(readStartAfter(TWO_53 + 9n)).toEqual({ commit: TWO_53 + 9n, prepare: TWO_53 + 9n });
    });

    it('orders positions by commit, then prepare', () => {
      const p = (commit: bigint, prepare: bigint) => ({ commit, prepare });
      expect(comparePositions(p(TWO_53, TWO_53), p(TWO_53 + 1n, 0n))).toBe(-1);
      expect(comparePositions(p(TWO_53 + 1n, 0n), p(TWO_53, TWO_53))).toBe(1);
      expect(comparePositions(p(10n, 11n), p(10n, 12n))).toBe(-1);
      expect(comparePositions(p(10n, 12n), p(10n, 11n))).toBe(1);
      expect(comparePositions(p(I64_MAX, I64_MAX), p(I64_MAX, I64_MAX))).toBe(0);
    });

    it("takes an event's position from the event, else from the resolved event, and knows 'not reported'", () => {
      expect(positionOf(resolved())).toBe(TWO_53 + 7n);
      expect(positionOf(resolved({ position: undefined }, 2n ** 62n))).toBe(2n ** 62n);
      expect(positionOf(resolved({ position: undefined }))).toBeUndefined();
      // servers before 22.6 answer stream reads with 2^64-1
      expect(positionOf(resolved({ position: { commit: U64_MAX, prepare: U64_MAX } }))).toBeUndefined();
      expect(positionOf({ commitPosition: 5n })).toBe(5n);
    });
  });

  describe('events', () => {
    const newEvent: NewEvent = {
      eventId: '0b7e7f6c-5d4e-4f3a-8b2c-1d0e9f8a7b6c',
      type: 'ChangeRequestRaised',
      data: { title: 'x', nested: { list: [1, 2] } },
      metadata,
    };

    it('passes the event id through into a JSON event', () => {
      expect(toEventData(newEvent)).toEqual({
        id: newEvent.eventId,
        contentType: 'application/json',
        type: 'ChangeRequestRaised',
        data: newEvent.data,
        metadata,
      });
      expect(toEventData({ ...newEvent, eventId: newEvent.eventId.toUpperCase() }).id).toBe(
        newEvent.eventId.toUpperCase(),
      );
    });

    it('refuses event ids EventStoreDB cannot store (not a UUID)', () => {
      expect(() => toEventData({ ...newEvent, eventId: 'evt-1' })).toThrow(/must be a UUID/);
      expect(() => toEventData({ ...newEvent, eventId: '' })).toThrow(TypeError);
    });

    it('maps a recorded event: revision and commit position as bigints, data and metadata as JSON', () => {
      const recorded = toRecordedEvent(resolved());
      expect(recorded).toEqual({
        eventId: '6f1c2b1e-1d2c-4c3b-9a8d-7e6f5a4b3c2d',
        streamId: 'changeRequest-CHG-001',
        revision: 3n,
        position: TWO_53 + 7n,
        type: 'ChangeRequestRaised',
        data: { title: 'Rotate certificates', risk: { level: 'high' } },
        metadata,
      });
      expect(Object.keys(recorded).sort()).toEqual([
        'data',
        'eventId',
        'metadata',
        'position',
        'revision',
        'streamId',
        'type',
      ]);
    });

    it('maps $all events (position on the event) and events without a reported position', () => {
      const all: AllStreamResolvedEvent = resolved({
        position: { commit: I64_MAX, prepare: I64_MAX },
      }) as AllStreamResolvedEvent;
      expect(toRecordedEvent(all).position).toBe(I64_MAX);
      expect(toRecordedEvent(resolved({ position: undefined })).position).toBe(UNKNOWN_POSITION);
      expect(toRecordedEvent(resolved({ position: undefined }), 99n).position).toBe(99n);
    });

    it('decodes JSON written as binary, and refuses data that is no JSON object', () => {
      const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
      const binary = toRecordedEvent(
        resolved({ isJson: false, data: bytes('{"a":1}'), metadata: bytes(JSON.stringify(metadata)) }),
      );
      expect(binary.data).toEqual({ a: 1 });
      expect(binary.metadata).toEqual(metadata);
      // reported as that event, where it stands, as the SQLite store reports an edited row
      const refused = (() => {
        try {
          toRecordedEvent(resolved({ data: 'plain text' }));
        } catch (error) {
          return error;
        }
      })();
      expect(refused).toBeInstanceOf(StoredEventCorruptError);
      expect(refused).toMatchObject({ field: 'data', position: expect.any(BigInt) });
      expect((refused as Error).message).toMatch(
        /revision \d+ \(position \d+\) is corrupt: its data is not a JSON object/,
      );
      expect(() => toRecordedEvent(resolved({ data: [1, 2] }))).toThrow(StoredEventCorruptError);
      expect(() => toRecordedEvent(resolved({ isJson: false, data: bytes('not json') }))).toThrow(
        StoredEventCorruptError,
      );
      expect(() => toRecordedEvent(resolved({ metadata: undefined }))).toThrow(
        /its metadata is not a JSON object/,
      );
      expect(() => toRecordedEvent({})).toThrow(/without an event/);
    });

    it("reads the hash chain's last hash off any event", () => {
      expect(chainHashOf(resolved())).toBe('a'.repeat(64));
      expect(chainHashOf(resolved({ metadata: { other: 1 } }))).toBeUndefined();
      expect(chainHashOf(resolved({ metadata: new Uint8Array([1]) }))).toBeUndefined();
      expect(chainHashOf(undefined)).toBeUndefined();
    });
  });

  describe('errors', () => {
    it("translates the client's WrongExpectedVersionError into ConcurrencyError with the actual revision", () => {
      const error = new WrongExpectedVersionError(undefined, {
        streamName: 'changeRequest-CHG-001',
        expected: 2n,
        current: 5n,
      });
      expect(isWrongExpectedVersion(error)).toBe(true);
      const concurrency = toConcurrencyError(error, 'changeRequest-CHG-001', 2n);
      expect(concurrency).toBeInstanceOf(ConcurrencyError);
      expect(concurrency).toMatchObject({
        streamId: 'changeRequest-CHG-001',
        expected: 2n,
        actual: 5n,
        cause: error,
      });
      expect(concurrency.message).toBe(
        'stream changeRequest-CHG-001: expected revision 2, but it is at revision 5',
      );
    });

    it("reports 'no-stream' when the stream does not exist", () => {
      const error = new WrongExpectedVersionError(undefined, {
        streamName: 's',
        expected: 0n,
        current: NO_STREAM,
      });
      expect(toConcurrencyError(error, 'changeRequest-x', 0n)).toMatchObject({
        expected: 0n,
        actual: 'no-stream',
      });
    });

    it('reads errors built from gRPC trailers (legacy -1 numbers) the same way', () => {
      const fromTrailers = new WrongExpectedVersionError(
        serviceError({
          'stream-name': 'changeRequest-CHG-002',
          'expected-version': '-1',
          'actual-version': '3',
        }),
      );
      expect(fromTrailers.expectedVersion).toBe(-1n);
      expect(fromClientExpectedRevision(fromTrailers.expectedVersion)).toBe('no-stream');
      expect(toConcurrencyError(fromTrailers, 'changeRequest-CHG-002', 'no-stream')).toMatchObject({
        expected: 'no-stream',
        actual: 3n,
      });
      const noActual = new WrongExpectedVersionError(
        serviceError({ 'stream-name': 's', 'expected-version': '4' }),
      );
      expect(toConcurrencyError(noActual, 's', 4n).actual).toBe('no-stream');
    });

    it('accepts objects shaped like the error (another copy of the client)', () => {
      const shaped = { type: 'wrong-expected-version', actualVersion: 9n } as const;
      expect(isWrongExpectedVersion(shaped)).toBe(true);
      expect(toConcurrencyError(shaped as never, 'changeRequest-y', 'no-stream')).toMatchObject({
        actual: 9n,
      });
      expect(isWrongExpectedVersion(new UnavailableError())).toBe(false);
      expect(isWrongExpectedVersion(new Error('wrong-expected-version'))).toBe(false);
      expect(isWrongExpectedVersion(undefined)).toBe(false);
    });

    it('recognises a missing or deleted stream', () => {
      expect(isStreamNotFound(new StreamNotFoundError(undefined, 'changeRequest-none'))).toBe(true);
      expect(isStreamNotFound(new UnavailableError())).toBe(false);
      expect(isStreamDeleted(StreamDeletedError.fromStreamName('changeRequest-gone'))).toBe(true);
      expect(isStreamDeleted(new StreamNotFoundError())).toBe(false);
    });

    it('classifies transient errors: unavailable, deadline, timeout, not leader, server-side cancel', () => {
      const transient: unknown[] = [
        new UnavailableError(),
        new DeadlineExceededError(),
        new TimeoutError(),
        new CancelledError(),
        new NotLeaderError(
          serviceError({ 'leader-endpoint-host': '10.0.0.2', 'leader-endpoint-port': '2113' }),
        ),
        // raw gRPC errors the client does not convert (e.g. an append's capability probe)
        Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 }),
        Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: 4 }),
        Object.assign(new Error('10 ABORTED'), { code: 10 }),
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2113'), { code: 'ECONNREFUSED' }),
        Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
        new Error('Failed to discover after 10 attempts.'),
        // a batch append the server did not handle, as the client reports it
        new UnknownError(undefined, 'Could not recognize Server Is Busy'),
        new UnknownError(undefined, 'Could not recognize Server Is Not Ready'),
        new UnknownError(undefined, 'Could not recognize No leader info available in response'),
        // a leader-required read on a node that knows no leader (server RpcExceptions.NoLeaderInfo)
        convertToCommandError(NO_LEADER_INFO()),
        NO_LEADER_INFO(),
        // an HTTP/2 stream reset, raw and as the client passes it on
        RST_STREAM,
        new UnknownError(RST_STREAM as never),
      ];
      for (const error of transient)
        expect([describeError(error), isTransientError(error)]).toEqual([describeError(error), true]);
    });

    it('classifies everything else as permanent', () => {
      const permanent: unknown[] = [
        new WrongExpectedVersionError(undefined, { streamName: 's', expected: 1n, current: 2n }),
        new StreamNotFoundError(undefined, 's'),
        new AccessDeniedError(),
        new UnknownError(),
        new UnknownError(undefined, 'Could not recognize Something Else'),
        convertToCommandError(
          Object.assign(new Error('2 UNKNOWN: Something Else'), { code: 2, details: 'Something Else' }),
        ),
        new InvalidArgumentError('bad'),
        MaxAppendSizeExceededError.fromMaxAppendSize(1024),
        new ConcurrencyError('s', 1n, 2n),
        Object.assign(new Error('3 INVALID_ARGUMENT'), { code: 3 }),
        Object.assign(new Error('13 INTERNAL: Invalid protobuf byte sequence'), { code: 13 }),
        new UnknownError(
          Object.assign(new Error('13 INTERNAL: Invalid protobuf byte sequence'), { code: 13 }) as never,
        ),
        Object.assign(new Error('ENOENT'), { code: 'ENOENT' }),
        new TypeError('bug'),
        'a string',
        undefined,
        null,
      ];
      for (const error of permanent)
        expect([String(error), isTransientError(error)]).toEqual([String(error), false]);
    });

    it('knows which failed appends certainly wrote nothing', () => {
      for (const error of [
        new ConcurrencyError('s', 'no-stream', 0n),
        new WrongExpectedVersionError(undefined, { streamName: 's', expected: NO_STREAM, current: 0n }),
        { type: 'wrong-expected-version' },
        new AccessDeniedError(),
        new InvalidArgumentError('bad'),
        MaxAppendSizeExceededError.fromMaxAppendSize(1024),
        StreamDeletedError.fromStreamName('s'),
      ]) {
        expect(isDefiniteRejection(error)).toBe(true);
      }
      for (const error of [
        new UnavailableError(),
        new DeadlineExceededError(),
        new UnknownError(),
        new UnknownError(undefined, 'Could not recognize Something Else'),
        new Error('?'),
        undefined,
      ]) {
        expect(isDefiniteRejection(error)).toBe(false);
      }
    });

    it('describes errors on one line with their type', () => {
      expect(describeError(new UnavailableError(serviceError({}, 14)))).toBe(
        'Error [unavailable]: 14 FAILED_PRECONDITION: from the server',
      );
      expect(describeError(new TypeError('first\nsecond'))).toBe('TypeError: first');
      expect(describeError('text')).toBe('text');
    });
  });

  describe('filters', () => {
    it('builds a server-side stream-name prefix filter of our categories', () => {
      expect(streamPrefixFilter(DEFAULT_CATEGORIES)).toEqual({
        filterOn: 'streamName',
        prefixes: ['changeRequest-', 'standardTemplate-'],
        checkpointInterval: 1,
      });
      expect(streamPrefixFilter([sequenceStreamId('change-request')])).toMatchObject({
        prefixes: ['sequence-change-request'],
      });
    });

    it('refuses filters that would let system streams in, or match nothing', () => {
      expect(() => streamPrefixFilter([])).toThrow(TypeError);
      expect(() => streamPrefixFilter([''])).toThrow(/every stream/);
      expect(() => streamPrefixFilter(['changeRequest-', '$ce-'])).toThrow(/system streams/);
    });

    it('keeps our categories, and drops system streams, system event types, foreign and counter streams', () => {
      const visible = (streamId: string, type = 'ChangeRequestRaised', prefixes = DEFAULT_CATEGORIES) =>
        isVisibleEvent(prefixes, streamId, type);
      expect(visible('changeRequest-CHG-001')).toBe(true);
      expect(visible('standardTemplate-STD-7', 'StandardTemplateDefined')).toBe(true);
      expect(visible('$ce-changeRequest', '$>')).toBe(false);
      expect(visible('$$changeRequest-CHG-001', '$metadata')).toBe(false);
      expect(visible('changeRequest-CHG-001', '$streamDeleted')).toBe(false);
      expect(visible('other-changeRequest-1')).toBe(false);
      expect(visible('sequence-change-request', SEQUENCE_NUMBER_ALLOCATED)).toBe(false);
      expect(visible('sequence-change-request', SEQUENCE_NUMBER_ALLOCATED, ['sequence-'])).toBe(true);
    });

    it('names counter streams sequence-<name>, which are not system streams', () => {
      expect(sequenceStreamId('change-request')).toBe('sequence-change-request');
      expect(sequenceStreamId('x').startsWith('$')).toBe(false);
    });
  });

  describe('counter streams', () => {
    const counterEvent = (type: string, data: unknown, revision = 4n) =>
      resolved({ streamId: 'sequence-s', type, data, revision });

    it('starts a fresh sequence at 0', () => {
      expect(counterStateOf(undefined, 'sequence-s')).toEqual({
        revision: 'no-stream',
        value: 0,
        hash: undefined,
      });
    });

    it('reads the last allocation and its stream, and a release hands its number back', () => {
      expect(
        counterStateOf(counterEvent(SEQUENCE_NUMBER_ALLOCATED, { number: 7, streamId: 'x' }), 'sequence-s'),
      ).toEqual({
        revision: 4n,
        value: 7,
        hash: 'a'.repeat(64),
        allocatedTo: 'x',
      });
      const released = counterStateOf(
        counterEvent(SEQUENCE_NUMBER_RELEASED, { number: 7, streamId: 'x' }, 5n),
        'sequence-s',
      );
      expect(released).toMatchObject({ revision: 5n, value: 6 });
      expect(released.allocatedTo).toBeUndefined();
    });

    it('refuses a counter stream that ends with something else', () => {
      expect(() => counterStateOf(counterEvent('Squatter', { number: 3 }), 'sequence-s')).toThrow(
        /did not write: Squatter/,
      );
      expect(() =>
        counterStateOf(counterEvent(SEQUENCE_NUMBER_ALLOCATED, { number: 0 }), 'sequence-s'),
      ).toThrow();
      expect(() =>
        counterStateOf(counterEvent(SEQUENCE_NUMBER_ALLOCATED, { number: '3' }), 'sequence-s'),
      ).toThrow();
      expect(() =>
        counterStateOf(counterEvent(SEQUENCE_NUMBER_ALLOCATED, { number: 2 ** 53 }), 'sequence-s'),
      ).toThrow();
    });
  });

  describe('retries', () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 2_000 };

    it('backs off exponentially between half and all of the ceiling, capped', () => {
      expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, () => 1))).toEqual([
        100, 200, 400, 800, 1600, 2000,
      ]);
      expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, () => 0))).toEqual([
        50, 100, 200, 400, 800, 1000,
      ]);
      expect(backoffDelay(2, policy, () => 0.5)).toBe(150);
      expect(backoffDelay(0, policy, () => 1)).toBe(100);
      expect(backoffDelay(1_000, policy, () => 1)).toBe(2_000);
    });
  });

  describe('connection strings', () => {
    it('drops the credentials, and only them', () => {
      expect(redactConnectionString('esdb://admin:changeit@localhost:2113?tls=false')).toBe(
        'esdb://localhost:2113?tls=false',
      );
      expect(redactConnectionString('esdb+discover://ops:p%40ss:w0rd@cluster.example.com:2113')).toBe(
        'esdb+discover://cluster.example.com:2113',
      );
      expect(redactConnectionString('esdb://u:p@h1:2113,h2:2113,h3:2113?nodePreference=leader')).toBe(
        'esdb://h1:2113,h2:2113,h3:2113?nodePreference=leader',
      );
      expect(redactConnectionString('esdb://localhost:2113?tls=false')).toBe(
        'esdb://localhost:2113?tls=false',
      );
      // the client reads `localhost:2113?tlsCAFile=/certs/a` as credentials and connects to b.pem
      expect(redactConnectionString('esdb://localhost:2113?tlsCAFile=/certs/a@b.pem')).toBe('esdb://b.pem');
      // a password with ? (the client takes it up to the first @)
      expect(redactConnectionString('esdb://admin:pa?ss@h:2113?tls=false')).toBe('esdb://h:2113?tls=false');
      expect(redactConnectionString('esdb://a@b:pw@h:2113')).toBe('esdb://h:2113');
      // a password with an unencoded @: none of it is shown, though the client misreads it
      expect(redactConnectionString('esdb://admin:p@ss@h:2113')).toBe('esdb://h:2113');
      // a password with / or # (the client takes them as they are)
      expect(redactConnectionString('esdb://admin:pa/ss#1@h:2113?tlsCAFile=/c/a@b.pem')).toBe(
        'esdb://h:2113?tlsCAFile=/c/a@b.pem',
      );
    });

    it('leaves none of what the client itself parses as the password', () => {
      for (const password of ['s3cret', 'pa?ss', 'a/b#c', 'x?y=z&w', '?@', 'p%3Fq', 'p@ss', 'a@b@c']) {
        for (const rest of ['h:2113', 'h1:2113,h2:2113?tls=false', 'h?tlsCAFile=/c/a@b.pem']) {
          const connection = `esdb://admin:${password}@${rest}`;
          const parsed = parseConnectionString(connection).defaultCredentials?.password;
          if (!parsed) continue;
          expect(redactConnectionString(connection)).not.toContain(`:${parsed}@`);
          expect(redactConnectionString(connection).startsWith(`esdb://admin`)).toBe(false);
          // nor any piece of the password as written (the client may read less of it)
          for (const piece of password.split(/[?@]/).filter((p) => p.length > 1)) {
            expect(redactConnectionString(connection).split('?')[0]).not.toContain(piece);
          }
        }
      }
    });

    it('finds the options the client would warn about (printing the whole string) as the client parses them', () => {
      expect(connectionStringProblem('esdb://u:p@h:2113?tls=false&TLS-Verify-Cert= false ')).toMatch(
        /^tlsVerifyCert=false is not supported/,
      );
      expect(connectionStringProblem('esdb://h:2113?tls=false&keepAlive=1000')).toMatch(
        /^unknown option "keepAlive" \(the client would ignore it\); known: /,
      );
      // dnsDiscover: known to the client in this spelling only
      expect(connectionStringProblem('esdb://h?dnsDiscover=true')).toBeUndefined();
      expect(connectionStringProblem('esdb://h?dns-discover=true')).toMatch(/^unknown option "dns-discover"/);
      for (const fine of [
        'esdb://h:2113',
        'esdb://h:2113/',
        'esdb+discover://u:p@h1:2113,h2:2113?nodePreference=follower&tlsVerifyCert=true&tls_ca_file=/c.pem',
        // the client takes everything up to the '@' as the password, '?' and '&' included
        'esdb://admin:p?w&x=y@h:2113?tls=false',
        // malformed: the client throws before warning (its own error, handled elsewhere)
        'esdb://h:2113?tls',
      ])
        expect([fine, connectionStringProblem(fine)]).toEqual([fine, undefined]);
    });
  });
});
