import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { canonicalJson, DomainError } from '@changeledger/domain';
import { AppendOutcomeUnknownError } from '@changeledger/event-store';
import { CLOCK, type Clock } from '@changeledger/platform';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import {
  IdempotencyKeyReusedError,
  IdempotencyKeyInProgressError,
  IdempotencyOutcomeUnknownError,
  RequestValidationError,
} from '../application/application-errors';
import { problem, toProblem } from '../http/problem-details.filter';
import {
  IDEMPOTENCY_RENEW_EVERY_MS,
  IDEMPOTENCY_STORE,
  type IdempotencyStore,
  leaseOver,
  type StoredResponse,
} from './idempotency-store.port';

export const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** What a client can do about an unknown outcome, in every such answer. */
const WHAT_TO_DO =
  'a change request is looked for by this key when the same request is sent again a minute after the first stopped running; ' +
  'otherwise look for it (GET /api/v1/changes, GET /api/v1/standard-templates) before sending it again under a new key';

/** The answer kept for a creation whose first attempt may or may not have been stored. */
const OUTCOME_UNKNOWN = problem(
  'IDEMPOTENCY_OUTCOME_UNKNOWN',
  'the first request with this Idempotency-Key failed while it was being stored (the event store became unreachable), ' +
    `so whether it was created is unknown; ${WHAT_TO_DO}`,
);
/** How long a repeat waits for the first request's answer before it is told to come back. */
export const IN_FLIGHT_WAIT_MS = 5000;

/** A stored "outcome unknown" not yet settled by a look (one that was carries `lookedFor`). */
const isUnsettledOutcome = (response: StoredResponse) =>
  response.statusCode === OUTCOME_UNKNOWN.status &&
  (response.body as { code?: unknown } | null)?.code === OUTCOME_UNKNOWN.code &&
  (response.body as { lookedFor?: unknown }).lookedFor === undefined;

/** The answer kept once a look found nothing: not looked for again (the look is not cheap). */
const notFoundAnswer = (claimedAt: number, lookedAt: Date): StoredResponse => ({
  statusCode: OUTCOME_UNKNOWN.status,
  body: {
    ...problem(
      'IDEMPOTENCY_OUTCOME_UNKNOWN',
      `the first request with this Idempotency-Key (${new Date(claimedAt).toISOString()}) failed while it was being stored, and ` +
        `no change request you submitted under this key was found at ${lookedAt.toISOString()}: most likely it was not created; ` +
        'look for it (GET /api/v1/changes) before sending it again under a new key',
    ),
    lookedFor: lookedAt.toISOString(),
  },
});
/**
 * A creation's claim still pending after the lease, whose creation was not found (or cannot be
 * looked for: templates): its process stopped before answering (before creating, or after), or
 * could not record its answer, or (rarely) could not mark itself still running (see
 * IDEMPOTENCY_RENEW_EVERY_MS). It is never created twice.
 */
const abandonedCreation = (since: number) =>
  new IdempotencyOutcomeUnknownError(
    `the first request with this Idempotency-Key (${new Date(since).toISOString()}) has had no recorded answer for over a minute ` +
      '(the service stopped while it ran, or could not record the answer or that it was still running), ' +
      `so whether it was created is unknown; ${WHAT_TO_DO}`,
  );

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

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

/**
 * What makes two requests the same request: method, URL, route and the body's canonical JSON.
 */
export const requestFingerprint = (request: AuthenticatedRequest): string => {
  const route = request.routeOptions?.url ?? request.url;
  return createHash('sha256')
    .update(
      `${request.method} ${request.url} ${route}\n${canonicalJson(request.body === undefined ? {} : request.body)}`,
    )
    .digest('hex');
};

