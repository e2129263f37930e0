import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';

/**
 * Feeds a token may be limited to (its `feed` claim): such a token reads that feed and nothing
 * else, and may travel in a URL, which a calendar client subscribes to (it cannot send headers).
 */
export const FEEDS = ['schedule'] as const;
export type Feed = (typeof FEEDS)[number];

export interface TokenClaims {
  readonly sub: string;
  readonly name: string;
  readonly roles: readonly string[];
  /** Limits the token to one feed, which it may then read with the token in the URL. */
  readonly feed?: Feed;
}

/** Signs an HS256 token the way local deployments and tests expect. */
export const signToken = async (
  claims: TokenClaims,
  secret: string,
  options: {
    issuer?: string;
    audience?: string;
    /** A period from now (jose's format: `90m`, `12h`, `7d`); default 12 h. */
    expiresIn?: string;
    /** Or a lifetime in seconds: `exp` is then exactly `iat` + this (one reading of the clock). */
    lifetimeSeconds?: number;
    /** Or an absolute expiry, in seconds since the epoch (a test's already expired token). */
    expiresAt?: number;
  } = {},
): Promise<string> => {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({
    name: claims.name,
    roles: [...claims.roles],
    ...(claims.feed !== undefined ? { feed: claims.feed } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    // an id, so that a token can be withdrawn before it expires (AUTH_REVOKED_TOKEN_IDS)
    .setJti(randomUUID())
    // With a period, jose reads the clock for each: expiry first, so that a second ticking over
    // in between makes the token a second shorter, never longer than asked (than a lifetime cap
    // allows). (A number here is an absolute time to jose.)
    .setExpirationTime(
      options.expiresAt ??
        (options.lifetimeSeconds !== undefined
          ? now + options.lifetimeSeconds
          : (options.expiresIn ?? '12h')),
    )
    .setIssuedAt(options.lifetimeSeconds !== undefined ? now : undefined);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(secret));
};
