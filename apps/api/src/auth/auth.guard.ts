import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { type Actor, forbidden, ROLES } from '@changeledger/domain';
import { AuthenticationError, JWT_VERIFIER, type JwtVerifier } from './jwt-verifier';

const IS_PUBLIC = 'changeledger:public';
/** Marks an endpoint that needs no token (health). */
export const Public = () => SetMetadata(IS_PUBLIC, true);

export type AuthenticatedRequest = FastifyRequest & { actor?: Actor };

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
    // a command's actor was found before its body was read (createApp's onRequest hook)
    request.actor ??= await authenticate(request.headers.authorization, this.verifier);
    // "Any" role in the contract is any of the process's roles: a token of the identity provider
    // that grants none of them (every employee's, with roles: ["offline_access"]) reads nothing.
    if (request.actor.roles.length === 0) {
      throw forbidden(
        `the token grants none of this service's roles (${ROLES.join(', ')})`,
        'actor-holds-a-process-role',
      );
    }
    return true;
  }
}

/** The actor of a request's `Authorization: Bearer <token>` header, or AuthenticationError (401). */
export const authenticate = async (header: string | undefined, verifier: JwtVerifier): Promise<Actor> => {
  if (!header) throw new AuthenticationError('an Authorization: Bearer <token> header is required');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new AuthenticationError('the Authorization header must be "Bearer <token>"');
  return verifier.verify(match[1]);
};
