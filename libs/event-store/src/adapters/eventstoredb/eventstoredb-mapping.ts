/**
 * Pure translation between the EventStore port and the EventStoreDB gRPC client (v6): revisions,
 * positions, events, errors, filters and retry classification. Nothing here talks to a server.
 */
import {
  ANY,
  ErrorType,
  NO_STREAM,
  START,
  isCommandError,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type CurrentRevision,
  type EventData,
  type ExpectedRevision as ClientExpectedRevision,
  type Position,
  type PrefixesFilter,
  type ReadPosition,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { CHANGE_REQUEST_STREAM_PREFIX, STANDARD_TEMPLATE_STREAM_PREFIX } from '@changeledger/domain';
import { GENESIS_HASH } from '../../event-hash';
import { AppendTooLargeError, ConcurrencyError, StoredEventCorruptError } from '../../event-store.errors';
import {
  type EventMetadata,
  type ExpectedRevision,
  MAX_APPEND_BYTES,
  type NewEvent,
  type RecordedEvent,
} from '../../event-store.port';

// ---------------------------------------------------------------------------------------------
// stream categories

/** The stream categories this application writes; reads and subscriptions see only these by default. */
export const DEFAULT_CATEGORIES: readonly string[] = [
  CHANGE_REQUEST_STREAM_PREFIX,
  STANDARD_TEMPLATE_STREAM_PREFIX,
];

/**
 * Counter streams of `appendWithSequence` are `sequence-<name>`. Not `$sequence-<name>`: streams
 * whose name starts with `$` are EventStoreDB system streams (ACL-protected, hidden by the
 * system-event filters). They are bookkeeping, not domain events, so the default categories leave
 * them out, as the SQLite adapter keeps its counters outside the event log.
 */
export const SEQUENCE_STREAM_PREFIX = 'sequence-';
export const sequenceStreamId = (sequence: string): string => `${SEQUENCE_STREAM_PREFIX}${sequence}`;

/** One event per allocated number: `{ number, streamId }`. */
export const SEQUENCE_NUMBER_ALLOCATED = 'SequenceNumberAllocated';
/** Hands a number back when the stream it was allocated for could not be written. */
export const SEQUENCE_NUMBER_RELEASED = 'SequenceNumberReleased';

/** EventStoreDB system streams (`$all` internals, projections, `$$metadata`) start with `$`. */
export const isSystemStream = (streamId: string): boolean => streamId.startsWith('$');
/** System event types (`$>` links, `$metadata`, `$streamDeleted`, ...) start with `$`. */
export const isSystemEventType = (type: string): boolean => type.startsWith('$');

/**
 * The server-side filter of a subscription to `$all`: stream names starting with one of the
 * prefixes. None of our prefixes starts with `$`, so system streams never match.
 */
export const streamPrefixFilter = (prefixes: readonly string[]): PrefixesFilter => {
  if (prefixes.length === 0) throw new TypeError('a stream-prefix filter needs at least one prefix');
  for (const prefix of prefixes) {
    if (prefix.length === 0)
      throw new TypeError('an empty stream prefix would match every stream, system streams included');
    if (isSystemStream(prefix))
      throw new TypeError(`stream prefix ${JSON.stringify(prefix)} names system streams`);
  }
  return streamNameFilter({ prefixes: [...prefixes] });
};

/**
 * The same rule on the client side: `readAll` of client v6 cannot filter on the server, and a
 * subscription's events are checked again (system event types inside our streams, e.g. a
 * tombstone's `$streamDeleted`, pass a stream-name filter).
 */
export const isVisibleEvent = (prefixes: readonly string[], streamId: string, type: string): boolean =>
  !isSystemStream(streamId) &&
  !isSystemEventType(type) &&
  prefixes.some((prefix) => streamId.startsWith(prefix));

// ---------------------------------------------------------------------------------------------
// revisions

/** The port's expected revision as the client spells it: 'any' → ANY, 'no-stream' → NO_STREAM, n → n. */
export const toClientExpectedRevision = (expected: ExpectedRevision): ClientExpectedRevision => {
  if (expected === 'any') return ANY;
  if (expected === 'no-stream') return NO_STREAM;
  if (typeof expected !== 'bigint' || expected < 0n) {
    throw new TypeError(
      `expected revision must be 'any', 'no-stream' or a bigint >= 0, got ${String(expected)}`,
    );
  }
  return expected;
};

/** The inverse, for what an error reports; 'stream_exists' has no port equivalent (undefined). */
export const fromClientExpectedRevision = (
  expected: AppendExpectedRevision | undefined,
): ExpectedRevision | undefined => {
  if (expected === ANY) return 'any';
  if (expected === NO_STREAM) return 'no-stream';
  if (typeof expected === 'bigint') {
    // Errors built from gRPC trailers carry the legacy numbers: -1 no stream, -2 any, -4 stream exists.
    if (expected === -1n) return 'no-stream';
    if (expected === -2n) return 'any';
    return expected >= 0n ? expected : undefined;
  }
  return undefined;
};

/** The stream's actual revision as an error reports it: 'no_stream', a revision, or -1 for none. */
export const toActualRevision = (current: CurrentRevision | undefined): bigint | 'no-stream' => {
  if (typeof current === 'bigint' && current >= 0n) return current;
  return 'no-stream';
};

// ---------------------------------------------------------------------------------------------
// positions

/**
 * The port's position is the event's commit position in the transaction log (64-bit, only grows,
 * not dense). Every event appended through gRPC is committed implicitly, so its commit position
 * equals its prepare position (its own log position) and is unique per event: that is what makes
 * a single bigint enough. The way back is `{ commit: p, prepare: p }`; a forward read from there
 * starts AT that event (inclusive), so `readAll` skips the event whose position equals `after`.
 *
 * (Events written by the legacy TCP API inside explicit transactions share their commit's
 * position; this adapter never writes such events.)
 */
export const toStorePosition = (position: bigint): Position => {
  if (!isRealPosition(position)) {
    throw new TypeError(`a log position must be a bigint in [0, 2^63), got ${String(position)}`);
  }
  return { commit: position, prepare: position };
};
export const toPortPosition = (position: Position): bigint => position.commit;

/** Where a forward read or subscription starts for an exclusive lower bound `after`. */
export const readStartAfter = (after: bigint | undefined): ReadPosition =>
  after === undefined || after <= 0n ? START : toStorePosition(after);

/** Orders two `$all` positions as the server does: by commit, then by prepare. */
export const comparePositions = (a: Position, b: Position): number =>
  a.commit !== b.commit
    ? a.commit < b.commit
      ? -1
      : 1
    : a.prepare === b.prepare
      ? 0
      : a.prepare < b.prepare
        ? -1
        : 1;

/**
 * The server keeps log positions as signed 64-bit integers. Servers before 22.6 answer stream
 * reads with "no position", sent as 2^64-1 (or not at all).
 */
function isRealPosition(commit: unknown): commit is bigint {
  return typeof commit === 'bigint' && commit >= 0n && commit < 1n << 63n;
}

/** Used when the server does not report a position (stream reads on servers older than 22.6). */
export const UNKNOWN_POSITION = 0n;

/** The event's commit position, or undefined when the server did not report one. */
export const positionOf = (resolved: ResolvedEvent | AllStreamResolvedEvent): bigint | undefined => {
  const commit = resolved.event?.position?.commit ?? resolved.commitPosition;
  return isRealPosition(commit) ? commit : undefined;
};

// ---------------------------------------------------------------------------------------------
// events

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A port event as the client's JSON event. The eventId is passed through (EventStoreDB
 * deduplicates re-appends by it, and it must be a UUID); `metadata` is expected to carry the
 * hash chain already (see `chainMetadata`).
 */
