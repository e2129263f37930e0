import { CONTROL_CHARACTER } from '@changeledger/domain';

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

/**
 * Control characters but tab, line feed and carriage return, as U+FFFD: requests refuse them,
 * yet text stored before that (or written around the API) must not reach a terminal as escape
 * sequences (`npm run report` writes to stdout) nor a spreadsheet or page.
 */
const CONTROL_CHARACTERS = new RegExp(CONTROL_CHARACTER.source, 'g');
export const withoutControlCharacters = (text: string): string => text.replace(CONTROL_CHARACTERS, '\ufffd');
