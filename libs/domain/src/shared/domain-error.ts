/**
 * Stable codes that clients branch on. The HTTP layer maps each to a status;
 * the domain never knows about HTTP.
 */
export type DomainErrorCode =
  | 'VALIDATION_FAILED'
  | 'FORBIDDEN'
  | 'SEGREGATION_OF_DUTIES'
  | 'NOT_FOUND'
  | 'INVALID_STATE'
  | 'RULE_VIOLATION';

/** A field of the command the refusal is about, as the request names it (`criteria.rollback`). */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    readonly detail: string,
    /** Machine-readable name of the rule that refused the command. */
    readonly rule?: string,
    /** For VALIDATION_FAILED: which fields, so clients can point at them as at the DTOs' errors. */
    readonly errors?: readonly FieldError[],
  ) {
    super(detail);
    this.name = 'DomainError';
  }
}

export const forbidden = (detail: string, rule?: string) => new DomainError('FORBIDDEN', detail, rule);
export const segregationOfDuties = (detail: string, rule?: string) =>
  new DomainError('SEGREGATION_OF_DUTIES', detail, rule);
export const notFound = (detail: string) => new DomainError('NOT_FOUND', detail);
export const invalidState = (detail: string, rule?: string) => new DomainError('INVALID_STATE', detail, rule);
export const ruleViolation = (detail: string, rule?: string) =>
  new DomainError('RULE_VIOLATION', detail, rule);
export const validationFailed = (detail: string, rule?: string, errors?: readonly FieldError[]) =>
  new DomainError('VALIDATION_FAILED', detail, rule, errors?.length ? errors : undefined);