export const toEventData = (event: NewEvent): EventData => {
  if (!UUID.test(event.eventId)) {
    throw new TypeError(
      `eventId must be a UUID for EventStoreDB, got ${JSON.stringify(event.eventId)} (${event.type})`,
    );
  }
  return jsonEvent({ id: event.eventId, type: event.type, data: event.data, metadata: event.metadata });
};

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

/**
 * An event's data or metadata as an object; one that is none is reported as that event, where it
 * stands (as the SQLite store reports an edited row): verify names it, and a webhook stuck on it
 * names the position to give it up at.
 */
const decodeJsonObject = (
  value: unknown,
  field: 'data' | 'metadata',
  event: { readonly streamId: string; readonly revision: bigint },
  position: bigint,
): Record<string, unknown> => {
  if (isPlainObject(value)) return value;
  let cause: unknown;
  if (value instanceof Uint8Array) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(value).toString('utf8'));
      if (isPlainObject(parsed)) return parsed;
    } catch (error) {
      cause = error; // reported below
    }
  }
  throw new StoredEventCorruptError(event.streamId, event.revision, position, field, { cause });
};

/**
 * A resolved event from a stream read, a `$all` read or a subscription as a port event.
 * `position` is the commit position, or `fallbackPosition` when the server did not report one.
 */
