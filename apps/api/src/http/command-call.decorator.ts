import { randomUUID } from 'node:crypto';
import { createParamDecorator, type ExecutionContext, HttpStatus } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import type { FastifyReply } from 'fastify';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import { RequestValidationError } from '../application/application-errors';
import type { CommandOptions } from '../application/execute-decision.command';
import { invalidQuery, UNKNOWN_QUERY_PARAMETER } from './validation.pipe';
import {
  type IdempotentRequest,
  readIdempotencyKey,
  requestFingerprint,
} from '../idempotency/idempotent-commands';

/**
 * One entity tag as we issue them: `"7"` (no leading zero); `W/"7"` and a bare `7` tolerated (a
 * proxy may weaken our tags).
 */
const ENTITY_TAG = /^(?:W\/)?(?:"(0|[1-9]\d{0,14})"|(0|[1-9]\d{0,14}))$/;

/**
 * `If-Match` → the versions it names: `"7"` → [7]; a list (`"4", "5"`, or the header repeated)
 * → each, any of which matches; `*` → undefined (any current version: no pin). Anything else is
 * refused rather than guessed at.
 */
export const parseIfMatch = (header: string | string[] | undefined): number[] | undefined => {
  if (header === undefined) return undefined;
  const tags = (Array.isArray(header) ? header : [header])
    .flatMap((value) => value.split(','))
    .map((tag) => tag.trim())
    .filter((tag) => tag !== ''); // empty list elements are ignored (RFC 9110 5.6.1)
  if (tags.length === 1 && tags[0] === '*') return undefined;
  const versions = tags.map((tag) => ENTITY_TAG.exec(tag)).map((m) => (m ? Number(m[1] ?? m[2]) : undefined));
  if (versions.length === 0 || versions.length > 32 || versions.some((v) => v === undefined)) {
    throw new RequestValidationError('If-Match must name versions, like "3" (or "3", "4"; or *)', [
      { field: 'If-Match', message: 'invalid header' },
    ]);
  }
  return versions as number[];
};

const CORRELATION_ID = /^[\w.:-]{1,128}$/;

/** A command request as the controllers run it. */
export interface CommandCall {
  readonly options: CommandOptions;
  /** With an `Idempotency-Key` on a POST: what `IdempotentCommands` needs to answer a repeat. */
  readonly idempotency?: IdempotentRequest;
  /** Marks the answer `Idempotent-Replayed: true`: the handler found the command applied before. */
  readonly markReplayed: () => void;
}

/**
 * The actor, correlation id, If-Match version and Idempotency-Key of a command request. Every
 * command route takes it, and runs its command through `IdempotentCommands` with it.
 */
export const commandCallOf = (_: unknown, context: ExecutionContext): CommandCall => {
  const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
  const actor = request.actor;
  if (!actor) throw new Error('CommandCallParam used on a public endpoint');
  // Commands take no query parameters: one would be ignored (`?dryRun=true` would still act).
  const query = Object.keys((request.query as Record<string, unknown> | undefined) ?? {});
  if (query.length > 0)
    throw invalidQuery(query.map((field) => ({ field, message: UNKNOWN_QUERY_PARAMETER })));
  const given = request.headers['x-correlation-id'];
  const correlationId = typeof given === 'string' && CORRELATION_ID.test(given) ? given : randomUUID();
  const expectedVersions = parseIfMatch(request.headers['if-match']);
  const key = readIdempotencyKey(request);
  const reply = context.switchToHttp().getResponse<FastifyReply>();
  const markReplayed = () => void reply.header('Idempotent-Replayed', 'true');
  if (key === undefined) return { options: { actor, correlationId, expectedVersions }, markReplayed };
  // In the events too: the handler recognises a command that landed before a crash by them.
  const fingerprint = requestFingerprint(request);
  const options = {
    actor,
    correlationId,
    expectedVersions,
    idempotencyKey: key,
    requestFingerprint: fingerprint,
  };
  if (request.method !== 'POST') return { options, markReplayed };
  return {
    options,
    markReplayed,
    idempotency: {
      scope: `${actor.id}\u0000${key}`,
      fingerprint,
      statusCode:
        (Reflect.getMetadata(HTTP_CODE_METADATA, context.getHandler()) as number | undefined) ??
        HttpStatus.CREATED,
      reclaimAbandoned: (request.routeOptions?.url ?? '').includes('/:id'),
      replayed: (statusCode) => {
        markReplayed();
        if (statusCode >= 400) void reply.header('Content-Type', 'application/problem+json');
        void reply.status(statusCode);
      },
    },
  };
};

export const CommandCallParam = createParamDecorator(commandCallOf);