/** A command request that came with an `Idempotency-Key` (see `CommandCallParam`). */
export interface IdempotentRequest {
  /** The key, per user: `<actor id>\0<key>`. */
  readonly scope: string;
  readonly fingerprint: string;
  /** The status a first answer is sent, and replayed, with (the route's `@HttpCode`). */
  readonly statusCode: number;
  /**
   * A command on an existing change or template: the handler's check of its stream keeps a
   * command that landed before a crash from landing twice, so an abandoned claim may be taken
   * over. A creation has no stream to check yet: its key stays claimed (see `findAbandonedCreation`).
   */
  readonly reclaimAbandoned: boolean;
  /**
   * A creation whose claim its process left pending, or whose outcome was stored as unknown:
   * looks for what it created (undefined: not found; throws when it cannot look). Found, its
   * answer is kept and replayed; never created again.
   */
  readonly findAbandonedCreation?: (claimedAt: number) => Promise<unknown>;
  /** Marks the answer as a replay, sent with the stored status. */
  replayed(statusCode: number): void;
}

/**
 * A command the domain decided against (403, 404, 409 `INVALID_STATE`, 422): that refusal is the
 * request's answer, replayed like a success. Not a VALIDATION_FAILED (the request was malformed,
 * as a DTO's 400, which never claims the key) nor a conflict, precondition or outage: there
 * nothing was decided, and the same request may succeed when sent again.
 */
const isDecidedRefusal = (error: unknown): error is DomainError =>
  error instanceof DomainError && error.code !== 'VALIDATION_FAILED';

/**
 * `Idempotency-Key` on a POST: the first answer (a success or a decided refusal) is stored and
 * returned again for a repeat with the same body within 24 h; the same key with another body is
 * refused. Keys are per user.
 *
 * Called by the controllers around the command, not a Nest interceptor: Nest runs each request
 * an interceptor wraps through rxjs and two `AsyncResource.bind`s, whether or not it carries a
 * key, which cost the command endpoints about a fifth of their throughput (measured).
 */
@Injectable()
export class IdempotentCommands {
  private readonly logger = new Logger('Idempotency');
  /** See IN_FLIGHT_WAIT_MS (shorter in tests). */
  inFlightWaitMs = IN_FLIGHT_WAIT_MS;
  /** See IDEMPOTENCY_RENEW_EVERY_MS (shorter in tests). */
  renewEveryMs = IDEMPOTENCY_RENEW_EVERY_MS;

