import { Inject, Injectable, Optional } from '@nestjs/common';
import { type DomainEvent, fold } from '@changeledger/domain';
import { EVENT_STORE, type EventStore, type RecordedEvent } from '@changeledger/event-store';
import type { AnyAggregateOf } from './aggregates';

export const toDomainEvent = (e: RecordedEvent): DomainEvent => ({ type: e.type, data: e.data });

export interface LoadedAggregate<S> {
  readonly state: S;
  /** Events read from the store by this load (after the cached state, if any). */
  readonly newEvents: readonly RecordedEvent[];
}

/**
 * How many folded states are kept in memory, and how much they may hold, measured as the JSON
 * length of the events folded into them (a state is about that big): least recently used go
 * first. By count alone, 10,000 changes of 1 MiB requests would hold 10 GB.
 */
export interface AggregateCacheLimits {
  readonly maxEntries: number;
  readonly maxChars: number;
}
export const AGGREGATE_CACHE_LIMITS = Symbol('AGGREGATE_CACHE_LIMITS');
const DEFAULT_LIMITS: AggregateCacheLimits = { maxEntries: 10_000, maxChars: 100_000_000 };

/** A state's share of the budget: its events' data as JSON, plus a little for the rest. */
const sizeOf = (events: readonly { readonly data: unknown }[]): number => {
  let size = 0;
  for (const event of events) size += 64 + (JSON.stringify(event.data)?.length ?? 0);
  return size;
};

/**
 * Folds an aggregate's stream into its state. Streams only grow, so a cached state plus the
 * events after its version is always the current state: the cache can be stale, never wrong,
 * and the append's expected revision still guards every decision.
 */
@Injectable()
export class AggregateLoader {
  private readonly cache = new Map<string, { state: unknown; version: number; size: number }>();
  private cachedChars = 0;
  private readonly limits: AggregateCacheLimits;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Optional() @Inject(AGGREGATE_CACHE_LIMITS) limits?: AggregateCacheLimits,
  ) {
    this.limits = limits ?? DEFAULT_LIMITS;
  }

  /** What the cache holds now: for tests and diagnostics. */
  get cached(): { entries: number; chars: number } {
    return { entries: this.cache.size, chars: this.cachedChars };
  }

  readonly load = async <S>(aggregate: AnyAggregateOf<S>, id: string): Promise<S> =>
    (await this.loadWithEvents(aggregate, id)).state;

  async loadWithEvents<S>(aggregate: AnyAggregateOf<S>, id: string): Promise<LoadedAggregate<S>> {
    const streamId = aggregate.streamId(id);
    const cached = this.cache.get(streamId) as { state: S; version: number } | undefined;
    const newEvents = await this.store.readStream(streamId, { fromRevision: BigInt(cached?.version ?? 0) });
    const state = this.fold(aggregate, newEvents, cached?.state);
    this.remember(streamId, state, aggregate.version(state), newEvents, cached?.version ?? 0);
    return { state, newEvents };
  }

  /**
   * Records a stream's state: after a load, and after a successful append (so the next command
   * reads nothing). `added`: the events folded into it since version `base`.
   */
  remember(
    streamId: string,
    state: unknown,
    version: number,
    added: readonly { readonly data: unknown }[],
    base: number,
  ) {
    if (version === 0) return;
    const previous = this.cache.get(streamId);
    if (previous && previous.version >= version) {
      // A load that found nothing new (or the later of two loads from one cached state): the
      // kept state stays, as the most recently used.
      this.cache.delete(streamId);
      this.cache.set(streamId, previous);
      return;
    }
    // Its size adds to the cached state's it was folded from; from another base, it is measured.
    const size =
      (previous?.version ?? 0) === base
        ? (previous?.size ?? 0) + sizeOf(added)
        : (JSON.stringify(state)?.length ?? 0);
    if (previous) {
      this.cache.delete(streamId);
      this.cachedChars -= previous.size;
    }
    if (size > this.limits.maxChars) return; // would push everything else out
    this.cache.set(streamId, { state, version, size });
    this.cachedChars += size;
    while (this.cache.size > this.limits.maxEntries || this.cachedChars > this.limits.maxChars) {
      const [oldest, entry] = this.cache.entries().next().value as [string, { size: number }];
      this.cache.delete(oldest);
      this.cachedChars -= entry.size;
    }
  }

  fold<S>(aggregate: AnyAggregateOf<S>, events: readonly RecordedEvent[], initial?: S): S {
    const { evolve, initialState } = aggregate.decider;
    return fold(evolve, initial ?? initialState(), events.map(toDomainEvent) as never[]);
  }
}
