import { ValidateIf } from 'class-validator';

/**
 * An optional field of a request body: absent is fine, `null` is not. class-validator's
 * IsOptional lets both through, and a JSON null would be stored and break whatever later reads
 * the field as its type (a projection, an evidence pack).
 */
export const OptionalNotNull = () => ValidateIf((_object: object, value: unknown) => value !== undefined);
