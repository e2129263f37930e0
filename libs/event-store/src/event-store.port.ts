/** DI token for the EventStore port. */
export const EVENT_STORE = Symbol('EVENT_STORE');

export interface EventActor {
  readonly id: string;
  readonly name: string;
  readonly roles: readonly string[];
}

export interface EventMetadata {
  readonly actor: EventActor;
  readonly occurredAt: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly schemaVersion: number;
  /** Set by the client when the command carried an Idempotency-Key. */
  readonly idempotencyKey?: string;
  readonly [extra: string]: unknown;
}

/** An event about to be appended. `eventId` makes re-appends idempotent. */
export interface NewEvent<TData = Record<string, unknown>> {
  readonly eventId: string;
  readonly type: string;
  readonly data: TData;
  readonly metadata: EventMetadata;
}

export interface RecordedEvent<TData = Record<string, unknown>> extends NewEvent<TData> {
  readonly streamId: string;
  /** 0-based position inside its stream. */
  readonly revision: bigint;
  /** Position in the global log: only grows, need not be dense, 64-bit. */
  readonly position: bigint;
}

/**
 * Optimistic concurrency, as EventStoreDB defines it:
 * 'any' appends whatever the stream holds, 'no-stream' only to a stream that does not exist,
 * a bigint only when the stream's last revision is exactly that.
 */
export type ExpectedRevision = 'any' | 'no-stream' | bigint;

export interface AppendResult {
  /** Revision of the last event now in the stream. */
  readonly nextExpectedRevision: bigint;
  /** Global position of the last event appended (or of the original, for an idempotent repeat). */
  readonly position: bigint;
}

export interface ReadAllOptions {
  /** Exclusive lower bound; omit to start at the beginning. */
  readonly after?: bigint;
  readonly limit: number;
}

export interface SubscribeOptions {
  /** Exclusive: the subscription yields events whose position is greater than this. */
  readonly after?: bigint;
  /** Stream-id prefixes to deliver (e.g. 'changeRequest-'); omit for every stream. */
  readonly streamPrefixes?: readonly string[];
}

/**
 * Pull-based: the store reads the next batch only when the consumer asks, which is the
 * back-pressure. Catches up from `after`, then waits for live events. `close()` ends it.
 */
export interface EventSubscription extends AsyncIterable<RecordedEvent> {
  close(): Promise<void>;
}

/** A counter for human-readable ids (CHG-001), allocated together with the stream it names. */
export interface SequencedStream {
  readonly sequence: string;
  /** Builds the stream id and its first events from the allocated number (1, 2, ...): each number names its own stream. */
  readonly build: (n: number) => { streamId: string; events: NewEvent[] };
  /**
   * Streams the decision read (a standard change reads its template): the stream is created
   * only while each is still at this revision, else ConcurrencyError naming it and nothing is
   * written (no number taken). SQLite checks in the creating transaction; EventStoreDB, which
   * has no transaction across streams, just before the append (a narrow window remains).
   */
  readonly unchanged?: readonly StreamRevision[];
}

export interface StreamRevision {
  readonly streamId: string;
  readonly revision: bigint | 'no-stream';
}

/**
 * The most one append may record, in UTF-8 bytes of its events' type, data and metadata as
 * stored (the hash chain's fields included): EventStoreDB refuses an append request over 1 MiB
 * (its default `MaxAppendSize`), and this leaves room for the request's own fields. Every
 * adapter refuses more with AppendTooLargeError and stores nothing, so that what the embedded
 * store holds could also be held by EventStoreDB.
 */
export const MAX_APPEND_BYTES = 1_000_000;

/**
 * How far back, beyond its own length, every adapter looks for an 'any' append's earlier copy
 * (an idempotent repeat, answered like the first append). On EventStoreDB, a repeat from further
 * back is sent at the stream's revision, where the server compares no ids and would store it again.
 */
export const ANY_REPEAT_WINDOW = 64;

export interface EventStore {
  /** ConcurrencyError when the stream is not at `expected`; AppendTooLargeError over MAX_APPEND_BYTES. */
  append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /**
   * Allocates the next number of `sequence` and creates the stream it names. Gap-free:
   * a number is used only when its stream is written. A number whose stream exists already
   * (written outside the sequence: an import, a restore) is skipped, not refused: refused, it
   * would be handed out again and every later creation would fail on it.
   */
  appendWithSequence(spec: SequencedStream): Promise<AppendResult & { number: number; streamId: string }>;
  /** All events of a stream in order; [] when the stream does not exist. */
  readStream(streamId: string, options?: { fromRevision?: bigint }): Promise<RecordedEvent[]>;
  readAll(options: ReadAllOptions): Promise<RecordedEvent[]>;
  subscribeToAll(options?: SubscribeOptions): EventSubscription;
  /** Position of the newest event, 0n when empty. */
  headPosition(): Promise<bigint>;
  /** Cheap liveness probe for /health. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
