export const IDEMPOTENCY_STORE = Symbol('IDEMPOTENCY_STORE');

/** How long a key is remembered: the contract's 24 h. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

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
  /** Claims the key for a request with this fingerprint, unless it was seen in the last 24 h. */
  claim(scope: string, fingerprint: string, now: Date): Promise<IdempotencyClaim>;
  complete(scope: string, response: StoredResponse): Promise<void>;
  /** Frees a claim whose request failed, so the client may retry with the same key. */
  release(scope: string): Promise<void>;
  close(): Promise<void>;
}
