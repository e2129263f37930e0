import { ValidateBy, type ValidationOptions } from 'class-validator';

/** The highest log position: EventStoreDB's positions and SQLite's integers are signed 64-bit. */
export const MAX_LOG_POSITION = 2n ** 63n - 1n;

const DIGITS = /^\d{1,19}$/;

/** A log position on the wire: decimal digits, at most MAX_LOG_POSITION. */
export const isLogPosition = (value: unknown): boolean =>
  typeof value === 'string' && DIGITS.test(value) && BigInt(value) <= MAX_LOG_POSITION;

/**
 * A query parameter holding a log position. Larger values are refused here (400), not left to
 * the stores (SQLite cannot bind them: a 500 before this check).
 */
export const IsLogPosition = (field: string, options?: ValidationOptions): PropertyDecorator =>
  ValidateBy(
    {
      name: 'isLogPosition',
      validator: {
        validate: isLogPosition,
        defaultMessage: () => `${field} must be a log position: decimal digits, at most ${MAX_LOG_POSITION}`,
      },
    },
    options,
  );
