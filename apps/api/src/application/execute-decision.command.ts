import type { Actor } from '@changeledger/domain';
import type { AnyAggregateOf } from './aggregates';

export interface CommandOptions {
  readonly actor: Actor;
  readonly correlationId: string;
  /** If-Match: the versions the client saw, any of which may be current (undefined: no pin). */
  readonly expectedVersions?: readonly number[];
  readonly idempotencyKey?: string;
  /** With a key: what identifies the request (a reused key with another request is refused). */
  readonly requestFingerprint?: string;
}

export interface CommandResult {
  readonly id: string;
  readonly version: number;
  readonly status?: string;
  readonly position: bigint;
  /** The command had been applied before (its Idempotency-Key is in the stream): its answer then. */
  readonly replayed?: true;
}

/** The one command that carries every domain command to the generic handler. */
export class ExecuteDecision<C = unknown> {
  constructor(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any aggregate state
    readonly aggregate: AnyAggregateOf<any>,
    /** Undefined for creation commands: the handler allocates the id. */
    readonly id: string | undefined,
    readonly command: C,
    readonly options: CommandOptions,
  ) {}
}
