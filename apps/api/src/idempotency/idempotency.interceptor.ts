import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CallHandler,
  type ExecutionContext,
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  type NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import type { FastifyReply } from 'fastify';
import { from, lastValueFrom, type Observable } from 'rxjs';
import { canonicalJson } from '@changeledger/domain';
import { CLOCK, type Clock } from '@changeledger/platform';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import {
  ConcurrencyConflictError,
  IdempotencyKeyReusedError,
  RequestValidationError,
} from '../application/application-errors';
import { AppendOutcomeUnknownError } from '@changeledger/event-store';
import { problem } from '../http/problem-details.filter';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './idempotency-store.port';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The answer kept for a creation whose first attempt may or may not have been stored. */
const OUTCOME_UNKNOWN = problem(
  'IDEMPOTENCY_OUTCOME_UNKNOWN',
  'the first request with this Idempotency-Key failed while it was being stored (the event store became unreachable), so whether it was created is unknown; ' +
    'look for it (GET /api/v1/changes, GET /api/v1/standard-templates) before sending it again under a new key',
);
const IN_FLIGHT_WAIT_MS = 5000;

export const readIdempotencyKey = (request: AuthenticatedRequest): string | undefined => {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!KEY_PATTERN.test(key)) {
    throw new RequestValidationError('Idempotency-Key must be 1 to 255 visible ASCII characters', [
      { field: 'Idempotency-Key', message: 'invalid header' },
    ]);
  }
  return key;
};

const fingerprints = new WeakMap<object, string>();

/**
 * What makes two requests the same request: method, URL, route and the body's canonical JSON.
 * Once per request: the interceptor's claim and the command's metadata both need it.
 */
export const requestFingerprint = (request: AuthenticatedRequest): string => {
  let fingerprint = fingerprints.get(request);
  if (fingerprint === undefined) {
    const route = request.routeOptions?.url ?? request.url;
    fingerprint = createHash('sha256')
      .update(`${request.method} ${request.url} ${route}\n${canonicalJson(request.body ?? {})}`)
      .digest('hex');
    fingerprints.set(request, fingerprint);
  }
  return fingerprint;
};

/**
 * `Idempotency-Key` on a POST: the first answer is stored and returned again for a repeat with
 * the same body within 24 h; the same key with another body is refused. Keys are per user.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Idempotency');

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    if (request.method !== 'POST' || !request.actor) return next.handle();
    const key = readIdempotencyKey(request);
    if (key === undefined) return next.handle();
    const statusCode =
      this.reflector.get<number>(HTTP_CODE_METADATA, context.getHandler()) ?? HttpStatus.CREATED;
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    return from(this.run(request, reply, key, statusCode, next));
  }

  private async run(
    request: AuthenticatedRequest,
    reply: FastifyReply,
    key: string,
    statusCode: number,
    next: CallHandler,
  ): Promise<unknown> {
    const scope = `${request.actor!.id}\u0000${key}`;
    const fingerprint = requestFingerprint(request);
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    // A command on an existing change or template: the handler's check of its stream keeps a
    // command that landed before a crash from landing twice, so an abandoned claim may be taken
    // over. A creation has no stream to check yet: its key stays claimed.
    const reclaimAbandoned = (request.routeOptions?.url ?? '').includes('/:id');
    let claimedAt: number;
    for (;;) {
      const claim = await this.store.claim(scope, fingerprint, this.clock.now(), { reclaimAbandoned });
      if (claim.kind === 'mismatch') throw new IdempotencyKeyReusedError();
      if (claim.kind === 'replay') {
        void reply.header('Idempotent-Replayed', 'true');
        if (claim.response.statusCode >= 400) void reply.header('Content-Type', 'application/problem+json');
        void reply.status(claim.response.statusCode);
        return claim.response.body;
      }
      if (claim.kind === 'claimed') {
        claimedAt = claim.claimedAt;
        break;
      }
      // The same request is being processed right now: wait for its answer.
      if (Date.now() > deadline) {
        throw new ConcurrencyConflictError('a request with this Idempotency-Key is still being processed');
      }
      await sleep(25);
    }
    let body: unknown;
    try {
      body = await lastValueFrom(next.handle(), { defaultValue: undefined });
    } catch (error) {
      if (!reclaimAbandoned && error instanceof AppendOutcomeUnknownError) {
        // A creation whose stream may or may not have been written (the event store became
        // unreachable while it was): freed, a retry could create a second one.
        await this.store
          .complete(scope, claimedAt, { statusCode: OUTCOME_UNKNOWN.status, body: OUTCOME_UNKNOWN })
          .catch(() => undefined); // then the claim stays in flight: no second creation either
      } else {
        // Nothing was stored: the client may correct the request and retry with the same key. (A
        // command on an existing change that may have landed is found in its stream on retry.)
        await this.store.release(scope, claimedAt);
      }
      throw error;
    }
    // The command is stored. If its answer cannot be kept, the claim stays in flight rather
    // than freed (freed, a retried creation would be made twice): the client still gets it now.
    await this.store.complete(scope, claimedAt, { statusCode, body }).catch((error: unknown) => {
      this.logger.error(
        `Idempotency-Key answer not stored (the key stays in flight): ${error instanceof Error ? error.message : String(error)}`,
      );
    });
    return body;
  }
}

/**
 * On each command endpoint (POST), not global: Nest runs every request an interceptor wraps
 * through rxjs and two `AsyncResource.bind`s, which halved `GET /health`'s throughput (3,047 →
 * 5,877 req/s without it, measured) and slowed every read.
 */
export const Idempotent = () => UseInterceptors(IdempotencyInterceptor);
