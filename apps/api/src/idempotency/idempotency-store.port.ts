export const IDEMPOTENCY_STORE = Symbol('IDEMPOTENCY_STORE');

/** How long a key is remembered: the contract's 24 h. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * How long a claim may stay in flight. A process that dies between claim and answer leaves its
 * claim pending; after this the same request (the same fingerprint: another is a mismatch) can
 * claim the key again where the caller allows it: commands on an existing change or template,
 * whose stream the command handler checks for events with this key (a command that did land
 * does not land twice). Not for creations: one that landed
 * before the crash would be made a second time, so those keys stay claimed for 24 h: once the
 * lease is over, the creation is looked for by its key, and answered 409
 * IDEMPOTENCY_OUTCOME_UNKNOWN if not found (see IdempotentCommands).
 */
export const IDEMPOTENCY_IN_FLIGHT_LEASE_MS = 60_000;

/**
 * How often a claim whose command is still running is marked alive (`renew`): a command may run
 * longer than the lease (a creation queued behind others while EventStoreDB is slow, each append
 * retried for up to two minutes), and a repeat must then wait for it, not take it for abandoned
 * (a creation's repeat would be told the outcome is unknown, look, find nothing yet, and create
 * the change again under a new key).
 */
export const IDEMPOTENCY_RENEW_EVERY_MS = IDEMPOTENCY_IN_FLIGHT_LEASE_MS / 4;

/** Whether a claim last known alive at `aliveAt` (ms) has outlived its lease at `now` (ms). */
export const leaseOver = (aliveAt: number, now: number): boolean =>
  aliveAt <= now - IDEMPOTENCY_IN_FLIGHT_LEASE_MS;

/**
 * The key store cannot be reached (503): the command did not run, and the same key may be sent
 * again. A claim whose write reached the store before its answer was lost stays pending, as one
 * whose process stopped: a repeat finds it in flight until its lease is over (see
 * IDEMPOTENCY_IN_FLIGHT_LEASE_MS).
 */
export class IdempotencyStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdempotencyStoreUnavailableError';
  }
}

export interface StoredResponse {
  readonly statusCode: number;
  readonly body: unknown;
}

export type IdempotencyClaim =
  /** `claimedAt` identifies this claim to `complete` and `release` (another may replace it). */
  | { readonly kind: 'claimed'; readonly claimedAt: number }
  /**
   * `claimedAt`: of the claim that stored it (for `settle`); `aliveAt`: when its command was last
   * known to be running (the claim, or its last renewal).
   */
  | {
      readonly kind: 'replay';
      readonly response: StoredResponse;
      readonly claimedAt: number;
      readonly aliveAt: number;
    }
  | { readonly kind: 'mismatch' }
  /**
   * `since`: when the pending claim was made (a creation's, left by a dead process, stays);
   * `aliveAt`: when its command was last known to be running (see `renew`).
   */
  | { readonly kind: 'in-flight'; readonly since: number; readonly aliveAt: number };

/** A key's record as a store keeps it. */
export interface StoredClaim {
  readonly fingerprint: string;
  readonly state: 'pending' | 'done';
  readonly statusCode: number | null;
  /** The answer as JSON text. */
  readonly body: string | null;
  readonly claimedAt: number;
  /** When its command was last known to be running (`renew`); none: `claimedAt`. */
  readonly aliveAt?: number | null;
}

/**
 * What a claim of a key finds in the key's record, the same for every store: the record's answer
 * (another request, in flight, a replay), or `take-over` when the record is past its 24 h or,
 * where the caller allows it, abandoned; then with the new claim's identity.
 */
export const judgeClaim = (
  seen: StoredClaim,
  fingerprint: string,
  now: number,
  reclaimAbandoned: boolean,
): IdempotencyClaim | { readonly kind: 'take-over'; readonly claimedAt: number } => {
  const live = seen.claimedAt > now - IDEMPOTENCY_TTL_MS;
  // Another request with the key is refused whatever became of the first: only the same request
  // may take over an abandoned claim. (Taken over by another, a creation's claim left pending by
  // a crash would be lost, and the creation's retry would create the change a second time.)
  if (live && seen.fingerprint !== fingerprint) return { kind: 'mismatch' };
  const aliveAt = Math.max(seen.claimedAt, seen.aliveAt ?? 0);
  const abandoned = reclaimAbandoned && seen.state === 'pending' && leaseOver(aliveAt, now);
  if (live && !abandoned) {
    if (seen.state === 'pending') return { kind: 'in-flight', since: seen.claimedAt, aliveAt };
    return {
      kind: 'replay',
      claimedAt: seen.claimedAt,
      aliveAt,
      response: { statusCode: seen.statusCode ?? 200, body: JSON.parse(seen.body ?? 'null') },
    };
  }
  // A claim of the same millisecond as the one it replaces would share its identity.
  return { kind: 'take-over', claimedAt: seen.claimedAt >= now ? seen.claimedAt + 1 : now };
};

/** Remembers the first answer to each (client, Idempotency-Key). */
export interface IdempotencyStore {
  /**
   * Claims the key for a request with this fingerprint, unless it was seen in the last 24 h.
   * With `reclaimAbandoned`, a claim of the same request still pending after
   * IDEMPOTENCY_IN_FLIGHT_LEASE_MS counts as abandoned (another request's is a mismatch).
   */
  claim(
    scope: string,
    fingerprint: string,
    now: Date,
    options?: { readonly reclaimAbandoned?: boolean },
  ): Promise<IdempotencyClaim>;
  /**
   * Marks the claim's command still running at `now`, if the claim is still this one and pending
   * (every IDEMPOTENCY_RENEW_EVERY_MS while it runs): its lease counts from then.
   */
  renew(scope: string, claimedAt: number, now: Date): Promise<void>;
  /** Stores the answer, if the claim is still this one (not reclaimed meanwhile). */
  complete(scope: string, claimedAt: number, response: StoredResponse): Promise<void>;
  /**
   * Replaces a stored refusal, if it is still the one that claim stored (never a success): a
   * creation's "outcome unknown" once the creation is looked for.
   */
  settle(scope: string, claimedAt: number, response: StoredResponse): Promise<void>;
  /** Frees a claim whose request failed, so the client may retry with the same key. */
  release(scope: string, claimedAt: number): Promise<void>;
  /**
   * Forgets the keys claimed IDEMPOTENCY_TTL_MS or more before `now`; answers how many. Claims
   * call it now and then (a key past its 24 h is claimed anew whether or not it was purged).
   */
  purgeExpired(now: Date): Promise<number>;
  close(): Promise<void>;
}