export const toRecordedEvent = (
  resolved: ResolvedEvent | AllStreamResolvedEvent,
  fallbackPosition: bigint = UNKNOWN_POSITION,
): RecordedEvent => {
  const event = resolved.event;
  if (!event) throw new TypeError('a resolved event without an event (an unresolved link?)');
  const position = positionOf(resolved) ?? fallbackPosition;
  return {
    eventId: event.id,
    streamId: event.streamId,
    revision: event.revision,
    position,
    type: event.type,
    data: decodeJsonObject(event.data, 'data', event, position),
    metadata: decodeJsonObject(event.metadata, 'metadata', event, position) as unknown as EventMetadata,
  };
};

// ---------------------------------------------------------------------------------------------
// errors

/** gRPC status codes (from @grpc/grpc-js, which this package does not depend on directly). */
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_ABORTED = 10;
const GRPC_UNAVAILABLE = 14;

const errorType = (error: unknown): ErrorType | undefined =>
  error instanceof Error && isCommandError(error) ? error.type : undefined;

/** The client's WrongExpectedVersionError, or anything shaped like it. */
export interface WrongExpectedVersionLike {
  readonly type: ErrorType.WRONG_EXPECTED_VERSION;
  readonly streamName?: string;
  readonly expectedVersion?: AppendExpectedRevision;
  readonly actualVersion?: CurrentRevision;
}

export const isWrongExpectedVersion = (error: unknown): error is WrongExpectedVersionLike =>
  typeof error === 'object' &&
  error !== null &&
  (error as { type?: unknown }).type === ErrorType.WRONG_EXPECTED_VERSION;

export const isStreamNotFound = (error: unknown): boolean =>
  typeof error === 'object' &&
  error !== null &&
  (error as { type?: unknown }).type === ErrorType.STREAM_NOT_FOUND;

export const isStreamDeleted = (error: unknown): boolean =>
  typeof error === 'object' &&
  error !== null &&
  (error as { type?: unknown }).type === ErrorType.STREAM_DELETED;

/**
 * WrongExpectedVersion as the port's ConcurrencyError. The stream id and expected revision are
 * the caller's (the error's `streamName` is the server's spelling, and its expected revision may
 * be a legacy number); `actual` is what the server reported.
 */
export const toConcurrencyError = (
  error: WrongExpectedVersionLike,
  streamId: string,
  expected: ExpectedRevision,
): ConcurrencyError => {
  const concurrency = new ConcurrencyError(streamId, expected, toActualRevision(error.actualVersion));
  (concurrency as Error & { cause?: unknown }).cause = error;
  return concurrency;
};

const TRANSIENT_TYPES: ReadonlySet<ErrorType> = new Set([
  ErrorType.UNAVAILABLE,
  ErrorType.DEADLINE_EXCEEDED,
  ErrorType.TIMEOUT,
  ErrorType.NOT_LEADER,
  // Server-side cancellation (shutdown, leader change); the client drops its own cancellations.
  ErrorType.CANCELLED,
]);

const TRANSIENT_SYSTEM_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * An append the server did not handle at all: its batch append answers "not handled" (too busy,
 * not ready, a follower without leader info) with a status whose details the client does not
 * know, so the client reports an UnknownError "Could not recognize <message>" (server:
 * Streams.BatchAppend.cs, client: appendToStream/unpackError.js). Nothing was written by that
 * attempt, so it is retried; after the last attempt the outcome stays unknown (an earlier attempt
 * may have timed out after writing).
 */
