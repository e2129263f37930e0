import { randomUUID } from 'node:crypto';
import {
  AccessDeniedError,
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  metastreamOf,
  START,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type AppendResult as ClientAppendResult,
  type EventData,
  type Position,
  type ReadPosition,
  type ReadStreamOptions,
  type ResolvedEvent,
  type StreamingRead,
} from '@eventstore/db-client';
import { chainMetadata, GENESIS_HASH } from '../../event-hash';
import {
  appendBytesOver,
  AppendOutcomeUnknownError,
  AppendTooLargeError,
  ConcurrencyError,
  EventStoreUnavailableError,
} from '../../event-store.errors';
import type {
  AppendResult,
  EventMetadata,
  EventStore,
  EventSubscription,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  RecordedEvent,
  SequencedStream,
  SubscribeOptions,
} from '../../event-store.port';
import { ANY_REPEAT_WINDOW } from '../../event-store.port';
import {
  backoffDelay,
  comparePositions,
  connectionStringProblem,
  counterStateOf,
  DEFAULT_CATEGORIES,
  describeError,
  isDefiniteRejection,
  isStreamDeleted,
  isStreamNotFound,
  isSystemEventType,
  isTransientError,
  isVisibleEvent,
  isWrongExpectedVersion,
  maxAppendSizeOf,
  positionOf,
  previousHashAfter,
  readStartAfter,
  redactConnectionString,
  shownConnectionString,
  connectionStringScheme,
  SEQUENCE_NUMBER_ALLOCATED,
  SEQUENCE_NUMBER_RELEASED,
  sequenceStreamId,
  streamPrefixFilter,
  toClientExpectedRevision,
  toConcurrencyError,
  toEventData,
  toPortPosition,
  toRecordedEvent,
  UNKNOWN_POSITION,
  type CounterState,
  type RetryPolicy,
} from './eventstoredb-mapping';

/** The part of the client this adapter uses (an in-memory double can stand in for it in tests). */
export type EventStoreDbClient = Pick<
  EventStoreDBClient,
  'appendToStream' | 'readStream' | 'readAll' | 'subscribeToAll' | 'dispose'
>;

export interface EventStoreDbLogger {
  warn(message: string): void;
  error(message: string): void;
}

export interface EventStoreDbEventStoreOptions {
  /**
   * Stream-id prefixes `readAll`, `headPosition` and an unfiltered `subscribeToAll` deliver.
   * Default: `changeRequest-` and `standardTemplate-`. System streams and `$` event types are
   * never delivered; the `sequence-` counter streams only when a subscription asks for them.
   */
  readonly categories?: readonly string[];
  /** Where retries and lost sequence numbers are reported. Default: console. */
  readonly logger?: EventStoreDbLogger;
  /** Retries of an operation that failed with a transient error. Default: 4 attempts, 100 ms .. 2 s. */
  readonly retry?: Partial<RetryPolicy>;
  /** Resubscriptions after a subscription dropped with a transient error. Default: 10 attempts, 200 ms .. 5 s. */
  readonly subscriptionRetry?: Partial<RetryPolicy>;
  /** Attempts of an 'any' append that keeps losing the race for the stream's next revision. Default: 10. */
  readonly anyAttempts?: number;
  /** Attempts to allocate a sequence number against writers in other processes. Default: 50. */
  readonly sequenceAttempts?: number;
  /** Events per `$all` read page (readAll, headPosition). Default: 500. */
  readonly pageSize?: number;
  /** Events a subscription buffers ahead of its consumer. Default: 64. */
  readonly subscriptionBufferSize?: number;
  /** How long `ping()` (and `connect()`) waits for the server. Default: 5 s. */
  readonly pingTimeoutMs?: number;
  /**
   * How long one read may take before it is cancelled and retried like a dropped connection
   * (the client gives reads no deadline: an overloaded or leaderless server would hold every
   * append, which reads first, for ever). Default: 30 s.
   */
  readonly readTimeoutMs?: number;
  /**
   * How long one append may go unanswered before it is sent again like a dropped connection
   * (with the same event ids at the same expected revision: a repeat the server answers as the
   * first, never a second copy). The server gives an append 10 s (the client's deadline); a
   * client stuck on a failed features check, or a connection that answers nothing, would hold
   * the command, and every later append to its stream, for ever. Default: 30 s.
   */
  readonly appendTimeoutMs?: number;
  /** Name of an injected client in messages (a connection string names itself). */
  readonly name?: string;
  /** For tests: the clock of the backoff waits, and the jitter source. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 };
const DEFAULT_SUBSCRIPTION_RETRY: RetryPolicy = { maxAttempts: 10, baseDelayMs: 200, maxDelayMs: 5_000 };
/** Backoff between optimistic-concurrency retries ('any' appends, sequence allocation). */
const CONFLICT_BACKOFF = { baseDelayMs: 5, maxDelayMs: 250 } as const;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One subscription: what it delivers, where it is, and how it stops. */
interface FollowState {
  readonly prefixes: readonly string[];
  readonly filter: ReturnType<typeof streamPrefixFilter> | undefined;
  /** The position of the last event seen (delivered or filtered out). */
  cursor: bigint;
  stopped: boolean;
  /** The client's subscription now open, if any. */
  current: AllStreamSubscription | undefined;
  readonly whenStopped: Promise<void>;
  close(): Promise<void>;
}

/** Parses a connection string, with an error message that does not leak its credentials. */
const clientFor = (connectionString: string): EventStoreDBClient => {
  // Refused before the client sees it: the client would print it whole, credentials included.
  const problem = connectionStringProblem(connectionString);
  const shown = shownConnectionString(connectionString);
  if (problem) throw new TypeError(`invalid EventStoreDB connection string ${shown}: ${problem}`);
  try {
    return EventStoreDBClient.connectionString(connectionString);
  } catch (error) {
    const redacted = redactConnectionString(connectionString);
    if (redacted === connectionString) {
      // No credentials taken out, so the string may hold some the client could not find (an @
      // forgotten): neither it nor the client's message, which quotes it from where it failed,
      // is shown; where it failed and what the client expected there are.
      const { location, expected } = error as { location?: unknown; expected?: unknown };
      const at = Array.isArray(location) && typeof location[0] === 'number' ? location[0] + 1 : undefined;
      throw new TypeError(
        `invalid EventStoreDB connection string ${connectionStringScheme(connectionString)}… (not shown: ` +
          `it may hold credentials): ${
            at === undefined
              ? describeError(error).replaceAll(connectionString, '…')
              : `the client cannot read it from character ${at}${typeof expected === 'string' ? ` (expected ${expected})` : ''}`
          }`,
      );
    }
    let reason = 'its credentials part is malformed';
    try {
      void EventStoreDBClient.connectionString(redacted).dispose();
    } catch (withoutCredentials) {
      reason = describeError(withoutCredentials);
    }
    throw new TypeError(`invalid EventStoreDB connection string ${shown}: ${reason}`);
  }
};

/**
 * Whether a refusal of a read or subscription from a position may be the server's refusal of
 * the position itself (not where an event begins), for which the fallback reads from the start.
 * Not a refusal of access, nor an event too large for the client: read from the start, those
 * fail the same way after the server has sent the whole log to be skipped.
 */
const mayBeRefusedPosition = (error: unknown): boolean =>
  !(error instanceof AccessDeniedError) &&
  !/RESOURCE_EXHAUSTED|larger than max/i.test(error instanceof Error ? error.message : String(error));

/**
 * The EventStore port on EventStoreDB (gRPC client v6, server 22.6 or later: older servers do
 * not report positions on stream reads).
 *
 * - Optimistic concurrency is EventStoreDB's own (expected revision mapped one to one), and so is
 *   idempotency: event ids are passed through, and a repeat at the same expected revision is a
 *   no-op that answers like the first append.
 * - The hash chain: before an append the stream's last event is read for its hash, and every new
 *   event gets `previousHash`/`hash` (as in the SQLite adapter). An 'any' append is sent with the
 *   revision it read as its expected revision, so two writers cannot fork the chain; the loser
 *   re-reads and retries (bounded).
 * - Positions are commit positions (see `toStorePosition`). Reads of `$all` are filtered to the
 *   categories on the client side: `readAll` of client v6 has no server-side filter.
 * - Transient failures (unavailable, deadline, not leader) are retried with exponential backoff
 *   and logged; after the last attempt they surface as EventStoreUnavailableError. Retrying an
 *   append resends the very same events at the same expected revision, which the server
 *   deduplicates if the first attempt landed after all.
 */
export class EventStoreDbEventStore implements EventStore {
  /** The user may not read stream metadata (logged once): see `hasMetadata`. */
  private metadataDenied = false;
  /** The server, without credentials, for messages. */
  readonly target: string;
  private readonly client: EventStoreDbClient;
  private readonly categories: readonly string[];
  private readonly logger: EventStoreDbLogger;
  private readonly retry: RetryPolicy;
  private readonly subscriptionRetry: RetryPolicy;
  private readonly anyAttempts: number;
  private readonly sequenceAttempts: number;
  private readonly pageSize: number;
  private readonly subscriptionBufferSize: number;
  private readonly pingTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly appendTimeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly subscriptions = new Set<{ close(): Promise<void> }>();
  /** Per sequence (allocations) and per stream ('any' appends): the tail of this process's queue. */
  private readonly queues = new Map<string, Promise<void>>();
  private warnedUnknownPosition = false;
  private closed = false;

