/** Errors of the application layer (the domain's own are DomainError). */
export class PreconditionFailedError extends Error {
  constructor(
    readonly expectedVersions: readonly number[],
    readonly actualVersion?: number,
  ) {
    const named = `If-Match names version${expectedVersions.length > 1 ? 's' : ''} ${expectedVersions.join(', ')}`;
    super(
      actualVersion === undefined
        ? `${named}, but the stream moved on while the command ran`
        : `${named}, but the current version is ${actualVersion}`,
    );
    this.name = 'PreconditionFailedError';
  }
}

/** 409 IDEMPOTENCY_OUTCOME_UNKNOWN: whether a creation under this key was stored is unknown. */
export class IdempotencyOutcomeUnknownError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'IdempotencyOutcomeUnknownError';
  }
}

/** 409 IDEMPOTENCY_KEY_IN_PROGRESS: the first request with this key has not answered yet. */
export class IdempotencyKeyInProgressError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'IdempotencyKeyInProgressError';
  }
}

export class ConcurrencyConflictError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'ConcurrencyConflictError';
  }
}

export class IdempotencyKeyReusedError extends Error {
  constructor() {
    super('this Idempotency-Key was used with a different request in the last 24 hours');
    this.name = 'IdempotencyKeyReusedError';
  }
}

export class RequestValidationError extends Error {
  constructor(
    detail: string,
    readonly errors: { field: string; message: string }[] = [],
  ) {
    super(detail);
    this.name = 'RequestValidationError';
  }
}

export class ProjectionLaggingError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'ProjectionLaggingError';
  }
}

/** 503 SERVICE_UNAVAILABLE: the process is shutting down; the request is for another instance. */
export class ServiceShuttingDownError extends Error {
  constructor() {
    super(
      'the service is shutting down; send the request again (to another instance, or once it has restarted)',
    );
    this.name = 'ServiceShuttingDownError';
  }
}