  constructor(
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * Runs `command` once per key: a repeat gets the first answer (as stored: `T`, or the
   * `IDEMPOTENCY_OUTCOME_UNKNOWN` problem), or waits for it; a creation whose answer is unknown
   * a minute on is looked for (`settleByLooking`).
   */
  async run<T>(request: IdempotentRequest | undefined, command: () => Promise<T>): Promise<T> {
    if (!request) return command();
    const { scope, fingerprint, reclaimAbandoned } = request;
    const deadline = Date.now() + this.inFlightWaitMs;
    let claimedAt: number;
    for (;;) {
      const claim = await this.store.claim(scope, fingerprint, this.clock.now(), { reclaimAbandoned });
      if (claim.kind === 'mismatch') throw new IdempotencyKeyReusedError();
      if (claim.kind === 'replay') {
        // A creation stored as "outcome unknown" (EventStoreDB became unreachable during its
        // append) may have been created after all: once the lease is over it is looked for, once.
        if (
          !reclaimAbandoned &&
          request.findAbandonedCreation &&
          isUnsettledOutcome(claim.response) &&
          leaseOver(claim.aliveAt, this.clock.now().getTime())
        ) {
          return this.settleByLooking<T>(request, claim.claimedAt, 'done');
        }
        request.replayed(claim.response.statusCode);
        return claim.response.body as T;
      }
      if (claim.kind === 'claimed') {
        claimedAt = claim.claimedAt;
        break;
      }
      if (!reclaimAbandoned && leaseOver(claim.aliveAt, this.clock.now().getTime())) {
        if (!request.findAbandonedCreation) throw abandonedCreation(claim.since);
        return this.settleByLooking<T>(request, claim.since, 'pending');
      }
      // The same request is being processed right now: wait for its answer.
      if (Date.now() > deadline) {
        // Not CONCURRENCY_CONFLICT, which says nothing was stored: this one may yet be.
        throw new IdempotencyKeyInProgressError(
          `the first request with this Idempotency-Key is still being processed (waited ${this.inFlightWaitMs} ms for its answer); ` +
            'send the same request with the same key again shortly to get its answer',
        );
      }
      await sleep(25);
    }
    let body: T;
    // while the command runs, however long: its claim is alive, and a repeat waits for it
    const alive = setInterval(() => {
      this.store.renew(scope, claimedAt, this.clock.now()).catch((error: unknown) => {
        this.logger.error(`Idempotency-Key claim not renewed: ${messageOf(error)}`);
      });
    }, this.renewEveryMs);
    alive.unref();
    try {
      body = await command();
    } catch (error) {
      clearInterval(alive);
      if (!reclaimAbandoned && error instanceof AppendOutcomeUnknownError) {
        // A creation whose stream may or may not have been written (the event store became
        // unreachable while it was): freed, a retry could create a second one.
        await this.store
          .complete(scope, claimedAt, { statusCode: OUTCOME_UNKNOWN.status, body: OUTCOME_UNKNOWN })
          .catch(() => undefined); // then the claim stays in flight: no second creation either
      } else if (isDecidedRefusal(error)) {
        // The contract: a repeat gets the first response, a refusal too (approving a change
        // still in review is 409 on every retry with that key, not an approval once it is
        // reviewed: a new attempt takes a new key). Nothing was appended, so if the answer
        // cannot be kept the key is freed instead.
        const refusal = toProblem(error);
        try {
          await this.store.complete(scope, claimedAt, { statusCode: refusal.status, body: refusal });
        } catch (storeError) {
          this.logger.error(
            `Idempotency-Key refusal not stored (the key is freed): ${messageOf(storeError)}`,
          );
          await this.freeKey(scope, claimedAt);
        }
      } else {
        // Nothing was decided: the same request may succeed later, under the same key. (A
        // command on an existing change that may have landed is found in its stream on retry.)
        await this.freeKey(scope, claimedAt);
      }
      throw error; // the client gets its answer whatever the key store did
    }
    clearInterval(alive);
    // The command is stored. If its answer cannot be kept, the claim stays in flight rather
    // than freed (freed, a retried creation would be made twice): the client still gets it now.
    await this.store
      .complete(scope, claimedAt, { statusCode: request.statusCode, body })
      .catch((error: unknown) => {
        this.logger.error(`Idempotency-Key answer not stored (the key stays in flight): ${messageOf(error)}`);
      });
    return body;
  }

  /**
   * Looks for the creation a claim left without an answer (`pending`) or with "outcome unknown"
   * (`done`), and keeps what it finds as the answer: the creation's; or, for `done` (its request
   * is over), that it was not found.
   * A failed look (read models lagging, a store down) is that failure, 503, and keeps nothing:
   * the same key may be sent again ("unknown" would send the client to create it anew).
   */
  private async settleByLooking<T>(
    request: IdempotentRequest,
    claimedAt: number,
    stored: 'pending' | 'done',
  ): Promise<T> {
    const found = await request.findAbandonedCreation!(claimedAt);
    // Not found while the claim is pending: its request may still be running (a slow event
    // store) and create it yet, so nothing is kept and the next repeat looks again.
    if (found === undefined && stored === 'pending') throw abandonedCreation(claimedAt);
    const answer =
      found !== undefined
        ? { statusCode: request.statusCode, body: found }
        : notFoundAnswer(claimedAt, this.clock.now());
    const keep = stored === 'pending' ? this.store.complete : this.store.settle;
    await keep
      .call(this.store, request.scope, claimedAt, answer)
      .catch((error: unknown) => this.logger.error(`Idempotency-Key answer not stored: ${messageOf(error)}`));
    request.replayed(answer.statusCode);
    return answer.body as T;
  }

  /**
   * Frees a claim. If the key store fails, the claim stays in flight (a change's command until
   * its lease runs out; a creation's for the key's 24 h: a repeat waits, then gets 409, and after
   * the lease the creation is looked for, see `settleByLooking`): logged,
   * never answered instead of the command's own answer.
   */
  private async freeKey(scope: string, claimedAt: number): Promise<void> {
    try {
      await this.store.release(scope, claimedAt);
    } catch (error) {
      this.logger.error(`Idempotency-Key not freed (it stays in flight): ${messageOf(error)}`);
    }
  }
}
