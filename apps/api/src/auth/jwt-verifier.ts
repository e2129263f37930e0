import { Agent as HttpAgent, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type KeyLike,
} from 'jose';
import { type Actor, CONTROL_CHARACTER, ROLES, type Role } from '@changeledger/domain';
import { describeDuration, type Feed, FEEDS } from '@changeledger/platform';

export const JWT_VERIFIER = Symbol('JWT_VERIFIER');

export class AuthenticationError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'AuthenticationError';
  }
}

/** The identity provider's key set could not be fetched: not the caller's fault (503). */
export class IdentityProviderUnavailableError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'IdentityProviderUnavailableError';
  }
}

export interface JwtVerifierOptions {
  /** HS256 secret (local and test deployments). */
  readonly secret?: string;
  /** RS256 key set of an identity provider. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /**
   * The longest a token may live, in seconds: from its `iat` (or, without one, from now) to its
   * `exp`. A token made to last longer is refused, however much of it is left.
   */
  readonly maxLifetimeSeconds?: number;
  /** Token ids (`jti`) withdrawn before they expire (a feed token's URL that got out). */
  readonly revokedTokenIds?: readonly string[];
  /** See JWKS_RETRY_MS (tests shorten it). */
  readonly jwksRetryMs?: number;
  /** See JWKS_FETCH_DEADLINE_MS (tests shorten it). */
  readonly jwksFetchDeadlineMs?: number;
}

/** How far the issuer's clock and ours may differ, in seconds. */
const CLOCK_TOLERANCE_SECONDS = 5;

/** Verified tokens kept in memory (a client sends the same token many times). */
const CACHE_SIZE = 5_000;
/**
 * How long an RS256 token's verification is trusted before its key is looked at again, and how
 * long a fetched key set is kept: a key the identity provider withdraws verifies nothing five
 * minutes on (a token checked against a key set fetched just before the withdrawal is trusted
 * for both periods), not only at each token's exp.
 */
const RS256_RECHECK_MS = 150_000;
/**
 * After the key set could not be fetched, how long tokens that need it are answered 503 without
 * fetching again: an identity provider that is down is asked once per this, not once per request
 * of every instance (jose fetches again on each call once its copy is stale).
 */
export const JWKS_RETRY_MS = 5_000;

/**
 * The longest one fetch of the key set may take, from connecting to its last byte. jose 5 times
 * a fetch out only until the answer's headers: a provider (or a proxy) that sent them and then
 * stalled would hold every request needing the key set, with nothing ever failing to retry.
 */
export const JWKS_FETCH_DEADLINE_MS = 5_000;

/**
 * An agent whose every connection is destroyed at the deadline, which fails the fetch under way
 * (a 503, fetched again after JWKS_RETRY_MS). jose makes one request per connection (the agent
 * keeps none alive), so a connection's deadline is its fetch's; a refused answer jose leaves
 * unread is closed by it too. `deadlinesPassed` tells such a failure (which reads "aborted")
 * from others.
 */
const agentWithDeadline = (url: URL, deadlineMs: number): HttpAgent & { deadlinesPassed: number } => {
  const Base: typeof HttpAgent = url.protocol === 'https:' ? HttpsAgent : HttpAgent;
  return new (class extends Base {
    deadlinesPassed = 0;
    override createConnection(
      options: ClientRequestArgs,
      callback?: (err: Error | null, stream: Duplex) => void,
    ): Duplex | null | undefined {
      const socket = super.createConnection(options, callback);
      if (socket) {
        const deadline = setTimeout(() => {
          this.deadlinesPassed++;
          socket.destroy();
        }, deadlineMs);
        deadline.unref();
        socket.once('close', () => clearTimeout(deadline));
      }
      return socket;
    }
  })();
};

type RemoteJWKSet = ReturnType<typeof createRemoteJWKSet>;

/** Verifies bearer tokens and turns their claims into an Actor. */
export class JwtVerifier {
  private readonly verified = new Map<string, { actor: TokenActor; expiresAtMs: number }>();
  private readonly secret?: Uint8Array;
  private readonly jwks?: JWTVerifyGetKey;

