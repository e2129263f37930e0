/**
 * A test double of the EventStoreDB client (the subset EventStoreDbEventStore uses), modelling the
 * server behaviour the adapter relies on, as read in the server's source:
 *
 * - every append is one implicit transaction: each event's commit position equals its prepare
 *   position (its own log position); positions grow but are not dense;
 * - a forward `$all` read from a position includes the event at that position; a backward read
 *   from a position excludes it; a subscription from a position starts after it;
 * - expected revisions and idempotency: the same event ids at an expected revision below the
 *   current one are a no-op answered like the first append, anything else there is
 *   WrongExpectedVersion; 'any' deduplicates by the first event id;
 * - reading a stream that does not exist fails with StreamNotFoundError;
 * - optional noise: system projections add a `$>` link to `$ce-<category>` for every event;
 * - a hard-deleted (tombstoned) stream: reads and appends fail with StreamDeletedError;
 * - an append request over the server's MaxAppendSize fails with MaxAppendSizeExceeded;
 * - a soft-deleted stream (server StorageWriterService and IndexWriter.CheckCommit): the delete
 *   writes `{"$tb": long.MaxValue}` to `$$<stream>`; reads answer StreamNotFound; 'no-stream',
 *   'any' and its current revision are accepted, and the events land after the old ones (the
 *   revisions go on), which undeletes it with `$tb` at the first new revision: reads show only
 *   the new events. The old events stay in `$all`.
 *
 * Not modelled: scavenges, ACLs, explicit transactions, clusters. Faults can be injected.
 */
import { EventEmitter } from 'node:events';
import { Readable, type ReadableOptions } from 'node:stream';
import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  END,
  EVENT_TYPE,
  MaxAppendSizeExceededError,
  NO_STREAM,
  START,
  STREAM_EXISTS,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError,
  metastreamOf,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type AppendResult,
  type Direction,
  type EventData,
  type Filter,
  type Position,
  type ReadPosition,
  type ReadRevision,
} from '@eventstore/db-client';
import type { EventStoreDbClient } from '../eventstoredb-event-store';

interface StoredEvent {
  readonly streamId: string;
  readonly id: string;
  readonly type: string;
  readonly revision: bigint;
  readonly data: string;
  readonly metadata: string;
  readonly position: bigint;
  readonly created: Date;
}

export type FakeOperation = 'append' | 'readStream' | 'readAll' | 'subscribe';

interface Fault {
  readonly operation: FakeOperation;
  readonly error: () => Error;
  /** For appends: write first, then fail (the answer is lost). */
  readonly afterWrite: boolean;
  remaining: number;
}

export interface InMemoryEventStoreDbClientOptions {
  /** Position of the first record. Default 2^60, so that positions exceed 2^53. */
  readonly firstPosition?: bigint;
  /** Write a `$>` link to `$ce-<category>` after every event. Default true. */
  readonly systemProjections?: boolean;
  /** Report positions on stream reads (servers 22.6 and later). Default true. */
  readonly streamReadPositions?: boolean;
  /** Report the position of an idempotent repeat. Default false (not every server does). */
  readonly idempotentPositions?: boolean;
  /** The client's throwOnAppendFailure setting. Default true. */
  readonly throwOnAppendFailure?: boolean;
  /** The server's `MaxAppendSize` in bytes. Default 1,048,576, the server's own default. */
  readonly maxAppendSize?: number;
}

