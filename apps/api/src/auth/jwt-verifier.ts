import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { type Actor, ROLES, type Role } from '@changeledger/domain';

export const JWT_VERIFIER = Symbol('JWT_VERIFIER');

export class AuthenticationError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'AuthenticationError';
  }
}

export interface JwtVerifierOptions {
  /** HS256 secret (local and test deployments). */
  readonly secret?: string;
  /** RS256 key set of an identity provider. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
}

/** Verified tokens kept in memory (a client sends the same token many times). */
const CACHE_SIZE = 5_000;

/** Verifies bearer tokens and turns their claims into an Actor. */
export class JwtVerifier {
  private readonly verified = new Map<string, { actor: Actor; expiresAtMs: number }>();
  private readonly secret?: Uint8Array;
  private readonly jwks?: JWTVerifyGetKey;

  constructor(private readonly options: JwtVerifierOptions) {
    if (!options.secret && !options.jwksUrl) throw new Error('JWT verification needs a secret or a JWKS URL');
    this.secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
    this.jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  }

  async verify(token: string): Promise<Actor> {
    const hit = this.verified.get(token);
    if (hit && Date.now() < hit.expiresAtMs) return hit.actor;
    if (hit) this.verified.delete(token);
    return this.verifyUncached(token);
  }

  private async verifyUncached(token: string): Promise<Actor> {
    const alg = headerAlg(token);
    let payload: JWTPayload;
    try {
      const common = { issuer: this.options.issuer, audience: this.options.audience, clockTolerance: 5 };
      if (alg === 'HS256' && this.secret) {
        ({ payload } = await jwtVerify(token, this.secret, { ...common, algorithms: ['HS256'] }));
      } else if (alg === 'RS256' && this.jwks) {
        ({ payload } = await jwtVerify(token, this.jwks, { ...common, algorithms: ['RS256'] }));
      } else {
        throw new AuthenticationError(
          `tokens signed with ${alg ?? 'an unknown algorithm'} are not accepted here`,
        );
      }
    } catch (error) {
      if (error instanceof AuthenticationError) throw error;
      throw new AuthenticationError(describeJoseError(error));
    }
    const actor = toActor(payload);
    // Cached only until the token expires; tokens without `exp` are verified every time.
    if (typeof payload.exp === 'number') {
      if (this.verified.size >= CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
      this.verified.set(token, { actor, expiresAtMs: payload.exp * 1000 });
    }
    return actor;
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

const describeJoseError = (error: unknown): string => {
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `token claim "${error.claim}" is invalid: ${error.reason}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is invalid';
  if (error instanceof joseErrors.JOSEError) return `the token was refused (${error.code})`;
  return 'the token could not be verified';
};

const toActor = (payload: JWTPayload): Actor => {
  const { sub, name, roles } = payload as JWTPayload & { name?: unknown; roles?: unknown };
  if (typeof sub !== 'string' || sub === '') throw new AuthenticationError('the token has no "sub" claim');
  if (typeof name !== 'string' || name === '') throw new AuthenticationError('the token has no "name" claim');
  if (!Array.isArray(roles)) throw new AuthenticationError('the token has no "roles" array claim');
  // Roles this product does not know (an identity provider may send others) grant nothing.
  const known = roles.filter(
    (r): r is Role => typeof r === 'string' && (ROLES as readonly string[]).includes(r),
  );
  return { id: sub, name, roles: known };
};
