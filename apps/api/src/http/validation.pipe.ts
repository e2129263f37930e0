import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate, type ValidationError } from 'class-validator';
import { notFound } from '@changeledger/domain';
import { RequestValidationError } from '../application/application-errors';

const PRIMITIVES = new Set<unknown>([String, Boolean, Number, Array, Object]);

/** Flattens class-validator's tree into the contract's `[{ field, message }]`. */
export const flattenValidationErrors = (
  errors: ValidationError[],
  parent = '',
): { field: string; message: string }[] =>
  errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({
      field,
      message: message.replace(/^property (\S+) should not exist$/, 'unknown field'),
    }));
    return [...own, ...flattenValidationErrors(error.children ?? [], field)];
  });

export const UNKNOWN_QUERY_PARAMETER = 'unknown query parameter';

/** The 400 of a request whose query parameters are refused (listed with their reasons). */
export const invalidQuery = (list: { field: string; message: string }[]) =>
  new RequestValidationError(
    `invalid query parameter(s): ${[...new Set(list.map((e) => e.field))].join(', ')}`,
    list,
  );

/**
 * Strict DTO validation: unknown fields and query parameters are refused (not stripped), types
 * are not coerced, and a missing body counts as `{}` so that optional-only commands need no body.
 */
@Injectable()
export class StrictValidationPipe implements PipeTransform {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const metatype = metadata.metatype;
    if (!metatype || PRIMITIVES.has(metatype)) return value;
    if (metadata.type === 'param') {
      const params = plainToInstance(metatype as new () => object, value);
      const errors = await validate(params);
      // An id that cannot exist names nothing: 404 rather than a validation error.
      if (errors.length > 0)
        throw notFound(
          flattenValidationErrors(errors)
            .map((e) => e.message)
            .join('; '),
        );
      return params;
    }
    if (metadata.type === 'query') {
      const query = plainToInstance(metatype as new () => object, value ?? {});
      // Unknown parameters are refused as in bodies: a misspelt filter (`stauts=closed`)
      // would otherwise answer an unfiltered list that looks like an answer.
      const errors = await validate(query, {
        whitelist: true,
        forbidNonWhitelisted: true,
        forbidUnknownValues: false,
        stopAtFirstError: true,
      });
      if (errors.length > 0) {
        throw invalidQuery(
          flattenValidationErrors(errors).map((e) =>
            e.message === 'unknown field' ? { ...e, message: UNKNOWN_QUERY_PARAMETER } : e,
          ),
        );
      }
      return query;
    }
    if (metadata.type !== 'body') return value;
    // No body at all is an empty object; a JSON `null` is a body, and not an object.
    const body = value === undefined ? {} : value;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new RequestValidationError('the body must be a JSON object');
    }
    const instance = plainToInstance(metatype as new () => object, body, { enableImplicitConversion: false });
    const errors = await validate(instance, {
      whitelist: true,
      forbidNonWhitelisted: true,
      // Classes without decorators (EmptyDto) are fine; their unknown fields are still refused.
      forbidUnknownValues: false,
      stopAtFirstError: true,
      validationError: { target: false, value: false },
    });
    if (errors.length > 0) {
      const list = flattenValidationErrors(errors);
      const fields = [...new Set(list.map((e) => e.field))];
      throw new RequestValidationError(`invalid field(s): ${fields.join(', ')}`, list);
    }
    return instance;
  }
}
