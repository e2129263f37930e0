import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '@changeledger/domain';
import {
  AppendTooLargeError,
  ConcurrencyError,
  EventStoreUnavailableError,
  StoredEventCorruptError,
} from '@changeledger/event-store';
import { ReadModelStoreUnavailableError, ReadModelsSwappingError } from '@changeledger/read-models';
import { AuthenticationError, IdentityProviderUnavailableError } from '../auth/jwt-verifier';
import { IdempotencyStoreUnavailableError } from '../idempotency/idempotency-store.port';
import {
  ConcurrencyConflictError,
  IdempotencyKeyReusedError,
  IdempotencyKeyInProgressError,
  IdempotencyOutcomeUnknownError,
  PreconditionFailedError,
  ProjectionLaggingError,
  RequestValidationError,
  ServiceShuttingDownError,
} from '../application/application-errors';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { field: string; message: string }[];
  rule?: string;
  instance?: string;
}

const TITLES: Record<string, [number, string]> = {
  VALIDATION_FAILED: [400, 'The request is not valid'],
  UNAUTHENTICATED: [401, 'Authentication required'],
  FORBIDDEN: [403, 'Not allowed for your roles'],
  SEGREGATION_OF_DUTIES: [403, 'Segregation of duties'],
  NOT_FOUND: [404, 'Not found'],
  METHOD_NOT_ALLOWED: [405, 'Method not allowed'],
  INVALID_STATE: [409, 'Not allowed in the current status'],
  CONCURRENCY_CONFLICT: [409, 'Concurrent modification'],
  IDEMPOTENCY_KEY_REUSED: [409, 'Idempotency-Key reused'],
  IDEMPOTENCY_OUTCOME_UNKNOWN: [409, 'Outcome of the first request unknown'],
  IDEMPOTENCY_KEY_IN_PROGRESS: [409, 'First request with this Idempotency-Key in progress'],
  PRECONDITION_FAILED: [412, 'Version precondition failed'],
  REQUEST_TIMEOUT: [408, 'Request not received in time'],
  PAYLOAD_TOO_LARGE: [413, 'Payload too large'],
  HEADERS_TOO_LARGE: [431, 'Request headers too large'],
  RULE_VIOLATION: [422, 'A process rule forbids this'],
  PROJECTION_LAGGING: [503, 'Read models are behind'],
  SERVICE_UNAVAILABLE: [503, 'A dependency is unavailable'],
  INTERNAL: [500, 'Internal error'],
};

export const problem = (
  code: keyof typeof TITLES | string,
  detail: string,
  extra: Partial<Problem> = {},
): Problem => {
  const [status, title] = TITLES[code] ?? TITLES.INTERNAL;
  return {
    type: `https://changeledger.dev/problems/${code.toLowerCase().replace(/_/g, '-')}`,
    title,
    status,
    detail,
    code,
    ...extra,
  };
};

/** Turns any error into application/problem+json with the contract's codes. */
export const toProblem = (error: unknown): Problem => {
  if (error instanceof DomainError) {
    return problem(error.code, error.detail, {
      ...(error.errors ? { errors: [...error.errors] } : {}),
      ...(error.rule ? { rule: error.rule } : {}),
    });
  }
  if (error instanceof RequestValidationError) {
    return problem('VALIDATION_FAILED', error.message, error.errors.length ? { errors: error.errors } : {});
  }
  if (error instanceof AuthenticationError) return problem('UNAUTHENTICATED', error.message);
  // What failed where (hosts, ports, the client's error text) goes to the log, not to clients.
  if (error instanceof IdentityProviderUnavailableError) {
    return problem(
      'SERVICE_UNAVAILABLE',
      "the identity provider's key set could not be fetched; try again shortly",
    );
  }
  if (error instanceof PreconditionFailedError) return problem('PRECONDITION_FAILED', error.message);
  if (error instanceof ConcurrencyConflictError || error instanceof ConcurrencyError) {
    return problem('CONCURRENCY_CONFLICT', error.message);
  }
  if (error instanceof IdempotencyKeyReusedError) return problem('IDEMPOTENCY_KEY_REUSED', error.message);
  if (error instanceof IdempotencyKeyInProgressError) {
    return problem('IDEMPOTENCY_KEY_IN_PROGRESS', error.message);
  }
  if (error instanceof IdempotencyOutcomeUnknownError) {
    return problem('IDEMPOTENCY_OUTCOME_UNKNOWN', error.message);
  }
  if (error instanceof ProjectionLaggingError) return problem('PROJECTION_LAGGING', error.message);
  if (error instanceof ServiceShuttingDownError) return problem('SERVICE_UNAVAILABLE', error.message);
  if (error instanceof ReadModelsSwappingError) return problem('SERVICE_UNAVAILABLE', error.message);
  if (error instanceof ReadModelStoreUnavailableError) {
    return problem('SERVICE_UNAVAILABLE', 'the read models are unavailable; try again shortly');
  }
  if (error instanceof IdempotencyStoreUnavailableError) {
    return problem('SERVICE_UNAVAILABLE', 'the Idempotency-Key store is unavailable; try again shortly');
  }
  if (error instanceof EventStoreUnavailableError) {
    return problem('SERVICE_UNAVAILABLE', 'the event store is unavailable; try again shortly');
  }
  if (error instanceof AppendTooLargeError) {
    // a body within 1 MiB whose record is not: an amendment records each changed field's
    // previous value beside the new one
    return problem(
      'PAYLOAD_TOO_LARGE',
      `what this command would record takes ${error.size} (an amendment records the previous ` +
        'value of each field it changes beside the new one); nothing was stored',
    );
  }
  // Names only the event (stream, revision, position): what an operator and an auditor must find.
  if (error instanceof StoredEventCorruptError) return problem('INTERNAL', error.message);
  if (error instanceof HttpException) return fromHttpException(error);
  const fastify = error as { statusCode?: number; code?: string; message?: string };
  if (typeof fastify.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    return fromFastifyError(fastify.statusCode, fastify.code, fastify.message ?? 'bad request');
  }
  return problem('INTERNAL', 'an unexpected error occurred; it has been logged');
};