const NOT_HANDLED =
  /^Could not recognize (Server Is Busy|Server Is Not Ready|No leader info available in response)$/;

const isNotHandled = (error: unknown): boolean =>
  errorType(error) === ErrorType.UNKNOWN && NOT_HANDLED.test((error as Error).message);

/**
 * The other form of "no leader info": a leader-required read (the one before every append) on a
 * node that knows no leader yet answers gRPC UNKNOWN "No leader info available in response"
 * (server: RpcExceptions.NoLeaderInfo), which the client turns into an UnknownError with the
 * grpc-js message. An election in progress: a retry may find a leader.
 */
const GRPC_UNKNOWN = 2;
const isNoLeaderInfo = (error: unknown): boolean =>
  (error as { code?: unknown }).code === GRPC_UNKNOWN &&
  /^2 UNKNOWN: No leader info available in response$/.test(String((error as { message?: unknown }).message));

/**
 * An HTTP/2 stream reset (a proxy or the server closing the connection): grpc-js reports
 * `13 INTERNAL: Received RST_STREAM with code …`, which the client passes on as an UnknownError
 * (kurrent-io/KurrentDB-Client-NodeJS#51). The connection is the trouble, not the request.
 */
const GRPC_INTERNAL = 13;
const isStreamReset = (error: unknown): boolean =>
  (error as { code?: unknown }).code === GRPC_INTERNAL &&
  /RST_STREAM/.test(String((error as { message?: unknown }).message));

/**
 * Whether a retry might cure the error: the server or the network is (briefly) unavailable, a
 * deadline passed, or the node is not the leader (the client reconnects to the leader). Raw gRPC
 * errors count too: the client does not convert every error (an append whose capability probe
 * fails rejects with the raw `14 UNAVAILABLE`).
 */
export const isTransientError = (error: unknown): boolean => {
  if (typeof error !== 'object' || error === null) return false;
  const type = errorType(error);
  if (type !== undefined)
    return TRANSIENT_TYPES.has(type) || isNotHandled(error) || isNoLeaderInfo(error) || isStreamReset(error);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number')
    return (
      code === GRPC_UNAVAILABLE ||
      code === GRPC_DEADLINE_EXCEEDED ||
      code === GRPC_ABORTED ||
      isNoLeaderInfo(error) ||
      isStreamReset(error)
    );
  if (typeof code === 'string') return TRANSIENT_SYSTEM_CODES.has(code);
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && /^Failed to discover after \d+ attempts/.test(message);
};

const DEFINITE_REJECTIONS: ReadonlySet<ErrorType> = new Set([
  ErrorType.WRONG_EXPECTED_VERSION,
  ErrorType.ACCESS_DENIED,
  ErrorType.INVALID_ARGUMENT,
  ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED,
  ErrorType.STREAM_DELETED,
]);

/**
 * Whether an append that failed with this error certainly wrote nothing. Transient and unknown
 * failures do not qualify: the write may have landed before the answer was lost.
 */
export const isDefiniteRejection = (error: unknown): boolean => {
  if (error instanceof ConcurrencyError || error instanceof AppendTooLargeError) return true;
  const type =
    errorType(error) ?? (isWrongExpectedVersion(error) ? ErrorType.WRONG_EXPECTED_VERSION : undefined);
  return type !== undefined && DEFINITE_REJECTIONS.has(type);
};

/** The server's refusal of an append over its `MaxAppendSize` (nothing written), with its limit. */
export const maxAppendSizeOf = (error: unknown): number | undefined => {
  if (errorType(error) !== ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED) return undefined;
  const limit = (error as { maxAppendSize?: unknown }).maxAppendSize;
  return typeof limit === 'number' && Number.isFinite(limit) ? limit : MAX_APPEND_BYTES;
};

/** A short, single-line description of an error for log lines. */
export const describeError = (error: unknown): string => {
  if (error instanceof Error) {
    const type = errorType(error);
    const message = error.message.split('\n')[0].trim();
    return `${error.name}${type ? ` [${type}]` : ''}: ${message}`;
  }
  return String(error);
};

