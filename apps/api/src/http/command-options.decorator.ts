import { randomUUID } from 'node:crypto';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import { RequestValidationError } from '../application/application-errors';
import type { CommandOptions } from '../application/execute-decision.command';
import { readIdempotencyKey, requestFingerprint } from '../idempotency/idempotency.interceptor';

/** `If-Match: "7"` (W/ and bare numbers tolerated) → 7. */
export const parseIfMatch = (header: string | string[] | undefined): number | undefined => {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header[0] : header).trim();
  const match = /^(?:W\/)?"?(\d{1,15})"?$/.exec(value);
  if (!match) {
    throw new RequestValidationError('If-Match must name a version, like "3"', [
      { field: 'If-Match', message: 'invalid header' },
    ]);
  }
  return Number(match[1]);
};

const CORRELATION_ID = /^[\w.:-]{1,128}$/;

/** The actor, correlation id, If-Match version and Idempotency-Key of a command request. */
export const CommandOptionsParam = createParamDecorator(
  (_: unknown, context: ExecutionContext): CommandOptions => {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const actor = request.actor;
    if (!actor) throw new Error('CommandOptionsParam used on a public endpoint');
    const given = request.headers['x-correlation-id'];
    const correlationId = typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
    return {
      actor,
      correlationId,
      expectedVersion: parseIfMatch(request.headers['if-match']),
      ...idempotencyOf(request),
    };
  },
);

/** The Idempotency-Key, and with it the fingerprint of the request it came with. */
const idempotencyOf = (request: AuthenticatedRequest) => {
  const idempotencyKey = readIdempotencyKey(request);
  return idempotencyKey ? { idempotencyKey, requestFingerprint: requestFingerprint(request) } : {};
};
