import type { Actor } from './actor';

/** An event as the domain sees it: a past-tense fact with its data. */
export interface DomainEvent<TType extends string = string, TData = unknown> {
  readonly type: TType;
  readonly data: TData;
}

/** What every decision may consult besides the state: who asks, and when. */
export interface DecisionContext {
  readonly actor: Actor;
  /** ISO 8601 UTC; injected so that decisions are reproducible. */
  readonly now: string;
}

/**
 * A decider in the Emmett sense: pure functions, no I/O.
 * `decide` throws a DomainError when the command is refused.
 */
export interface Decider<TCommand, TEvent, TState, TContext extends DecisionContext> {
  readonly initialState: () => TState;
  readonly decide: (command: TCommand, state: TState, context: TContext) => TEvent[];
  readonly evolve: (state: TState, event: TEvent) => TState;
}

export const fold = <TEvent, TState>(
  evolve: (state: TState, event: TEvent) => TState,
  initial: TState,
  events: readonly TEvent[],
): TState => events.reduce(evolve, initial);