type FakeReadable<E> = Readable & {
  cancel(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterableIterator<E>;
};
type FakeSubscription = Readable & { id?: string; unsubscribe(): Promise<void> };

/** A connection's state: cut off the server (see `partition`), and its live subscriptions. */
interface Link {
  cutWith?: () => Error;
  readonly subscriptions: Set<FakeSubscription>;
}

export class InMemoryEventStoreDbClient {
  readonly log: StoredEvent[] = [];
  private readonly streams = new Map<string, StoredEvent[]>();
  private readonly tombstoned = new Set<string>();
  private readonly softDeleted = new Set<string>();
  /** `$tb` of streams written again after a soft delete: reads start there. */
  private readonly truncatedBefore = new Map<string, bigint>();
  private readonly appended = new EventEmitter();
  private readonly liveSubscriptions = new Set<FakeSubscription>();
  private readonly faults: Fault[] = [];
  private readonly links = new WeakMap<object, Link>();
  private stalledReads = 0;
  /** For each append to stall: whether it is stored before it stalls. */
  private readonly stalledAppends: boolean[] = [];
  private nextPosition: bigint;
  private readonly options: Required<InMemoryEventStoreDbClientOptions>;
  /** Number of calls per operation. */
  readonly calls: Record<FakeOperation, number> = { append: 0, readStream: 0, readAll: 0, subscribe: 0 };
  disposed = false;

  constructor(options: InMemoryEventStoreDbClientOptions = {}) {
    this.options = {
      firstPosition: 1n << 60n,
      systemProjections: true,
      streamReadPositions: true,
      idempotentPositions: false,
      throwOnAppendFailure: true,
      maxAppendSize: 1_048_576,
      ...options,
    };
    this.nextPosition = this.options.firstPosition;
    this.appended.setMaxListeners(0);
  }

  /** The client as the adapter types it. */
  asClient(): EventStoreDbClient {
    return this as unknown as EventStoreDbClient;
  }

  /** Another client of the same "server" (another process, or a reconnect after close). */
  connection(): EventStoreDbClient {
    let disposed = false;
    const link: Link = { subscriptions: new Set() };
    const guarded =
      <A extends unknown[], R>(operation: FakeOperation, method: (...args: A) => R) =>
      (...args: A): R => {
        if (disposed) throw new Error('fake: the client is disposed');
        if (link.cutWith) return this.unreachable(operation, link.cutWith) as R;
        const result = method.apply(this, args);
        if (operation === 'subscribe') {
          const subscription = result as FakeSubscription;
          link.subscriptions.add(subscription);
          subscription.once('close', () => link.subscriptions.delete(subscription));
        }
        return result;
      };
    const client = {
      appendToStream: guarded('append', this.appendToStream),
      readStream: guarded('readStream', this.readStream),
      readAll: guarded('readAll', this.readAll),
      subscribeToAll: guarded('subscribe', this.subscribeToAll),
      dispose: async () => {
        disposed = true;
      },
    };
    this.links.set(client, link);
    return client as unknown as EventStoreDbClient;
  }

  /**
   * Cuts one connection off the server (a network partition between one process and it): its
   * live subscriptions end with `error()`, and every call fails with it until `heal`.
   */
  partition(client: EventStoreDbClient, error: () => Error): void {
    const link = this.linkOf(client);
    link.cutWith = error;
    for (const subscription of link.subscriptions) subscription.destroy(error());
    link.subscriptions.clear();
  }

  heal(client: EventStoreDbClient): void {
    this.linkOf(client).cutWith = undefined;
  }

  /** The next `times` calls of `operation` fail with `error()`. */
  failNext(operation: FakeOperation, error: () => Error, { times = 1, afterWrite = false } = {}): void {
    this.faults.push({ operation, error, afterWrite, remaining: times });
  }

  /** The next `times` reads (stream or $all) never answer (an overloaded or leaderless server). */
  stallNextReads(times = 1): void {
    this.stalledReads += times;
  }

  /**
   * The next `times` appends never answer (a client stuck on a failed check, a connection that
   * answers nothing); with `afterWrite`, each is stored first (its answer is what is lost).
   */
  stallNextAppends(times = 1, { afterWrite = false } = {}): void {
    this.stalledAppends.push(...Array.from({ length: times }, () => afterWrite));
  }

  /** Reads that were cancelled by the caller. */
  cancelledReads = 0;
  /** Stream reads without `requiresLeader` (a follower may answer them with an older state). */
  streamReadsFromAnyNode = 0;

  /** Ends every live subscription with `error` (a dropped connection). */
  dropSubscriptions(error: Error): void {
    for (const subscription of this.liveSubscriptions) subscription.destroy(error);
    this.liveSubscriptions.clear();
  }

  /** Hard-deletes a stream, as an operator's `$tombstone` would: its name can never be used again. */
  tombstone(streamId: string): void {
    this.tombstoned.add(streamId);
  }

  /**
   * Soft-deletes a stream, as an operator's `deleteStream` would: reads answer StreamNotFound
   * until it is written again, and then show only what was written after the delete.
   */
  softDelete(streamId: string): void {
    if (this.tombstoned.has(streamId)) throw StreamDeletedError.fromStreamName(streamId);
    this.softDeleted.add(streamId);
    // long.MaxValue, which JSON.stringify cannot write from a number
    this.writeStreamMetadata(streamId, '{"$tb":9223372036854775807}');
    this.appended.emit('append');
  }

  /** Writes an event as another application or the server itself would. */
  writeRaw(streamId: string, type: string, data: unknown = {}, metadata: unknown = {}): StoredEvent {
    const stream = this.streams.get(streamId) ?? [];
    const event = this.record(
      streamId,
      randomUUID(),
      type,
      BigInt(stream.length),
      JSON.stringify(data),
      JSON.stringify(metadata),
    );
    this.appended.emit('append');
    return event;
  }

  get subscriptionCount(): number {
    return this.liveSubscriptions.size;
  }

  // -------------------------------------------------------------------------------------------
  // the client API

  async appendToStream(
    streamName: string,
    events: EventData | EventData[],
    { expectedRevision = ANY }: { expectedRevision?: AppendExpectedRevision } = {},
  ): Promise<AppendResult> {
    this.calls.append += 1;
    await tick();
    this.assertNotDisposed();
    const stalled = this.stalledAppends.shift();
    if (stalled !== undefined) {
      if (stalled && !this.tombstoned.has(streamName)) {
        try {
          this.decideAndWrite(streamName, Array.isArray(events) ? events : [events], expectedRevision);
        } catch {
          // refused: nothing stored, and the answer is lost all the same
        }
      }
      return new Promise<never>(() => undefined);
    }
    const fault = this.takeFault('append');
    if (fault && !fault.afterWrite) throw fault.error();
    if (this.tombstoned.has(streamName)) throw StreamDeletedError.fromStreamName(streamName);
    const list = Array.isArray(events) ? events : [events];
    // the server measures the whole request: each event's fields besides its data and metadata
    // are counted here as 64 bytes (its id, type, content type and framing)
    const size = list.reduce(
      (sum, event) =>
        sum +
        64 +
        Buffer.byteLength(event.type) +
        Buffer.byteLength(JSON.stringify(event.data) ?? '') +
        (event.metadata === undefined ? 0 : Buffer.byteLength(JSON.stringify(event.metadata))),
      0,
    );
    if (size > this.options.maxAppendSize) {
      throw MaxAppendSizeExceededError.fromMaxAppendSize(this.options.maxAppendSize);
    }
    const result = this.decideAndWrite(streamName, list, expectedRevision);
    if (fault) throw fault.error();
    return result;
  }

  readStream(
    streamName: string,
    {
      fromRevision = START,
      direction = 'forwards',
      maxCount = Number.MAX_SAFE_INTEGER,
      requiresLeader = false,
    }: {
      fromRevision?: ReadRevision;
      direction?: Direction;
      maxCount?: number | bigint;
      requiresLeader?: boolean;
    } = {},
  ): FakeReadable<unknown> {
    this.calls.readStream += 1;
    if (!requiresLeader) this.streamReadsFromAnyNode += 1;
    return this.readable(() => {
      const fault = this.takeFault('readStream');
      if (fault) throw fault.error();
      if (this.tombstoned.has(streamName)) throw StreamDeletedError.fromStreamName(streamName);
      const all = this.streams.get(streamName);
      if (!all || this.softDeleted.has(streamName)) throw new StreamNotFoundError(undefined, streamName);
      const truncatedBefore = this.truncatedBefore.get(streamName) ?? 0n;
      const stream = all.filter((e) => e.revision >= truncatedBefore);
      let events: StoredEvent[];
      if (direction === BACKWARDS) {
        const from = fromRevision === END || fromRevision === START ? BigInt(all.length - 1) : fromRevision;
        events = stream.filter((e) => e.revision <= from).reverse();
      } else {
        const from = fromRevision === START ? 0n : fromRevision === END ? BigInt(all.length) : fromRevision;
        events = stream.filter((e) => e.revision >= from);
      }
      return events.slice(0, Number(maxCount)).map((e) => this.resolve(e, this.options.streamReadPositions));
    });
  }

  readAll({
    fromPosition = START,
    direction = 'forwards',
    maxCount = Number.MAX_SAFE_INTEGER,
  }: {
    fromPosition?: ReadPosition;
    direction?: Direction;
    maxCount?: number | bigint;
  } = {}): FakeReadable<unknown> {
    this.calls.readAll += 1;
    return this.readable(() => {
      const fault = this.takeFault('readAll');
      if (fault) throw fault.error();
      let events: StoredEvent[];
      if (direction === BACKWARDS) {
        const before =
          fromPosition === END || fromPosition === START ? undefined : this.checkedPosition(fromPosition);
        events = this.log.filter((e) => before === undefined || e.position < before).reverse();
      } else {
        const from =
          fromPosition === START
            ? undefined
            : fromPosition === END
              ? this.nextPosition
              : this.checkedPosition(fromPosition);
        events = this.log.filter((e) => from === undefined || e.position >= from);
      }
      return events.slice(0, Number(maxCount)).map((e) => this.resolve(e, true));
    });
  }

  subscribeToAll(
    { fromPosition = START, filter }: { fromPosition?: ReadPosition; filter?: Filter } = {},
    readableOptions: ReadableOptions = {},
  ): FakeSubscription {
    this.calls.subscribe += 1;
    this.assertNotDisposed();
    const fault = this.takeFault('subscribe');
    let index = 0;
    // The server refuses a start where no event begins: the stream fails, as with a fault.
    let refused: Error | undefined;
    if (fromPosition === END) index = this.log.length;
    else if (fromPosition !== START) {
      try {
        const after = this.checkedPosition(fromPosition);
        index = this.log.findIndex((e) => e.position > after);
        if (index < 0) index = this.log.length;
      } catch (error) {
        refused = error as Error;
        index = this.log.length;
      }
    }
    const matches = (e: StoredEvent) => {
      if (!filter) return true;
      const subject = filter.filterOn === EVENT_TYPE ? e.type : e.streamId;
      if ('prefixes' in filter) return filter.prefixes.some((p) => subject.startsWith(p));
      return new RegExp(filter.regex).test(subject);
    };
    let waiting = false;
    let ended = false;
    const pump = () => {
      while (!ended) {
        while (index < this.log.length && !matches(this.log[index])) index++;
        if (index >= this.log.length) {
          waiting = true;
          return;
        }
        const event = this.log[index++];
        if (!subscription.push(this.resolve(event, true))) return;
      }
    };
    const onAppend = () => {
      if (waiting) {
        waiting = false;
        pump();
      }
    };
    const subscription = new Readable({
      ...readableOptions,
      objectMode: true,
      read() {
        waiting = false;
        setImmediate(pump);
      },
      destroy: (error, callback) => {
        ended = true;
        this.appended.off('append', onAppend);
        this.liveSubscriptions.delete(subscription);
        callback(error);
      },
    }) as FakeSubscription;
    subscription.id = randomUUID();
    subscription.unsubscribe = () =>
      new Promise<void>((resolve) =>
        setImmediate(() => {
          if (!ended) {
            ended = true;
            this.appended.off('append', onAppend);
            this.liveSubscriptions.delete(subscription);
            subscription.push(null);
          }
          resolve();
        }),
      );
    this.appended.on('append', onAppend);
    this.liveSubscriptions.add(subscription);
    // The real client emits 'confirmation' once the server has accepted the subscription.
    setImmediate(() => {
      if (refused ?? fault) subscription.destroy(refused ?? fault!.error());
      else subscription.emit('confirmation');
    });
    return subscription;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const subscription of this.liveSubscriptions) await subscription.unsubscribe();
  }

  // -------------------------------------------------------------------------------------------

  private decideAndWrite(
    streamName: string,
    events: EventData[],
    expectedRevision: AppendExpectedRevision,
  ): AppendResult {
    const stream = this.streams.get(streamName) ?? [];
    const current = BigInt(stream.length) - 1n;
    const ids = events.map((e) => e.id.toLowerCase());
    const wrong = (): AppendResult => {
      if (!this.options.throwOnAppendFailure)
        return { success: false, nextExpectedRevision: 1n, position: undefined };
      throw new WrongExpectedVersionError(undefined, {
        streamName,
        expected: expectedRevision,
        current: current < 0n ? NO_STREAM : current,
      });
    };
    const repeatFrom = (first: number): AppendResult | 'mismatch' => {
      const matched = ids.every((id, i) => stream[first + i]?.id === id);
      if (!matched) return 'mismatch';
      const last = stream[first + ids.length - 1];
      return {
        success: true,
        nextExpectedRevision: last.revision,
        position: this.options.idempotentPositions
          ? { commit: last.position, prepare: last.position }
          : undefined,
      };
    };

    const softDeleted = this.softDeleted.has(streamName);
    let expected: bigint;
    if (expectedRevision === ANY || expectedRevision === STREAM_EXISTS) {
      if (expectedRevision === STREAM_EXISTS && softDeleted)
        throw StreamDeletedError.fromStreamName(streamName);
      if (expectedRevision === STREAM_EXISTS && current < 0n) return wrong();
      const first = stream.findIndex((e) => e.id === ids[0]);
      if (first >= 0) {
        const repeat = repeatFrom(first);
        return repeat === 'mismatch' ? wrong() : repeat;
      }
      expected = current;
    } else {
      expected = expectedRevision === NO_STREAM ? -1n : expectedRevision;
    }
    if (expected < current) {
      const repeat = repeatFrom(Number(expected + 1n));
      // CheckCommit: 'no-stream' on a soft-deleted stream is accepted, after its old events
      if (repeat === 'mismatch' && expectedRevision === NO_STREAM && softDeleted) expected = current;
      else return repeat === 'mismatch' ? wrong() : repeat;
    }
    if (expected > current) return wrong();

    let last: StoredEvent | undefined;
    for (const [i, event] of events.entries()) {
      if (event.contentType !== 'application/json') throw new Error('the fake stores JSON events only');
      last = this.record(
        streamName,
        ids[i],
        event.type,
        current + 1n + BigInt(i),
        JSON.stringify(event.data),
        event.metadata === undefined ? '' : JSON.stringify(event.metadata),
      );
      if (this.options.systemProjections && !streamName.startsWith('$')) {
        const category = `$ce-${streamName.split('-')[0]}`;
        const links = this.streams.get(category) ?? [];
        this.record(category, randomUUID(), '$>', BigInt(links.length), `${last.revision}@${streamName}`, '');
      }
    }
    if (softDeleted) {
      // written again: undeleted, its old events hidden for good (SoftUndeleteStream)
      this.softDeleted.delete(streamName);
      this.truncatedBefore.set(streamName, current + 1n);
      this.writeStreamMetadata(streamName, JSON.stringify({ $tb: Number(current + 1n) }));
    }
    this.appended.emit('append');
    return {
      success: true,
      nextExpectedRevision: last!.revision,
      position: { commit: last!.position, prepare: last!.position },
    };
  }

  private writeStreamMetadata(streamId: string, data: string): void {
    const metastream = metastreamOf(streamId);
    const revision = BigInt(this.streams.get(metastream)?.length ?? 0);
    this.record(metastream, randomUUID(), '$metadata', revision, data, '');
  }

  private record(
    streamId: string,
    id: string,
    type: string,
    revision: bigint,
    data: string,
    metadata: string,
  ): StoredEvent {
    const event: StoredEvent = {
      streamId,
      id,
      type,
      revision,
      data,
      metadata,
      position: this.nextPosition,
      created: new Date(),
    };
    this.nextPosition += 100n + BigInt(data.length + metadata.length);
    const stream = this.streams.get(streamId) ?? [];
    stream.push(event);
    this.streams.set(streamId, stream);
    this.log.push(event);
    return event;
  }

  private resolve(event: StoredEvent, withPosition: boolean): AllStreamResolvedEvent {
    const position: Position | undefined = withPosition
      ? { commit: event.position, prepare: event.position }
      : undefined;
    const parse = (text: string): unknown => {
      if (text === '') return undefined;
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    };
    return {
      event: {
        streamId: event.streamId,
        id: event.id,
        isJson: true,
        revision: event.revision,
        type: event.type,
        created: event.created,
        data: parse(event.data) as Record<string, unknown>,
        metadata: parse(event.metadata) as Record<string, unknown>,
        position: position as Position,
      },
      commitPosition: withPosition ? event.position : undefined,
    };
  }

  /** A position must point at a record (or be the start); the server cannot read from anywhere else. */
  private checkedPosition(position: Position): bigint {
    if (position.commit !== position.prepare)
      throw new Error(`fake: commit ${position.commit} != prepare ${position.prepare}`);
    if (
      position.commit !== 0n &&
      position.commit !== this.nextPosition &&
      !this.log.some((e) => e.position === position.commit)
    ) {
      throw new Error(`fake: no record at position ${position.commit}`);
    }
    return position.commit;
  }

  private readable(produce: () => unknown[]): FakeReadable<unknown> {
    let started = false;
    const stalled = this.stalledReads > 0;
    if (stalled) this.stalledReads -= 1;
    const readable = new Readable({
      objectMode: true,
      read: () => {
        if (started || stalled) return;
        started = true;
        setImmediate(() => {
          try {
            this.assertNotDisposed();
            for (const item of produce()) readable.push(item);
            readable.push(null);
          } catch (error) {
            readable.destroy(error as Error);
          }
        });
      },
    }) as FakeReadable<unknown>;
    readable.cancel = async () => {
      this.cancelledReads += 1;
      readable.destroy();
    };
    return readable;
  }

  private linkOf(client: EventStoreDbClient): Link {
    const link = this.links.get(client);
    if (!link) throw new Error('fake: not a connection() of this server');
    return link;
  }

  /** What a call answers that cannot reach the server: as the client, a failed promise or stream. */
  private unreachable(operation: FakeOperation, error: () => Error): unknown {
    if (operation === 'append') return Promise.reject(error());
    const failed = new Readable({ objectMode: true, read() {} }) as FakeReadable<unknown> & FakeSubscription;
    failed.cancel = async () => void failed.destroy();
    failed.unsubscribe = async () => void failed.destroy();
    setImmediate(() => failed.destroy(error()));
    return failed;
  }

  private takeFault(operation: FakeOperation): Fault | undefined {
    const fault = this.faults.find((f) => f.operation === operation && f.remaining > 0);
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining === 0) this.faults.splice(this.faults.indexOf(fault), 1);
    return fault;
  }

  private assertNotDisposed() {
    if (this.disposed) throw new Error('fake: the client is disposed');
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