  /**
   * Probes the server once (`ping`) and answers a store that can reach it, or throws an
   * EventStoreUnavailableError naming the server (without credentials).
   */
  static async connect(
    connectionString: string,
    options: EventStoreDbEventStoreOptions = {},
  ): Promise<EventStoreDbEventStore> {
    const store = new EventStoreDbEventStore(connectionString, options);
    try {
      await store.ping();
      return store;
    } catch (error) {
      await store.close().catch(() => undefined);
      const cause =
        error instanceof EventStoreUnavailableError && error.cause !== undefined ? error.cause : error;
      throw new EventStoreUnavailableError(
        `cannot reach EventStoreDB at ${store.target}: ${describeError(cause)}`,
        { cause },
      );
    }
  }

  /** From a connection string (`esdb://host:2113?tls=false`) or a client. Does not connect yet. */
  constructor(connection: string | EventStoreDbClient, options: EventStoreDbEventStoreOptions = {}) {
    if (typeof connection === 'string') {
      this.target = redactConnectionString(connection);
      this.client = clientFor(connection);
    } else {
      this.target = options.name ?? 'an injected EventStoreDB client';
      this.client = connection;
    }
    this.categories = [...(options.categories ?? DEFAULT_CATEGORIES)];
    streamPrefixFilter(this.categories); // validates them
    this.logger = options.logger ?? console;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.subscriptionRetry = { ...DEFAULT_SUBSCRIPTION_RETRY, ...options.subscriptionRetry };
    this.anyAttempts = options.anyAttempts ?? 10;
    this.sequenceAttempts = options.sequenceAttempts ?? 50;
    this.pageSize = options.pageSize ?? 500;
    this.subscriptionBufferSize = options.subscriptionBufferSize ?? 64;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 5_000;
    this.readTimeoutMs = options.readTimeoutMs ?? 30_000;
    this.appendTimeoutMs = options.appendTimeoutMs ?? 30_000;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    for (const [name, value] of Object.entries({
      'retry.maxAttempts': this.retry.maxAttempts,
      'subscriptionRetry.maxAttempts': this.subscriptionRetry.maxAttempts,
      anyAttempts: this.anyAttempts,
      sequenceAttempts: this.sequenceAttempts,
      pageSize: this.pageSize,
      subscriptionBufferSize: this.subscriptionBufferSize,
    })) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new TypeError(`${name} must be a positive integer, got ${value}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // append

  async append(
    streamId: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    this.assertOpen();
    toClientExpectedRevision(expected); // validates it
    if (events.length === 0) return this.checkRevision(streamId, expected);
    // 'any' appends to one stream from this process would only race each other: queue them.
    if (expected === 'any') return this.queued(`stream:${streamId}`, () => this.appendAny(streamId, events));
    return this.appendExpected(streamId, events, expected);
  }

  /**
   * Counter stream `sequence-<name>` holds one `SequenceNumberAllocated { number, streamId }`
   * per allocation. To allocate: read its last event; if that allocation's stream was never
   * written, take its number again, else the next one; append the allocation at the revision
   * read (another allocator got there first: re-read and retry, bounded), then create the
   * number's stream with 'no-stream', which is what makes a number unique: of two allocators
   * holding the same number, one creates the stream and the other moves on to the next number.
   * Allocations of one sequence are queued within this process.
   *
   * Gap-free without multi-stream transactions: a crash, or a lost connection, between the
   * allocation and the stream's append leaves the allocation without its stream, and the next
   * allocation takes that number again. A stream append that is refused (not a conflict) hands
   * the number back with `SequenceNumberReleased`. What remains: a number whose stream `build`
   * names differently for the next allocator is not taken again (logged as a gap); the real
   * sequences name their streams by number, so that does not happen.
   *
   * Soft deletes (an operator's `deleteStream`): the stream reads as absent, yet the server
   * takes a 'no-stream' append to it, after its old events. A stream with metadata (a soft
   * delete writes `$tb` there) counts as used; a counter stream read as absent with metadata has
   * lost its count, which is found again from the numbers' streams (see `recoverCounter`).
   */
  async appendWithSequence(
    spec: SequencedStream,
  ): Promise<AppendResult & { number: number; streamId: string }> {
    this.assertOpen();
    return this.queued(`sequence:${spec.sequence}`, () => this.allocateAndAppend(spec));
  }

  // -------------------------------------------------------------------------------------------
  // read

  async readStream(streamId: string, options: { fromRevision?: bigint } = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const resolved = await this.readStreamResolved(`read ${streamId}`, streamId, {
      direction: FORWARDS,
      fromRevision: options.fromRevision ?? START,
    });
    return resolved.filter((r) => r.event && !isSystemEventType(r.event.type)).map((r) => this.toRecorded(r));
  }

  /**
   * The global log after `after` (exclusive), only the categories' events, in pages of `$all`.
   * A forward read from `{ commit: after, prepare: after }` starts at the event at `after`,
   * which is skipped; every page after the first starts at the last event of the one before.
   */
  async readAll({ after, limit }: ReadAllOptions): Promise<RecordedEvent[]> {
    this.assertOpen();
    const out: RecordedEvent[] = [];
    if (limit <= 0) return out;
    const lower = after ?? 0n;
    const start = readStartAfter(after);
    let last: Position | undefined = start === START ? undefined : (start as Position);
    let from: ReadPosition = start;
    // At least 2: a page that starts at `after` holds that event again, and needs room for one more.
    let maxCount = Math.max(2, Math.min(this.pageSize, limit + 16));
    for (;;) {
      let page: AllStreamResolvedEvent[];
      try {
        page = await this.readAllPage('readAll', from, FORWARDS, maxCount);
      } catch (error) {
        // The server reads the log from a byte offset and refuses one that is not where an event
        // begins: `after` from a caller (GET /audit/events?after=) that is not an event's
        // position. Events after it are then found from the start of the log (slow, but right).
        const unreachable = isTransientError(error) || error instanceof EventStoreUnavailableError;
        if (from === START || from !== start || unreachable || !mayBeRefusedPosition(error)) throw error;
        this.logger.warn(
          `EventStoreDB at ${this.target} refused to read $all from position ${lower} ` +
            `(${describeError(error)}); reading from the start of the log instead`,
        );
        from = START;
        last = undefined;
        continue;
      }
      let moved = false;
      for (const resolved of page) {
        const position = resolved.event?.position;
        if (!resolved.event || !position || (last && comparePositions(position, last) <= 0)) continue;
        last = position;
        moved = true;
        if (toPortPosition(position) <= lower) continue;
        if (!isVisibleEvent(this.categories, resolved.event.streamId, resolved.event.type)) continue;
        out.push(this.toRecorded(resolved));
        if (out.length >= limit) return out;
      }
      if (page.length < maxCount || !moved || !last) return out;
      from = last;
      maxCount = Math.max(2, Math.min(this.pageSize, maxCount * 2));
    }
  }

  /**
   * The first stream metadata, on a stream of the categories, that hides events from the
   * stream's reads: a delete or a truncation (`$tb`), `$maxCount` or `$maxAge`. The service writes
   * none, and until a scavenge the hidden events stay in `$all`, where verify's pass sees every
   * chain whole. (A stream the service wrote again after an operator's delete gets such metadata
   * from the server itself: reported too, the delete having hidden what came before.) One more
   * pass over `$all`, filtered here as `readAll` is.
   */
  async hiddenByStreamMetadata(): Promise<
    { streamId: string; position: bigint; metadata: string } | undefined
  > {
    this.assertOpen();
    let from: ReadPosition = START;
    let last: Position | undefined;
    for (;;) {
      const page = await this.readAllPage('hiddenByStreamMetadata', from, FORWARDS, this.pageSize);
      let moved = false;
      for (const resolved of page) {
        const event = resolved.event;
        const position = event?.position;
        if (!event || !position || (last && comparePositions(position, last) <= 0)) continue;
        last = position;
        moved = true;
        if (event.type !== '$metadata' || !event.streamId.startsWith('$$')) continue;
        const streamId = event.streamId.slice(2);
        if (!this.categories.some((prefix) => streamId.startsWith(prefix))) continue;
        const data = event.data as Record<string, unknown> | string | undefined;
        const fields = typeof data === 'object' && data !== null ? data : {};
        if (['$tb', '$maxCount', '$maxAge'].some((key) => key in fields)) {
          return { streamId, position: toPortPosition(position), metadata: JSON.stringify(fields) };
        }
      }
      if (page.length < this.pageSize || !moved || !last) return undefined;
      from = last;
    }
  }

  /**
   * The position of the newest event `readAll` would answer (so a reader that got there has
   * caught up), 0n when there is none: `$all` backwards, skipping system and foreign events.
   */
  async headPosition(): Promise<bigint> {
    this.assertOpen();
    let before: Position | undefined;
    let maxCount = Math.min(this.pageSize, 32);
    for (;;) {
      const page = await this.readAllPage('headPosition', before ?? END, BACKWARDS, maxCount);
      for (const resolved of page) {
        const position = resolved.event?.position;
        if (!resolved.event || !position) continue;
        if (before && comparePositions(position, before) >= 0) continue;
        if (isVisibleEvent(this.categories, resolved.event.streamId, resolved.event.type))
          return toPortPosition(position);
      }
      const oldest = page.at(-1)?.event?.position;
      if (page.length < maxCount || !oldest) return 0n;
      before = oldest;
      maxCount = Math.min(this.pageSize, maxCount * 4);
    }
  }

  /**
   * Catch-up then live, from `after` (exclusive), through a server-side stream-prefix filter.
   * The client's subscription is a Node Readable read as an async iterable: the server sends
   * more only as the consumer pulls (back-pressure). A subscription dropped by a transient error
   * is resumed from the last position seen (bounded retries with backoff, logged).
   */
  subscribeToAll(options: SubscribeOptions = {}): EventSubscription {
    this.assertOpen();
    const prefixes = [...(options.streamPrefixes ?? this.categories)];
    const filter = prefixes.length > 0 ? streamPrefixFilter(prefixes) : undefined;
    let onStop: () => void = () => undefined;
    const state: FollowState = {
      prefixes,
      filter,
      cursor: options.after ?? 0n,
      stopped: false,
      current: undefined,
      whenStopped: new Promise<void>((resolve) => (onStop = resolve)),
      close: async () => {
        if (state.stopped) return;
        state.stopped = true;
        this.subscriptions.delete(state);
        onStop();
        const subscription = state.current;
        state.current = undefined;
        await subscription?.unsubscribe().catch(() => undefined);
      },
    };
    this.subscriptions.add(state);
    const iterator = this.follow(state);
    return { close: state.close, [Symbol.asyncIterator]: () => iterator };
  }

  // -------------------------------------------------------------------------------------------
  // lifecycle

  /** A cheap read of `$all` (backwards, one event), bounded by `pingTimeoutMs`; not retried. */
  async ping(): Promise<void> {
    this.assertOpen();
    const read = this.client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 });
    try {
      await this.drainWithin(read, this.pingTimeoutMs);
    } catch (error) {
      if (error instanceof ReadTimeoutError) {
        throw new EventStoreUnavailableError(
          `EventStoreDB at ${this.target} did not answer within ${this.pingTimeoutMs} ms`,
          { cause: error },
        );
      }
      if (!isTransientError(error)) throw error;
      throw new EventStoreUnavailableError(
        `EventStoreDB at ${this.target} is unavailable: ${describeError(error)}`,
        { cause: error },
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await this.client.dispose();
  }

  // -------------------------------------------------------------------------------------------
  // subscription internals

  private async *follow(state: FollowState): AsyncGenerator<RecordedEvent> {
    try {
      if (!state.filter) return await state.whenStopped; // no prefix: nothing to deliver until closed
      let failures = 0;
      // Set when the server refused to start after the cursor (not where an event begins, as in
      // readAll): until the cursor moves, subscribe from the start and skip what lies before it.
      let fromStart = false;
      while (!state.stopped) {
        let advanced = false;
        const subscription = this.client.subscribeToAll(
          { fromPosition: fromStart ? START : readStartAfter(state.cursor), filter: state.filter },
          { highWaterMark: this.subscriptionBufferSize },
        );
        state.current = subscription;
        // Confirmed by the server: the connection works again, so a later drop starts the count
        // anew (else drops on a quiet log, with no event in between, would add up to giving up).
        subscription.on('confirmation', () => {
          failures = 0;
        });
        try {
          for await (const resolved of subscription) {
            if (state.stopped) return;
            const position = positionOf(resolved);
            if (!resolved.event || position === undefined || position <= state.cursor) continue;
            state.cursor = position;
            advanced = true;
            fromStart = false; // the cursor is an event's position now
            failures = 0;
            if (!isVisibleEvent(state.prefixes, resolved.event.streamId, resolved.event.type)) continue;
            yield this.toRecorded(resolved);
            if (state.stopped) return;
          }
          if (state.stopped) return;
          throw new EventStoreUnavailableError('the server ended the subscription');
        } catch (error) {
          if (state.stopped) return;
          const transient = isTransientError(error) || error instanceof EventStoreUnavailableError;
          if (!transient && !advanced && !fromStart && state.cursor > 0n && mayBeRefusedPosition(error)) {
            this.logger.warn(
              `EventStoreDB at ${this.target} refused to subscribe to $all after position ${state.cursor} ` +
                `(${describeError(error)}); subscribing from the start of the log instead`,
            );
            fromStart = true;
            continue;
          }
          failures += 1;
          if (!transient || failures >= this.subscriptionRetry.maxAttempts) {
            this.logger.error(
              `EventStoreDB subscription to $all at ${this.target} failed after ${failures} attempt(s): ${describeError(error)}`,
            );
            throw transient ? this.unavailable('subscribeToAll', failures, error) : error;
          }
          const delay = backoffDelay(failures, this.subscriptionRetry, this.random);
          this.logger.warn(
            `EventStoreDB subscription to $all at ${this.target} dropped (${describeError(error)}); ` +
              `resubscribing after position ${state.cursor} in ${delay} ms (retry ${failures} of ${this.subscriptionRetry.maxAttempts - 1})`,
          );
          await Promise.race([this.sleep(delay), state.whenStopped]);
        } finally {
          if (state.current === subscription) state.current = undefined;
          await subscription.unsubscribe().catch(() => undefined);
        }
      }
    } finally {
      await state.close();
    }
  }

  // -------------------------------------------------------------------------------------------
  // append internals

  /** An append of no events only checks the expected revision, as the SQLite adapter does. */
  private async checkRevision(streamId: string, expected: ExpectedRevision): Promise<AppendResult> {
    const last = await this.lastEvent(streamId);
    const actual = last?.event ? last.event.revision : 'no-stream';
    const matches =
      expected === 'any' || (expected === 'no-stream' ? actual === 'no-stream' : actual === expected);
    if (!matches) throw new ConcurrencyError(streamId, expected, actual);
    return { nextExpectedRevision: actual === 'no-stream' ? -1n : actual, position: 0n };
  }

  /**
   * 'no-stream' needs no read (the chain starts at genesis). For an exact revision the last
   * event gives the previous hash. A stream past that revision is sent anyway: the server finds
   * the append a repeat (same ids: the first answer) or rejects it, and writes nothing either
   * way. A stream short of it is refused here: sent, it would be stored with the wrong previous
   * hash if another writer brought the stream to that revision in between.
   */
  private async appendExpected(
    streamId: string,
    events: readonly NewEvent[],
    expected: 'no-stream' | bigint,
  ): Promise<AppendResult> {
    let previousHash = GENESIS_HASH;
    if (expected !== 'no-stream') {
      const last = await this.lastEvent(streamId);
      if (!last?.event || last.event.revision < expected) {
        throw new ConcurrencyError(streamId, expected, last?.event ? last.event.revision : 'no-stream');
      }
      previousHash = previousHashAfter(streamId, last);
    }
    const firstRevision = expected === 'no-stream' ? 0n : expected + 1n;
    const { data } = this.chain(streamId, events, firstRevision, previousHash);
    return this.appendChained(streamId, data, expected);
  }

  /**
   * 'any' on the server would let two writers chain onto the same last event. Instead: read the
   * stream's tail, append at the revision read, and on a conflict (a writer in another process)
   * start over (bounded). The
   * tail also answers a repeat of a recent append (same event ids: no-op, like the first answer;
   * the same first id with other events: ConcurrencyError), which the server's own 'any'
   * deduplication would have caught and an exact revision no longer does.
   */
  private async appendAny(streamId: string, events: readonly NewEvent[]): Promise<AppendResult> {
    for (let attempt = 1; ; attempt++) {
      const tail = await this.tailOf(streamId, events.length + ANY_REPEAT_WINDOW);
      const last = tail.at(-1);
      const actual = last?.event ? last.event.revision : 'no-stream';
      const repeat = findRepeat(tail, events);
      if (repeat === 'conflict') throw new ConcurrencyError(streamId, 'any', actual);
      if (repeat)
        return {
          nextExpectedRevision: repeat.revision,
          position: repeat.position ?? (await this.positionAt(streamId, repeat.revision)),
        };
      const firstRevision = actual === 'no-stream' ? 0n : actual + 1n;
      const { data } = this.chain(streamId, events, firstRevision, previousHashAfter(streamId, last));
      try {
        return await this.appendChained(streamId, data, actual);
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        if (attempt >= this.anyAttempts) {
          this.logger.error(
            `EventStoreDB append to ${streamId} with 'any' lost the race for the next revision ${attempt} times; giving up`,
          );
          throw new ConcurrencyError(streamId, 'any', error.actual);
        }
        await this.sleep(backoffDelay(attempt, CONFLICT_BACKOFF, this.random));
      }
    }
  }

  /**
   * Adds `previousHash`/`hash` to each event's metadata, from `previousHash` at `firstRevision`.
   * AppendTooLargeError over MAX_APPEND_BYTES (the JSON the client sends), before anything is sent.
   */
  private chain(streamId: string, events: readonly NewEvent[], firstRevision: bigint, previousHash: string) {
    let hash = previousHash;
    let revision = firstRevision;
    const texts: string[] = [];
    const data: EventData[] = events.map((event) => {
      const metadata = chainMetadata(
        { streamId, revision, type: event.type, data: event.data, metadata: event.metadata },
        hash,
      );
      hash = metadata.hash as string;
      revision += 1n;
      texts.push(event.type, JSON.stringify(event.data) ?? '', JSON.stringify(metadata));
      return toEventData({ ...event, metadata });
    });
    const bytes = appendBytesOver(texts);
    if (bytes !== undefined) throw new AppendTooLargeError(streamId, bytes);
    return { data, lastHash: hash };
  }

  /** Sends chained events at an exact expected revision; retries transient failures with the same events. */
  private async appendChained(
    streamId: string,
    data: EventData[],
    expected: 'no-stream' | bigint,
  ): Promise<AppendResult> {
    const expectedRevision = toClientExpectedRevision(expected);
    let result: ClientAppendResult;
    try {
      result = await this.withRetry(`append to ${streamId}`, () =>
        this.answeredWithin(
          this.client.appendToStream(streamId, data, { expectedRevision }),
          this.appendTimeoutMs,
        ),
      );
    } catch (error) {
      if (isWrongExpectedVersion(error)) throw toConcurrencyError(error, streamId, expected);
      // a server whose MaxAppendSize is set below MAX_APPEND_BYTES
      const limit = maxAppendSizeOf(error);
      if (limit !== undefined) throw new AppendTooLargeError(streamId, undefined, limit);
      throw error;
    }
    if (!result.success) {
      // Only with throwOnAppendFailure=false in the connection string. The client then answers
      // instead of throwing, and its batch-append path misreports the current revision (6.2.1),
      // so the stream is asked.
      const last = await this.lastEvent(streamId);
      throw new ConcurrencyError(streamId, expected, last?.event ? last.event.revision : 'no-stream');
    }
    const chainedUpTo = (expected === 'no-stream' ? -1n : expected) + BigInt(data.length);
    if (result.nextExpectedRevision !== chainedUpTo) {
      // A soft-deleted or truncated stream ($tb): the server went on numbering where the old
      // stream ended, past the revisions the hashes cover. Stored now; auditors must hear of it.
      this.logger.error(
        `EventStoreDB append to ${streamId}: stored up to revision ${result.nextExpectedRevision}, chained up to ${chainedUpTo} ` +
          '(the stream was soft-deleted or truncated): its hash chain will not verify from here',
      );
    }
    const position = result.position
      ? toPortPosition(result.position)
      : await this.positionAt(streamId, result.nextExpectedRevision);
    return { nextExpectedRevision: result.nextExpectedRevision, position };
  }

  /**
   * Takes the counter's next number with an allocation event, then writes the number's stream
   * with 'no-stream': that append is what makes a number unique. No transaction spans the two,
   * so an allocation can be left without its stream (the process crashed, or could not know
   * whether the stream was written): the next allocation then takes that number again, so the
   * crash leaves no gap. If the first allocator was only slow, one of the two streams' appends
   * fails, and its allocator moves on to the next number.
   */
  private async allocateAndAppend(
    spec: SequencedStream,
  ): Promise<AppendResult & { number: number; streamId: string }> {
    const counterStream = sequenceStreamId(spec.sequence);
    const retryOrGiveUp = async (attempt: number, error: unknown, why: string) => {
      if (attempt >= this.sequenceAttempts) {
        this.logger.error(
          `EventStoreDB sequence ${spec.sequence}: no number allocated after ${attempt} attempts (${why})`,
        );
        throw error;
      }
      await this.sleep(backoffDelay(attempt, CONFLICT_BACKOFF, this.random));
    };
    // Streams found to exist when this call wrote them: never taken again, even if a read says
    // they are absent (a stream truncated by $maxCount, or one this user may not read).
    const conflicted = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      // No transaction spans streams here: checked just before the number is taken.
      for (const read of spec.unchanged ?? []) {
        const last = await this.lastEvent(read.streamId);
        const actual = last?.event ? last.event.revision : 'no-stream';
        if (actual !== read.revision) throw new ConcurrencyError(read.streamId, read.revision, actual);
      }
      let counter = counterStateOf(await this.lastEvent(counterStream), counterStream);
      if (counter.revision === 'no-stream' && (await this.hasMetadata(counterStream)))
        counter = await this.recoverCounter(spec, counterStream);
      const { number, streamId, events } = await this.nextNumber(spec, counter, conflicted);
      if (events.length === 0)
        throw new TypeError(`appendWithSequence: the stream for number ${number} has no events`);
      // The new stream's events, chained from the genesis hash (what appendExpected does for
      // 'no-stream'): invalid or too large ones fail here, before a number is taken.
      const stream = this.chain(streamId, events, 0n, GENESIS_HASH);
      const metadata = bookkeepingMetadata(events[0].metadata);
      const allocation = this.chain(
        counterStream,
        [{ eventId: randomUUID(), type: SEQUENCE_NUMBER_ALLOCATED, data: { number, streamId }, metadata }],
        counter.revision === 'no-stream' ? 0n : counter.revision + 1n,
        counter.hash ?? GENESIS_HASH,
      );
      // Where the server stored it: past revision 0 in a soft-deleted counter stream.
      let allocationRevision: bigint;
      try {
        allocationRevision = (await this.appendChained(counterStream, allocation.data, counter.revision))
          .nextExpectedRevision;
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        await retryOrGiveUp(attempt, error, 'contention');
        continue;
      }
      if (await this.hasMetadata(streamId)) {
        // Soft-deleted (or truncated): it reads as absent, but was written ('no-stream' would
        // write into it, after its old events). Its number is used.
        this.logger.error(
          `EventStoreDB sequence ${spec.sequence}: ${streamId} was soft-deleted on the server; its number ${number} is skipped`,
        );
        conflicted.add(streamId);
        const why = `${streamId} was soft-deleted`;
        await retryOrGiveUp(attempt, new Error(`${why} on the server (it has metadata)`), why);
        continue;
      }
      try {
        const result = await this.appendChained(streamId, stream.data, 'no-stream');
        const firstRevision = result.nextExpectedRevision - BigInt(events.length) + 1n;
        if (firstRevision !== 0n) {
          // Soft-deleted by an operator between the check and this append: the server stored
          // the events after the old ones. They are this creation's only copy: it is answered
          // with this number (writing them again under the next one would create the change
          // twice), and the operator is told.
          this.logger.error(
            `EventStoreDB sequence ${spec.sequence}: ${streamId} was soft-deleted while number ${number} was being ` +
              `created: the server stored its events at revision ${firstRevision}, after the deleted ones; ` +
              'the stream needs an operator (commands on it will conflict)',
          );
        }
        return { ...result, number, streamId };
      } catch (error) {
        if (error instanceof ConcurrencyError) {
          // The number's stream exists: written by an allocator that was slow, not gone (or
          // outside the sequence). The number is used; the next attempt takes the one after it.
          conflicted.add(streamId);
          await retryOrGiveUp(attempt, error, `${streamId} exists`);
          continue;
        }
        if (isStreamDeleted(error)) {
          // An operator hard-deleted the number's stream: the name is gone for good, so is the
          // number (taking it again would fail for ever). Handing it back is not an option.
          this.logger.error(
            `EventStoreDB sequence ${spec.sequence}: ${streamId} was deleted on the server; its number ${number} is skipped`,
          );
          conflicted.add(streamId);
          await retryOrGiveUp(attempt, error, `${streamId} was deleted`);
          continue;
        }
        if (isDefiniteRejection(error)) {
          await this.releaseNumber(
            spec.sequence,
            number,
            streamId,
            allocationRevision,
            allocation.lastHash,
            metadata,
            error,
          );
          throw error;
        }
        this.logger.error(
          `EventStoreDB sequence ${spec.sequence}: number ${number} was allocated, but whether ${streamId} was written is unknown ` +
            `(${describeError(error)}); if it was not, the next allocation takes the number again`,
        );
        throw new AppendOutcomeUnknownError(streamId, { cause: error });
      }
    }
  }

  /**
   * The number to allocate and its stream: the last allocated number again when its stream was
   * never written (and `build` names the same stream for it), else the next one.
   */
  private async nextNumber(
    spec: SequencedStream,
    counter: CounterState,
    conflicted: ReadonlySet<string>,
  ): Promise<{ number: number; streamId: string; events: readonly NewEvent[] }> {
    const last = counter.allocatedTo;
    if (last !== undefined && !conflicted.has(last) && (await this.neverWritten(last))) {
      const again = spec.build(counter.value); // may throw: nothing is written yet
      if (again.streamId === last) return { number: counter.value, ...again };
    }
    const number = counter.value + 1;
    return { number, ...spec.build(number) };
  }

  /** Hands a number back, possible only while its allocation is still the counter's last event. */
  private async releaseNumber(
    sequence: string,
    number: number,
    streamId: string,
    allocationRevision: bigint,
    allocationHash: string,
    metadata: EventMetadata,
    cause: unknown,
  ): Promise<void> {
    const counterStream = sequenceStreamId(sequence);
    const release = this.chain(
      counterStream,
      [
        {
          eventId: randomUUID(),
          type: SEQUENCE_NUMBER_RELEASED,
          data: { number, streamId, reason: describeError(cause) },
          metadata,
        },
      ],
      allocationRevision + 1n,
      allocationHash,
    );
    try {
      await this.appendChained(counterStream, release.data, allocationRevision);
    } catch (error) {
      // What came after the allocation: this number taken again or handed back after all (the
      // answer was lost), nothing (the next allocation takes it again), or only the next number
      // (another stream name for it: a gap).
      const later = await this.readStream(counterStream, { fromRevision: allocationRevision + 1n }).catch(
        () => undefined,
      );
      const settled = later?.some(
        (e) =>
          (e.type === SEQUENCE_NUMBER_ALLOCATED || e.type === SEQUENCE_NUMBER_RELEASED) &&
          e.data.number === number,
      );
      if (settled) return;
      if (later?.length === 0) {
        // Nothing came after it: the next allocation finds no stream for it and takes it again.
        this.logger.error(
          `EventStoreDB sequence ${sequence}: number ${number} could not be handed back (${describeError(error)}); ` +
            `${streamId} was not written (${describeError(cause)}), so the next allocation takes it again`,
        );
        return;
      }
      this.logger.error(
        `EventStoreDB sequence ${sequence}: number ${number} ${later ? 'is lost (a gap)' : 'may be lost (a gap)'}: ` +
          `${streamId} was not written (${describeError(cause)}) and the number could not be handed back (${describeError(error)})`,
      );
    }
  }

  /** Runs `task` after every earlier task of the same key in this process has finished. */
  private async queued<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    let done: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = previous.then(() => mine);
    this.queues.set(key, tail);
    try {
      await previous;
      return await task();
    } finally {
      done();
      if (this.queues.get(key) === tail) this.queues.delete(key);
    }
  }

  // -------------------------------------------------------------------------------------------
  // read internals

  private async readStreamResolved(
    operation: string,
    streamId: string,
    options: ReadStreamOptions,
    { deletedIsEmpty = true } = {},
  ): Promise<ResolvedEvent[]> {
    return this.withRetry(operation, async () => {
      try {
        return await this.drainWithin(this.client.readStream(streamId, options));
      } catch (error) {
        if (isStreamNotFound(error) || (deletedIsEmpty && isStreamDeleted(error))) return [];
        throw error;
      }
    });
  }

  /**
   * Whether a numbered stream was never written (its number may be taken again): absent, not
   * hard-deleted (a deleted name can never be written again), and without metadata (a soft
   * delete reads as absent, but leaves `$tb` there).
   */
  private async neverWritten(streamId: string): Promise<boolean> {
    try {
      if ((await this.lastEvent(streamId, { deletedIsEmpty: false })) !== undefined) return false;
    } catch (error) {
      if (isStreamDeleted(error)) return false;
      throw error;
    }
    return !(await this.hasMetadata(streamId));
  }

  /** Whether the stream's metadata stream (`$$<stream>`) holds anything. */
  private async hasMetadata(streamId: string): Promise<boolean> {
    try {
      return (await this.lastEvent(metastreamOf(streamId))) !== undefined;
    } catch (error) {
      // A server whose default ACL keeps stream metadata from this user ($mr): the soft-delete
      // check cannot be made, creations go on (a soft-deleted number is still caught after its
      // append, by the revision it landed at).
      if (!(error instanceof AccessDeniedError)) throw error;
      if (!this.metadataDenied) {
        this.metadataDenied = true;
        this.logger.warn(
          `EventStoreDB: this user may not read stream metadata (${metastreamOf(streamId)}: access denied), so soft-deleted numbers are found only after writing to them; grant $mr to check before`,
        );
      }
      return false;
    }
  }

  /**
   * The count of a counter stream that reads as absent but has metadata: an operator
   * soft-deleted (or truncated) it, and its allocations are gone. The numbers' streams are not
   * (a deleted one counts as used), and numbers are used from 1 without gaps: the highest used
   * one is found by doubling, then bisecting. A gap would at worst hand out an unused number.
   */
  private async recoverCounter(spec: SequencedStream, counterStream: string): Promise<CounterState> {
    const probed = new Map<string, number>();
    const used = async (n: number) => {
      const { streamId } = spec.build(n);
      // a build naming one stream for two numbers would make the doubling go on for ever
      const earlier = probed.get(streamId);
      if (earlier !== undefined && earlier !== n) {
        throw new TypeError(
          `appendWithSequence: numbers ${earlier} and ${n} name the same stream ${streamId}`,
        );
      }
      probed.set(streamId, n);
      return !(await this.neverWritten(streamId));
    };
    let highestUsed = 0;
    let unused = 1;
    while (await used(unused)) {
      highestUsed = unused;
      unused *= 2;
    }
    while (unused - highestUsed > 1) {
      const middle = Math.floor((highestUsed + unused) / 2);
      if (await used(middle)) highestUsed = middle;
      else unused = middle;
    }
    this.logger.error(
      `EventStoreDB sequence ${spec.sequence}: counter stream ${counterStream} reads as absent but has metadata ` +
        `(soft-deleted or truncated on the server), so its count is lost; numbering goes on after ${highestUsed}, ` +
        `the highest number whose stream was written`,
    );
    return { revision: 'no-stream', value: highestUsed, hash: undefined };
  }

  /**
   * The stream's last event, from the leader (`requiresLeader`): appends chain onto it, and a
   * follower that lags (nodePreference=follower) would answer an older one, which the leader
   * would then accept at the right expected revision with a wrong previous hash.
   */
  private async lastEvent(
    streamId: string,
    { deletedIsEmpty = true } = {},
  ): Promise<ResolvedEvent | undefined> {
    const [last] = await this.readStreamResolved(
      `read the last event of ${streamId}`,
      streamId,
      { direction: BACKWARDS, fromRevision: END, maxCount: 1, requiresLeader: true },
      { deletedIsEmpty },
    );
    return last;
  }

  /** The stream's last `count` events, oldest first, from the leader (see `lastEvent`). */
  private async tailOf(streamId: string, count: number): Promise<ResolvedEvent[]> {
    const newestFirst = await this.readStreamResolved(`read the tail of ${streamId}`, streamId, {
      direction: BACKWARDS,
      fromRevision: END,
      maxCount: count,
      requiresLeader: true,
    });
    return newestFirst.reverse();
  }

  /** The position of the event at `revision`, for answers the server gave without one. */
  private async positionAt(streamId: string, revision: bigint): Promise<bigint> {
    // From the leader: the append just happened there, and a lagging follower would not have it.
    const [event] = await this.readStreamResolved(`read ${streamId}@${revision}`, streamId, {
      direction: BACKWARDS,
      fromRevision: revision,
      maxCount: 1,
      requiresLeader: true,
    });
    return event ? this.toRecorded(event).position : UNKNOWN_POSITION;
  }

  private readAllPage(
    operation: string,
    fromPosition: ReadPosition,
    direction: typeof FORWARDS | typeof BACKWARDS,
    maxCount: number,
  ) {
    return this.withRetry(operation, () =>
      this.drainWithin(this.client.readAll({ fromPosition, direction, maxCount })),
    );
  }

  /**
   * Drains a read, cancelling it after `timeoutMs` (the client gives reads no deadline) with a
   * ReadTimeoutError: `withRetry` tries again, then reports the server unavailable; `ping`
   * names the wait instead.
   */
  private async drainWithin<E>(read: StreamingRead<E>, timeoutMs = this.readTimeoutMs): Promise<E[]> {
    // close() disposes the client, which cancels the reads under way: the client ends a cancelled
    // read as if it were done (what came so far is not the whole answer), or with an error
    const closedMeanwhile = (cause?: unknown) =>
      new EventStoreUnavailableError('the event store was closed during a read', { cause });
    let items: E[];
    try {
      items = await this.answeredWithin(
        drain(read),
        timeoutMs,
        () => void read.cancel().catch(() => undefined),
      );
    } catch (error) {
      throw this.closed ? closedMeanwhile(error) : error;
    }
    if (this.closed) throw closedMeanwhile();
    return items;
  }

  /**
   * `call`'s answer, or a ReadTimeoutError (transient: `withRetry` tries again) after `timeoutMs`,
   * when `onTimeout` runs first (a read cancels itself).
   */
  private async answeredWithin<T>(call: Promise<T>, timeoutMs: number, onTimeout?: () => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        call,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            onTimeout?.();
            reject(new ReadTimeoutError(timeoutMs));
          }, timeoutMs);
          timer.unref(); // a call under way does not keep a stopping process alive
        }),
      ]);
    } catch (error) {
      call.catch(() => undefined); // an answer that comes after all is not an unhandled rejection
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private toRecorded(resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent {
    if (positionOf(resolved) === undefined && !this.warnedUnknownPosition) {
      this.warnedUnknownPosition = true;
      this.logger.warn(
        `EventStoreDB at ${this.target} reports no $all position on stream reads (servers before 22.6); ` +
          `such events carry position ${UNKNOWN_POSITION}`,
      );
    }
    return toRecordedEvent(resolved);
  }

  // -------------------------------------------------------------------------------------------
  // retries

  private async withRetry<T>(operation: string, action: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await action();
      } catch (error) {
        if (!isTransientError(error)) throw error;
        if (attempt >= this.retry.maxAttempts || this.closed) {
          this.logger.error(
            `EventStoreDB ${operation} at ${this.target} failed after ${attempt} attempt(s): ${describeError(error)}`,
          );
          throw this.unavailable(operation, attempt, error);
        }
        const delay = backoffDelay(attempt, this.retry, this.random);
        this.logger.warn(
          `EventStoreDB ${operation} at ${this.target} failed (${describeError(error)}); ` +
            `retry ${attempt} of ${this.retry.maxAttempts - 1} in ${delay} ms`,
        );
        await this.sleep(delay);
        this.assertOpen();
      }
    }
  }

  private unavailable(operation: string, attempts: number, cause: unknown) {
    return new EventStoreUnavailableError(
      `EventStoreDB at ${this.target} is unavailable: ${operation} failed after ${attempts} attempt(s) (${describeError(cause)})`,
      { cause },
    );
  }

  private assertOpen() {
    if (this.closed) throw new EventStoreUnavailableError('the event store is closed');
  }
}

/**
 * A read this adapter cancelled for taking too long: transient (`ETIMEDOUT`, as a socket
 * timeout), so `withRetry` tries again.
 */
class ReadTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

async function drain<E>(read: StreamingRead<E>): Promise<E[]> {
  const out: E[] = [];
  for await (const item of read) out.push(item);
  return out;
}

/**
 * Looks for `events` in a stream's tail (oldest first) by event id: all of them in a row is a
 * repeat (answers its last event), the first one without the rest a conflict.
 */
function findRepeat(
  tail: readonly ResolvedEvent[],
  events: readonly NewEvent[],
): { revision: bigint; position: bigint | undefined } | 'conflict' | undefined {
  const idOf = (i: number) => tail[i]?.event?.id.toLowerCase();
  const start = tail.findIndex((r) => r.event?.id.toLowerCase() === events[0].eventId.toLowerCase());
  if (start < 0) return undefined;
  const same = events.every((event, i) => idOf(start + i) === event.eventId.toLowerCase());
  if (!same) return 'conflict';
  const last = tail[start + events.length - 1];
  return { revision: last.event!.revision, position: positionOf(last) };
}

/** Metadata of the adapter's own counter events: who caused the allocation, and when. */
function bookkeepingMetadata(cause: EventMetadata): EventMetadata {
  return {
    actor: cause.actor,
    occurredAt: cause.occurredAt,
    correlationId: cause.correlationId,
    causationId: null,
    schemaVersion: 1,
  };
}
