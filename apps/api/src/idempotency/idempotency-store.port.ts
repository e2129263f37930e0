export const IDEMPOTENCY_STORE = Symbol('IDEMPOTENCY_STORE');

/** How long a key is remembered: the contract's 24 h. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * How long a claim may stay in flight. A process that dies between claim and answer leaves its
 * claim pending; after this the key can be claimed again (the command handler's check of the
 * stream for events with this key still keeps a command that did land from landing twice).
 */
export const IDEMPOTENCY_IN_FLIGHT_LEASE_MS = 60_000;

export interface StoredResponse {
  readonly statusCode: number;
  readonly body: unknown;
}

export type IdempotencyClaim =
  | { readonly kind: 'claimed' }
  | { readonly kind: 'replay'; readonly response: StoredResponse }
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'in-flight' };

/** Remembers the first answer to each (client, Idempotency-Key). */
export interface IdempotencyStore {
  /**
   * Claims the key for a request with this fingerprint, unless it was seen in the last 24 h (a
   * claim still pending after IDEMPOTENCY_IN_FLIGHT_LEASE_MS counts as abandoned).
   */
  claim(scope: string, fingerprint: string, now: Date): Promise<IdempotencyClaim>;
  complete(scope: string, response: StoredResponse): Promise<void>;
  /** Frees a claim whose request failed, so the client may retry with the same key. */
  release(scope: string): Promise<void>;
  close(): Promise<void>;
}
