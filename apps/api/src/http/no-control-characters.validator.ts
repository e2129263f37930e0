import { ValidateBy, type ValidationOptions } from 'class-validator';
import { CONTROL_CHARACTER } from '@changeledger/domain';

/**
 * Text without CONTROL_CHARACTERs: for query parameters, which the body walk does not see (a NUL
 * in a search would reach a MongoDB pattern, which refuses it, as an unexpected error).
 */
export const NoControlCharacters = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'noControlCharacters',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || !CONTROL_CHARACTER.test(value),
        defaultMessage: (args) => `${args?.property} must not contain control characters`,
      },
    },
    options,
  );