// ---------------------------------------------------------------------------------------------
// retries

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Exponential backoff with jitter: the n-th retry (1-based) waits between half and all of
 * min(max, base * 2^(n-1)). The jitter spreads competing writers apart.
 */
export const backoffDelay = (
  retry: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random = Math.random,
): number => {
  const exponent = Math.min(Math.max(retry - 1, 0), 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
};

// ---------------------------------------------------------------------------------------------
// connection strings

/**
 * The connection string without its credentials, for messages and logs:
 * `esdb://admin:changeit@host:2113?tls=false` → `esdb://host:2113?tls=false`.
 */
export const redactConnectionString = (connectionString: string): string =>
  connectionString
    // What @eventstore/db-client 6 takes as credentials (parseConnectionString.js): after the
    // scheme, anything but `:`, a colon, then anything up to the first @. So a password may
    // hold ?, / or #; and `esdb://host:2113?tlsCAFile=/a@b.pem` is credentials for host b.pem
    // to the client, and is shown as what it connects to: `esdb://b.pem`.
    .replace(/^([^:]+:\/\/)[^:]+:[^@]+@/, '$1')
    // Then anything up to an @ left before the query: the rest of a password that held an
    // unencoded @ (`admin:p@ss@h`: the client takes `p` and connects to "ss@h").
    .replace(/^([^:]+:\/\/)[^?]*@/, '$1');

/** `esdb://`, `esdb+discover://`...: what a connection string may always show ('' without one). */
export const connectionStringScheme = (connectionString: string): string =>
  /^[^:]+:\/\//.exec(connectionString)?.[0] ?? '';

/**
 * A connection string as an error may show it: `redactConnectionString`'s when that took its
 * credentials out; else the string, unless it may hold credentials whose `@` was forgotten
 * (`esdb://admin:pw:host:2113`: no credentials to the client, which then fails on the "host"): a
 * host with two colons, looking at all that follows the scheme (the password may hold `?`, `=`,
 * `&`), shown as `…`; so is one whose query holds a colon (`tlsCAFile=C:\ca.pem`), to be safe.
 * Hosts of a seed list (`h1:2113,h2:2113`) and bracketed IPv6 addresses are shown.
 */
export const shownConnectionString = (connectionString: string): string => {
  const redacted = redactConnectionString(connectionString);
  if (redacted !== connectionString) return redacted;
  const scheme = connectionStringScheme(connectionString);
  const head = connectionString.slice(scheme.length);
  const suspicious = head.split(',').some((host) => host.replace(/\[[^\]]*\]/g, '').split(':').length > 2);
  return suspicious ? `${scheme}…` : connectionString;
};

/** The options of @eventstore/db-client 6, by the spelling it matches them in (Client/parseConnectionString.js). */
const flatCase = (key: string) => key.trim().toLowerCase().replace(/[_-]/g, '');
const CLIENT_OPTIONS: ReadonlyMap<string, string> = new Map(
  [
    'userCertFile',
    'userKeyFile',
    'maxDiscoverAttempts',
    'connectionName',
    'defaultDeadline',
    'discoveryInterval',
    'gossipTimeout',
    'nodePreference',
    'tls',
    'tlsVerifyCert',
    'tlsCAFile',
    'throwOnAppendFailure',
    'keepAliveInterval',
    'keepAliveTimeout',
  ].map((option) => [flatCase(option), option]),
);

/**
 * Why the connection string must not reach the client, or undefined. Client 6.2.1 console.warns
 * the WHOLE string, credentials included, for an option key it does not know (which it then
 * ignores: a misspelt option) and for `tlsVerifyCert=false` (which it does not support). The
 * query is read as the client reads it: after the credentials (up to the first `@`, so a `?` in
 * a password is not a query), `?key=value` then `&key=value`, up to the first malformed pair
 * (where the client throws instead).
 */
