import { withoutControlCharacters } from '@changeledger/domain';

/**
 * Text from users (titles, descriptions, names) placed into Markdown that auditors read and
 * render: it must come out as the same text, never as structure. Otherwise a description could
 * add its own "## Approval" section to an evidence pack, a title its own row to the change log,
 * and `<img onerror=…>` would run in a viewer that renders raw HTML. Control characters become
 * U+FFFD (an ESC sequence would run in a terminal that shows the file).
 */

/**
 * Characters that start Markdown inline structure: code, emphasis, HTML, escapes, table cells,
 * strikethrough, and an `&` that starts an entity (`&amp;`, `&#60;`: rendered as the character it
 * names). An underscore only where it could open or close emphasis (not inside a word:
 * `node_exporter` stays as written); `>` only at a line's start (a quote), below. Brackets
 * stay (the seed's own table shows `[Name]`); a link is disarmed at its `](` instead.
 */
const INLINE =
  /[\\`*<|~]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])|&(?=(?:#\d{1,7}|#[xX][\da-fA-F]{1,6}|[A-Za-z][A-Za-z\d]{1,31});)/gu;
const LINK = /\]\(/g;
/** What a line may start with to become a heading, quote, list item, rule or link definition. */
const LINE_START = /^(\s*)([#>+=[-]|\d+[.)])/;
const LINE_BREAK = /\r\n|\r|\n/g;

const escapeInline = (line: string) =>
  withoutControlCharacters(line)
    .replace(INLINE, (c) => `\\${c}`)
    .replace(LINK, '\\]\\(');
const escapeLineStart = (line: string) =>
  line.replace(LINE_START, (_all, space: string, marker: string) =>
    /^\d/.test(marker) ? `${space}${marker.slice(0, -1)}\\${marker.slice(-1)}` : `${space}\\${marker}`,
  );

/** One line of text, e.g. a table cell or a list item: line breaks become spaces. */
export const markdownInline = (text: string | null | undefined): string =>
  escapeInline((text ?? '').replace(LINE_BREAK, ' '));

/**
 * The text of a list item (`- text`, `1. text`): `markdownInline`, and its start escaped too, since
 * CommonMark reads an item's content as a block of its own (`- ## Approval` is a heading).
 */
export const markdownListItem = (text: string | null | undefined): string =>
  // leading blanks trimmed: four of them would make the item an indented code block
  escapeLineStart(markdownInline(text).trimStart());

/** A table cell: `markdownInline` (pipes included). */
export const markdownCell = markdownInline;

/**
 * A paragraph of text that may span lines: each line escaped, and kept as a line (a hard break)
 * rather than a new block, so that no line can start a heading or a list of its own.
 */
export const markdownBlock = (text: string | null | undefined): string =>
  (text ?? '')
    .split(LINE_BREAK)
    .map((line) => escapeLineStart(escapeInline(line)))
    .join('  \n');
