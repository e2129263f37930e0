import { ValidateBy, type ValidationOptions } from 'class-validator';
import { hasVisibleText } from '@changeledger/domain';

/**
 * Text with at least one character that shows (`hasVisibleText`: not white space, nor a
 * zero-width or blank character). class-validator's IsNotEmpty lets `"   "` through, and a blank
 * plan or lesson must not count as written (the decider refuses blanks too; this answers with
 * the field's name).
 */
export const HasText = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'hasText',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && hasVisibleText(value),
        defaultMessage: (args) =>
          options?.each
            ? `each value in ${args?.property} must contain text`
            : `${args?.property} must contain text`,
      },
    },
    options,
  );