  constructor(private readonly options: JwtVerifierOptions) {
    if (!options.secret && !options.jwksUrl) throw new Error('JWT verification needs a secret or a JWKS URL');
    this.secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
    // jose keeps a fetched key set for 10 minutes by default: a withdrawn key would verify new
    // tokens that long, and each stays trusted for RS256_RECHECK_MS after.
    const deadlineMs = options.jwksFetchDeadlineMs ?? JWKS_FETCH_DEADLINE_MS;
    const agent = options.jwksUrl ? agentWithDeadline(new URL(options.jwksUrl), deadlineMs) : undefined;
    this.jwks =
      options.jwksUrl && agent
        ? this.retryingAfterFailures(
            createRemoteJWKSet(new URL(options.jwksUrl), {
              cacheMaxAge: RS256_RECHECK_MS,
              timeoutDuration: deadlineMs,
              agent,
            }),
            () => agent.deadlinesPassed,
            deadlineMs,
          )
        : undefined;
  }

  /**
   * The key set's look-up. For JWKS_RETRY_MS after a failed fetch nothing is fetched: while the
   * copy jose holds is stale the failure is the answer (503); while it is fresh, tokens are
   * looked up in it (a failed fetch for one token's unknown `kid`, which anyone may send, holds
   * up no other).
   */
  private retryingAfterFailures(
    remote: RemoteJWKSet,
    deadlinesPassed: () => number,
    deadlineMs: number,
  ): JWTVerifyGetKey {
    const retryMs = this.options.jwksRetryMs ?? JWKS_RETRY_MS;
    // After a failure: the copy jose holds, looked up without fetching (jose itself would fetch
    // again for every unknown kid while the provider is down: it waits 30 s between fetches only
    // after a success). Made once per failure: jose hands out a new clone of it on each call.
    let failure: { error: unknown; at: number; held?: JWTVerifyGetKey | null } | undefined;
    // (a kid it does not have may be a new key the provider could not give: 503, try again)
    const inHeldCopy = async (
      recorded: NonNullable<typeof failure>,
      ...[header, token]: Parameters<JWTVerifyGetKey>
    ): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> => {
      if (recorded.held === undefined) {
        const jwks = remote.jwks();
        recorded.held = jwks ? createLocalJWKSet(jwks) : null;
      }
      if (!recorded.held) throw recorded.error;
      try {
        return await recorded.held(header, token);
      } catch (lookUpError) {
        throw lookUpError instanceof joseErrors.JWKSNoMatchingKey ? recorded.error : lookUpError;
      }
    };
    return async (header, token) => {
      if (failure && Date.now() - failure.at < retryMs) {
        if (!remote.fresh) throw failure.error;
        return inHeldCopy(failure, header, token);
      }
      const passedBefore = deadlinesPassed();
      try {
        const key = await remote(header, token);
        failure = undefined;
        return key;
      } catch (error) {
        if (!isKeySetUnreachable(error)) throw error;
        // (a connection the deadline destroyed fails its fetch with ECONNRESET: "aborted", or
        // "socket hang up" before the headers; another failure meanwhile keeps its own name)
        const named =
          deadlinesPassed() > passedBefore && (error as { code?: unknown } | null)?.code === 'ECONNRESET'
            ? new Error(`no complete answer within ${deadlineMs} ms`, { cause: error })
            : error;
        failure = { error: named, at: Date.now() };
        throw named;
      }
    };
  }

  async verify(token: string): Promise<TokenActor> {
    const hit = this.verified.get(token);
    if (hit && Date.now() < hit.expiresAtMs) return hit.actor;
    if (hit) this.verified.delete(token);
    return this.verifyUncached(token);
  }

  /** AUTH_MAX_TOKEN_LIFETIME: a token made to live longer is refused (the clock tolerance aside). */
  private checkLifetime(payload: JWTPayload) {
    const max = this.options.maxLifetimeSeconds;
    if (max === undefined) return;
    // An `iat` in the future would shorten the lifetime at will: counted from now at the latest.
    const now = Date.now() / 1000;
    const from = typeof payload.iat === 'number' ? Math.min(payload.iat, now) : now;
    const lifetime = (payload.exp as number) - from;
    if (lifetime > max + CLOCK_TOLERANCE_SECONDS) {
      throw new AuthenticationError(
        `the token was made to last ${describeDuration(lifetime, { rounded: true })}; this service accepts at most ${describeDuration(max)} (AUTH_MAX_TOKEN_LIFETIME): get a shorter-lived one`,
      );
    }
  }