export const connectionStringProblem = (connectionString: string): string | undefined => {
  const afterCredentials = connectionString
    .trim()
    .replace(/\/+$/, '')
    .replace(/^[^:]+:\/\/(?:[^:]+:[^@]+@)?/, '');
  const query = afterCredentials.indexOf('?');
  if (query < 0) return undefined;
  const pair = /[?&]([^=]+)=([^&?]+)/y;
  pair.lastIndex = query;
  for (let first = true, match; (match = pair.exec(afterCredentials)); first = false) {
    if (match[0][0] !== (first ? '?' : '&')) return undefined;
    const [, rawKey, rawValue] = match;
    const key = CLIENT_OPTIONS.get(flatCase(rawKey)) ?? rawKey;
    if (key === 'tlsVerifyCert' && rawValue.trim() === 'false')
      return (
        'tlsVerifyCert=false is not supported by the client (it would be ignored); ' +
        "trust the server's certificate with tlsCAFile or NODE_EXTRA_CA_CERTS instead"
      );
    // dnsDiscover: the client knows it, but only in this spelling
    if (!CLIENT_OPTIONS.has(flatCase(rawKey)) && rawKey !== 'dnsDiscover')
      return (
        `unknown option ${JSON.stringify(rawKey)} (the client would ignore it); ` +
        `known: ${[...CLIENT_OPTIONS.values(), 'dnsDiscover'].join(', ')}`
      );
  }
  return undefined;
};

// ---------------------------------------------------------------------------------------------
// hash chain and counter streams

/** The `hash` a stored event carries in its metadata, whatever else the event holds. */
export const chainHashOf = (
  resolved: ResolvedEvent | AllStreamResolvedEvent | undefined,
): string | undefined => {
  const metadata: unknown = resolved?.event?.metadata;
  if (!isPlainObject(metadata)) return undefined;
  return typeof metadata.hash === 'string' ? metadata.hash : undefined;
};

/**
 * The hash a new event of `streamId` chains onto: the genesis hash for a stream without events,
 * else its last event's. A last event without one (written by another tool, or edited) is
 * refused as corrupt, as the SQLite store refuses it: chained onto the genesis hash instead, the
 * new event would hide where the chain broke.
 */
export const previousHashAfter = (streamId: string, last: ResolvedEvent | undefined): string => {
  if (!last?.event) return GENESIS_HASH;
  const hash = chainHashOf(last);
  if (hash !== undefined) return hash;
  throw new StoredEventCorruptError(
    streamId,
    last.event.revision,
    positionOf(last) ?? UNKNOWN_POSITION,
    'metadata',
    {
      problem: isPlainObject(last.event.metadata) ? 'holds no hash' : undefined,
    },
  );
};

/** Where a counter stream stands: its last revision, the last number in use and the chain hash. */
export interface CounterState {
  readonly revision: bigint | 'no-stream';
  /** The highest number in use: 0 for a fresh sequence. */
  readonly value: number;
  readonly hash: string | undefined;
  /** The stream the last event allocated `value` to, when the last event is an allocation. */
  readonly allocatedTo?: string;
}

/**
 * Reads a counter stream's state off its last event: `SequenceNumberAllocated { number }` means
 * `number` is taken (for `streamId`, which may not be written yet), `SequenceNumberReleased
 * { number }` hands it back (so `number - 1` is the highest taken).
 */
export const counterStateOf = (last: ResolvedEvent | undefined, counterStream: string): CounterState => {
  const event = last?.event;
  if (!event) return { revision: 'no-stream', value: 0, hash: undefined };
  const number = isPlainObject(event.data) ? event.data.number : undefined;
  const valid = typeof number === 'number' && Number.isSafeInteger(number) && number >= 1;
  if (valid && event.type === SEQUENCE_NUMBER_ALLOCATED) {
    const streamId = (event.data as Record<string, unknown>).streamId;
    return {
      revision: event.revision,
      value: number,
      hash: previousHashAfter(counterStream, last),
      ...(typeof streamId === 'string' && streamId !== '' ? { allocatedTo: streamId } : {}),
    };
  }
  if (valid && event.type === SEQUENCE_NUMBER_RELEASED) {
    return { revision: event.revision, value: number - 1, hash: previousHashAfter(counterStream, last) };
  }
  throw new Error(
    `counter stream ${counterStream} ends with an event this adapter did not write: ${event.type} at revision ${event.revision}`,
  );
};
