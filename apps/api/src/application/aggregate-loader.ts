import { Inject, Injectable, Optional } from '@nestjs/common';
import { type DomainEvent, fold } from '@changeledger/domain';
import { EVENT_STORE, type EventStore, type RecordedEvent } from '@changeledger/event-store';
import type { AnyAggregateOf } from './aggregates';

export const toDomainEvent = (e: RecordedEvent): DomainEvent => ({ type: e.type, data: e.data });

export interface LoadedAggregate<S> {
  readonly state: S;
  /** What the stream's events hold: `dataBytesOf` all of them (see MAX_STREAM_DATA_BYTES). */
  readonly dataBytes: number;
}

/**
 * How many folded states are kept in memory, and how much they may hold, measured as
 * `dataBytesOf` the events folded into them (a state is about that big): least recently used go
 * first. By count alone, 10,000 changes of 1 MiB requests would hold 10 GB.
 */
export interface AggregateCacheLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
}
export const AGGREGATE_CACHE_LIMITS = Symbol('AGGREGATE_CACHE_LIMITS');
const DEFAULT_LIMITS: AggregateCacheLimits = { maxEntries: 10_000, maxBytes: 100_000_000 };

/**
 * What events hold: the UTF-8 bytes of their data as JSON, plus a little for the rest. A folded
 * state, and the read-model documents made of it, are about the sum of this over its stream.
 */
export const dataBytesOf = (events: readonly { readonly data: unknown }[]): number => {
  let bytes = 0;
  for (const event of events) bytes += 64 + Buffer.byteLength(JSON.stringify(event.data) ?? '', 'utf8');
  return bytes;
};

/**
 * Folds an aggregate's stream into its state. Streams only grow, so a cached state plus the
 * events after its version is always the current state: the cache can be stale, never wrong,
 * and the append's expected revision still guards every decision. (Unless an operator deletes
 * a stream in EventStoreDB: the append then finds it behind, and the command handler `forget`s it.)
 */
@Injectable()
export class AggregateLoader {
  private readonly cache = new Map<string, { state: unknown; version: number; bytes: number }>();
  private cachedBytes = 0;
  private readonly limits: AggregateCacheLimits;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Optional() @Inject(AGGREGATE_CACHE_LIMITS) limits?: AggregateCacheLimits,
  ) {
    this.limits = limits ?? DEFAULT_LIMITS;
  }

  /** What the cache holds now: for tests and diagnostics. */
  get cached(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cachedBytes };
  }

  readonly load = async <S>(aggregate: AnyAggregateOf<S>, id: string): Promise<S> =>
    (await this.loadWithDataBytes(aggregate, id)).state;

  async loadWithDataBytes<S>(aggregate: AnyAggregateOf<S>, id: string): Promise<LoadedAggregate<S>> {
    const streamId = aggregate.streamId(id);
    // An entry is replaced, never changed: its state, version and bytes stay one another's.
    const cached = this.cache.get(streamId) as { state: S; version: number; bytes: number } | undefined;
    const newEvents = await this.store.readStream(streamId, { fromRevision: BigInt(cached?.version ?? 0) });
    const state = this.fold(aggregate, newEvents, cached?.state);
    const dataBytes = (cached?.bytes ?? 0) + dataBytesOf(newEvents);
    this.remember(streamId, state, aggregate.version(state), dataBytes);
    return { state, dataBytes };
  }

  /** Drops a stream's state: the next load folds the stream from its start. */
  forget(streamId: string) {
    const entry = this.cache.get(streamId);
    if (!entry) return;
    this.cache.delete(streamId);
    this.cachedBytes -= entry.bytes;
  }

  /**
   * Records a stream's state: after a load, and after a successful append (so the next command
   * reads nothing). `dataBytes`: `dataBytesOf` the events folded into it.
   */
  remember(streamId: string, state: unknown, version: number, dataBytes: number) {
    if (version === 0) return;
    const previous = this.cache.get(streamId);
    if (previous && previous.version >= version) {
      // A load that found nothing new (or the later of two loads from one cached state): the
      // kept state stays, as the most recently used.
      this.cache.delete(streamId);
      this.cache.set(streamId, previous);
      return;
    }
    if (previous) {
      this.cache.delete(streamId);
      this.cachedBytes -= previous.bytes;
    }
    if (dataBytes > this.limits.maxBytes) return; // would push everything else out
    this.cache.set(streamId, { state, version, bytes: dataBytes });
    this.cachedBytes += dataBytes;
    while (this.cache.size > this.limits.maxEntries || this.cachedBytes > this.limits.maxBytes) {
      const [oldest, entry] = this.cache.entries().next().value as [string, { bytes: number }];
      this.cache.delete(oldest);
      this.cachedBytes -= entry.bytes;
    }
  }

  fold<S>(aggregate: AnyAggregateOf<S>, events: readonly RecordedEvent[], initial?: S): S {
    const { evolve, initialState } = aggregate.decider;
    return fold(evolve, initial ?? initialState(), events.map(toDomainEvent) as never[]);
  }
}