  private async verifyUncached(token: string): Promise<TokenActor> {
    const alg = headerAlg(token);
    let payload: JWTPayload;
    try {
      const common = {
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        // a token without an expiry would be good for ever
        requiredClaims: ['exp'],
      };
      if (alg === 'HS256' && this.secret) {
        ({ payload } = await jwtVerify(token, this.secret, { ...common, algorithms: ['HS256'] }));
      } else if (alg === 'RS256' && this.jwks) {
        ({ payload } = await this.verifyWithKeySet(this.jwks, token, { ...common, algorithms: ['RS256'] }));
      } else {
        throw new AuthenticationError(
          `tokens signed with ${alg ?? 'an unknown algorithm'} are not accepted here`,
        );
      }
    } catch (error) {
      if (error instanceof AuthenticationError) throw error;
      if (alg === 'RS256' && isKeySetUnreachable(error)) {
        throw new IdentityProviderUnavailableError(
          `the identity provider's key set could not be fetched (${error instanceof Error ? error.message : String(error)}); try again shortly`,
        );
      }
      throw new AuthenticationError(describeJoseError(error));
    }
    this.checkLifetime(payload);
    if (typeof payload.jti === 'string' && this.options.revokedTokenIds?.includes(payload.jti)) {
      throw new AuthenticationError('the token has been withdrawn (AUTH_REVOKED_TOKEN_IDS)');
    }
    const actor = toActor(payload);
    // Cached until the token expires (RS256: at most RS256_RECHECK_MS, for key rotation).
    const expiresAtMs = (payload.exp as number) * 1000;
    if (this.verified.size >= CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(token, {
      actor,
      expiresAtMs: alg === 'RS256' ? Math.min(expiresAtMs, Date.now() + RS256_RECHECK_MS) : expiresAtMs,
    });
    return actor;
  }

  /**
   * A token without `kid` while the key set holds several signing keys (during a rotation, or a
   * provider that names no kids) is tried against each: jose refuses to choose one.
   */
  private async verifyWithKeySet(jwks: JWTVerifyGetKey, token: string, options: JWTVerifyOptions) {
    try {
      return await jwtVerify(token, jwks, options);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
      for await (const key of error as joseErrors.JWKSMultipleMatchingKeys & AsyncIterable<KeyLike>) {
        try {
          return await jwtVerify(token, key, options);
        } catch (keyError) {
          if (!(keyError instanceof joseErrors.JWSSignatureVerificationFailed)) throw keyError;
        }
      }
      throw new joseErrors.JWSSignatureVerificationFailed();
    }
  }
}

const headerAlg = (token: string): string | undefined => {
  const [header] = token.split('.');
  try {
    const parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown };
    return typeof parsed.alg === 'string' ? parsed.alg : undefined;
  } catch {
    throw new AuthenticationError('the bearer token is not a JWT');
  }
};

/**
 * A failure to reach the key set (timeout, network error, an answer that is not a key set), as
 * opposed to a token the key set does not verify.
 */
const isKeySetUnreachable = (error: unknown): boolean =>
  error instanceof joseErrors.JWKSTimeout ||
  (error instanceof joseErrors.JOSEError && error.code === 'ERR_JOSE_GENERIC') ||
  error instanceof joseErrors.JWKSInvalid ||
  !(error instanceof joseErrors.JOSEError);

const describeJoseError = (error: unknown): string => {
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `token claim "${error.claim}" is invalid: ${error.reason}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (error instanceof joseErrors.JOSEError) return `the token was refused (${error.code})`;
  return 'the token could not be verified';
};

/** The actor a token names, and the feed it is limited to, if any. */
export type TokenActor = Actor & { readonly feed?: Feed };

const toActor = (payload: JWTPayload): TokenActor => {
  const { sub, name, roles, feed } = payload as JWTPayload & {
    name?: unknown;
    roles?: unknown;
    feed?: unknown;
  };
  if (typeof sub !== 'string' || sub === '') throw new AuthenticationError('the token has no "sub" claim');
  if (typeof name !== 'string' || name === '') throw new AuthenticationError('the token has no "name" claim');
  if (!Array.isArray(roles)) throw new AuthenticationError('the token has no "roles" array claim');
  // Stored in every event the user records, shown in evidence and on auditors' terminals.
  if (CONTROL_CHARACTER.test(sub) || CONTROL_CHARACTER.test(name)) {
    throw new AuthenticationError('the token\'s "sub" or "name" claim holds control characters');
  }
  // Roles this product does not know (an identity provider may send others) grant nothing.
  const known = roles.filter(
    (r): r is Role => typeof r === 'string' && (ROLES as readonly string[]).includes(r),
  );
  if (feed !== undefined && !(FEEDS as readonly unknown[]).includes(feed)) {
    throw new AuthenticationError(
      `the token's "feed" claim names no feed of this service (${FEEDS.join(', ')})`,
    );
  }
  // the property only on a feed token: an actor is recorded in the events it sends
  return { id: sub, name, roles: known, ...(feed !== undefined ? { feed: feed as Feed } : {}) };
};
