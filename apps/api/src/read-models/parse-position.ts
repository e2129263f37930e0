/** `minPosition` (already validated as digits) → bigint. */
export const parsePosition = (value: string | undefined): bigint | undefined =>
  value === undefined ? undefined : BigInt(value);
