import { Inject, Injectable } from '@nestjs/common';
import { type DomainEvent, fold } from '@changeledger/domain';
import { EVENT_STORE, type EventStore, type RecordedEvent } from '@changeledger/event-store';
import type { AnyAggregateOf } from './aggregates';

export const toDomainEvent = (e: RecordedEvent): DomainEvent => ({ type: e.type, data: e.data });

export interface LoadedAggregate<S> {
  readonly state: S;
  /** Events read from the store by this load (after the cached state, if any). */
  readonly newEvents: readonly RecordedEvent[];
}

/** Streams whose folded state is kept in memory (least recently used are dropped). */
const CACHE_SIZE = 10_000;

/**
 * Folds an aggregate's stream into its state. Streams only grow, so a cached state plus the
 * events after its version is always the current state: the cache can be stale, never wrong,
 * and the append's expected revision still guards every decision.
 */
@Injectable()
export class AggregateLoader {
  private readonly cache = new Map<string, { state: unknown; version: number }>();

  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  readonly load = async <S>(aggregate: AnyAggregateOf<S>, id: string): Promise<S> =>
    (await this.loadWithEvents(aggregate, id)).state;

  async loadWithEvents<S>(aggregate: AnyAggregateOf<S>, id: string): Promise<LoadedAggregate<S>> {
    const streamId = aggregate.streamId(id);
    const cached = this.cache.get(streamId) as { state: S; version: number } | undefined;
    const newEvents = await this.store.readStream(streamId, { fromRevision: BigInt(cached?.version ?? 0) });
    const state = this.fold(aggregate, newEvents, cached?.state);
    this.remember(streamId, state, aggregate.version(state));
    return { state, newEvents };
  }

  /** Records the state after a successful append, so the next command reads nothing. */
  remember(streamId: string, state: unknown, version: number) {
    if (version === 0) return;
    this.cache.delete(streamId);
    this.cache.set(streamId, { state, version });
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
  }

  fold<S>(aggregate: AnyAggregateOf<S>, events: readonly RecordedEvent[], initial?: S): S {
    const { evolve, initialState } = aggregate.decider;
    return fold(evolve, initial ?? initialState(), events.map(toDomainEvent) as never[]);
  }
}
