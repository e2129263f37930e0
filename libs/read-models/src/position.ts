/** Positions are unsigned 64-bit: 20 digits, zero-padded, so text order is numeric order. */
export const comparablePosition = (position: bigint | string): string => {
  const value = typeof position === 'bigint' ? position : BigInt(position);
  if (value < 0n || value > 18_446_744_073_709_551_615n)
    throw new RangeError(`position out of range: ${value}`);
  return value.toString().padStart(20, '0');
};
