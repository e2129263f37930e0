import { withoutControlCharacters } from '@changeledger/domain';

/**
 * One RFC 4180 cell. Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or
 * carriage return at the start) gets a leading apostrophe: exports carry text users typed
 * (titles, names, lessons learned), and a CSV opened in a spreadsheet must not execute it.
 */
export const csvCell = (value: string | number | null): string => {
  if (value === null) return '';
  let text = withoutControlCharacters(String(value));
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};
