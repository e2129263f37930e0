import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { forbidden, ROLES } from '@changeledger/domain';
import type { Feed } from '@changeledger/platform';
import { AuthenticationError, JWT_VERIFIER, type JwtVerifier, type TokenActor } from './jwt-verifier';

const IS_PUBLIC = 'changeledger:public';
/** Marks an endpoint that needs no token (health). */
export const Public = () => SetMetadata(IS_PUBLIC, true);

const FEED_ROUTE = 'changeledger:feed';
/**
 * Marks a read whose iCalendar form (`format=ics`) is a feed: a token limited to that feed reads
 * it, and may come as `access_token` in the URL (RFC 6750), since calendar clients subscribe to
 * a URL and send no headers. Any other token must come in the header, as everywhere.
 */
export const CalendarFeed = (feed: Feed) => SetMetadata(FEED_ROUTE, feed);

export type AuthenticatedRequest = FastifyRequest & { actor?: TokenActor };

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(JWT_VERIFIER) private readonly verifier: JwtVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) {
      return true;
    }
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const query = request.query as Record<string, unknown> | undefined;
    const routeFeed = this.reflector.get<Feed | undefined>(FEED_ROUTE, context.getHandler());
    const feed = routeFeed !== undefined && query?.format === 'ics' ? routeFeed : undefined;
    if (query?.access_token !== undefined) {
      request.actor = await this.feedTokenInUrl(query.access_token, feed, request.headers.authorization);
    }
    // a command's actor was found before its body was read (createApp's onRequest hook)
    request.actor ??= await authenticate(request.headers.authorization, this.verifier);
    admit(request.actor, feed);
    return true;
  }

  /** A token in the URL: only a feed token, only for its feed (a URL ends up in logs and histories). */
  private async feedTokenInUrl(
    token: unknown,
    feed: Feed | undefined,
    header: string | undefined,
  ): Promise<TokenActor> {
    if (feed === undefined) {
      throw new AuthenticationError(
        'access_token in the URL is taken only by a calendar feed (GET /api/v1/schedule?format=ics); send the token in the Authorization header',
      );
    }
    if (header !== undefined) {
      throw new AuthenticationError(
        'send the token in the Authorization header or as access_token, not both',
      );
    }
    if (typeof token !== 'string') throw new AuthenticationError('give access_token once');
    const actor = await this.verifier.verify(token);
    if (actor.feed !== feed) {
      throw new AuthenticationError(
        'only a feed token (npm run token -- --feed schedule) may travel in a URL, where logs and browser histories keep it; send this one in the Authorization header',
      );
    }
    return actor;
  }
}

/**
 * Whether an authenticated actor may use a route (`feed`: the route's calendar feed, if this
 * request reads it): FORBIDDEN otherwise.
 */
export const admit = (actor: TokenActor, feed?: Feed): void => {
  if (actor.feed !== undefined && actor.feed !== feed) {
    throw forbidden(
      'a feed token reads only its feed (the schedule: GET /api/v1/schedule?format=ics)',
      'feed-token-reads-only-its-feed',
    );
  }
  // "Any" role in the contract is any of the process's roles: a token of the identity provider
  // that grants none of them (every employee's, with roles: ["offline_access"]) reads nothing.
  if (actor.roles.length === 0) {
    throw forbidden(
      `the token grants none of this service's roles (${ROLES.join(', ')})`,
      'actor-holds-a-process-role',
    );
  }
};

/** The token of an `Authorization: Bearer <token>` header (the scheme in any case), if it is one. */
export const bearerToken = (header: string | undefined): string | undefined =>
  header === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(header)?.[1];

/** The actor of a request's `Authorization: Bearer <token>` header, or AuthenticationError (401). */
export const authenticate = async (
  header: string | undefined,
  verifier: JwtVerifier,
): Promise<TokenActor> => {
  if (!header) throw new AuthenticationError('an Authorization: Bearer <token> header is required');
  const token = bearerToken(header);
  if (token === undefined) throw new AuthenticationError('the Authorization header must be "Bearer <token>"');
  return verifier.verify(token);
};
