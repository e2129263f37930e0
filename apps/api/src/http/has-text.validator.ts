import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * Text with at least one character that is not white space. class-validator's IsNotEmpty lets
 * `"   "` through, and a blank plan or lesson must not count as written (the decider refuses
 * blanks too; this answers with the field's name).
 */
export const HasText = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'hasText',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && /\S/.test(value),
        defaultMessage: (args) =>
          options?.each
            ? `each value in ${args?.property} must contain text`
            : `${args?.property} must contain text`,
      },
    },
    options,
  );
