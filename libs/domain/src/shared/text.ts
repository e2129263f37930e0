/**
 * A character that shows: not white space, a control or format character (zero-width space,
 * joiners, direction marks), a combining mark alone, or one of the blank "letters" that render
 * as nothing (braille blank U+2800, the Hangul fillers). `trim()` and `\S` let those through, and a
 * rollback plan of U+2800 would count as written.
 */
const VISIBLE = /[^\s\p{Cc}\p{Cf}\p{Z}\p{Mn}\p{Me}\u2800\u3164\uFFA0\u115F\u1160]/u;

/** Whether a text has something to read in it. */
export const hasVisibleText = (text: string): boolean => VISIBLE.test(text);

const FORMAT_CHARACTERS = /\p{Cf}/gu;

/**
 * A system's name as names are compared (a template's scope, schedule conflicts): without
 * format characters (a zero-width space pasted in), surrounding white space or case.
 */
export const systemKey = (name: string): string => name.replace(FORMAT_CHARACTERS, '').trim().toLowerCase();

/**
 * A procedure step as steps are compared (a standard change's plan against its template's
 * procedure): without format characters, with each run of white space one space, trimmed. Case
 * counts: `qm set` and `QM SET` are different commands.
 */
export const stepKey = (step: string): string =>
  step.replace(FORMAT_CHARACTERS, '').replace(/\s+/g, ' ').trim();

/**
 * Control characters other than tab, line feed and carriage return (C0, DEL and C1): no text of
 * the process needs one, and an ESC sequence stored in a field reaches auditors' terminals.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
export const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/**
 * The text with each CONTROL_CHARACTER as U+FFFD: requests refuse them, yet text stored before
 * that (or written around the API) must not reach a terminal as escape sequences (`npm run
 * report` writes to stdout), nor a spreadsheet or page.
 */
const CONTROL_CHARACTERS = new RegExp(CONTROL_CHARACTER.source, 'g');
export const withoutControlCharacters = (text: string): string => text.replace(CONTROL_CHARACTERS, '\ufffd');