const fromHttpException = (error: HttpException): Problem => {
  const status = error.getStatus();
  if (status === 404) return problem('NOT_FOUND', error.message);
  if (status === 405) return problem('METHOD_NOT_ALLOWED', error.message);
  if (status === 413) return problem('PAYLOAD_TOO_LARGE', 'the request body is larger than 1 MiB');
  if (status === 401) return problem('UNAUTHENTICATED', error.message);
  if (status === 403) return problem('FORBIDDEN', error.message);
  // Fastify's body errors reach here as HttpExceptions (Nest keeps their status and message only)
  if (status === 415) return problem('VALIDATION_FAILED', 'send the body as application/json');
  if (status === 400 && error.message.startsWith('Body cannot be empty when content-type')) {
    return problem('VALIDATION_FAILED', 'the body is empty but Content-Type says application/json; send {}');
  }
  if (status >= 400 && status < 500) return problem('VALIDATION_FAILED', error.message);
  return problem('INTERNAL', 'an unexpected error occurred; it has been logged');
};

const fromFastifyError = (status: number, code: string | undefined, message: string): Problem => {
  if (status === 413 || code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return problem('PAYLOAD_TOO_LARGE', 'the request body is larger than 1 MiB');
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return problem('VALIDATION_FAILED', 'send the body as application/json');
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return problem('VALIDATION_FAILED', 'the body is empty but Content-Type says application/json; send {}');
  }
  if (status === 404) return problem('NOT_FOUND', message);
  return problem('VALIDATION_FAILED', `the body is not valid JSON: ${message}`);
};

/**
 * A request's URL as the log shows it: a token given in it (a calendar feed's) left out, under
 * whatever spelling of its name the query parser decodes to `access_token` (`access%5Ftoken`).
 * A `#` ends nothing: clients send no fragment, and the router hands the query parser all that
 * follows the `?` (`?x=#&access_token=…` authenticates).
 */
export const loggableUrl = (url: string): string => {
  const query = url.indexOf('?');
  if (query < 0) return url;
  const pairs = url
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      return decodedName(name).toLowerCase() === 'access_token' ? `${name}=(left out)` : pair;
    });
  return `${url.slice(0, query + 1)}${pairs.join('&')}`;
};

const decodedName = (name: string): string => {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
};

@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemDetails');

  catch(error: unknown, host: ArgumentsHost) {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const body = toProblem(error);
    if (body.code === 'INTERNAL') {
      this.logger.error(
        `${request.method} ${loggableUrl(request.url)}: ${(error as Error)?.stack ?? String(error)}`,
      );
    } else if (body.status >= 500) {
      const cause = error instanceof Error ? error.message : String(error);
      this.logger.warn(`${request.method} ${loggableUrl(request.url)}: ${body.code}: ${cause}`);
    }
    // (every 503 is worth another try shortly: a dependency back, another instance, the models)
    if (body.status === 503 || body.code === 'IDEMPOTENCY_KEY_IN_PROGRESS') reply.header('Retry-After', '1');
    if (body.code === 'UNAUTHENTICATED') reply.header('WWW-Authenticate', 'Bearer');
    void reply.status(body.status).header('Content-Type', 'application/problem+json').send(body);
  }
}
