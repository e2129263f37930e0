import { CONTROL_CHARACTER } from '@changeledger/domain';

/**
 * How deep a request body may nest objects and arrays. The contract's deepest body is 3 levels
 * (a review's criteria); the idempotency fingerprint and class-transformer walk bodies
 * recursively, so a 40 KB body of nested brackets would overflow the stack there (a 500).
 */
export const MAX_BODY_DEPTH = 32;

/**
 * How many members one object of a body may have, and how many members (keys and array items)
 * the whole body. The contract's widest object has about 15 and its lists at most 200 items;
 * class-transformer removes duplicate keys with `indexOf` (quadratic), so one object of 100,000
 * keys (under 1 MiB) held the event loop for seconds before validation refused it, and 150
 * objects of 1,000 keys each for tens of milliseconds.
 */
export const MAX_OBJECT_MEMBERS = 100;
export const MAX_BODY_MEMBERS = 5_000;

/**
 * What is wrong with a body's shape, if anything: nesting deeper than `maxDepth` levels, an
 * object with more than `maxMembers` members, or more than `maxTotal` members in all. A walk
 * with its own stack, for the depth's sake.
 */
export const bodyShapeProblem = (
  value: unknown,
  { maxDepth = MAX_BODY_DEPTH, maxMembers = MAX_OBJECT_MEMBERS, maxTotal = MAX_BODY_MEMBERS } = {},
): string | undefined => {
  if (typeof value === 'string') return controlCharacterProblem(value, () => 'the body');
  if (value === null || typeof value !== 'object') return undefined;
  // Each pending node with the path of its parent and its own key: paths are built only for a
  // problem to report (a body may hold thousands of members).
  const pending: [object, number, Path][] = [[value, 1, undefined]];
  let total = 0;
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, depth, path] = next;
    if (depth > maxDepth) return `the body nests objects and arrays deeper than ${maxDepth} levels`;
    const keys = Array.isArray(node) ? undefined : Object.keys(node);
    const size = keys ? keys.length : (node as unknown[]).length;
    if (keys && size > maxMembers) return `an object in the body has more than ${maxMembers} members`;
    total += size;
    if (total > maxTotal) return `the body has more than ${maxTotal} members in all`;
    for (let i = 0; i < size; i++) {
      const key = keys ? keys[i] : i;
      const child = (node as Record<string | number, unknown>)[key];
      if (typeof child === 'string') {
        const problem = controlCharacterProblem(child, () => pathText([path, key]));
        if (problem) return problem;
      } else if (child !== null && typeof child === 'object') {
        pending.push([child as object, depth + 1, [path, key]]);
      }
    }
  }
  return undefined;
};

/** A member's path as a linked list to its parent's: `[parent, key]`. */
type Path = readonly [Path, string | number] | undefined;
const pathText = (path: Path): string => {
  const keys: (string | number)[] = [];
  for (let at = path; at; at = at[0]) keys.unshift(at[1]);
  return keys.join('.');
};

/**
 * No field of the process needs a control character, and stored they reach auditors' terminals
 * (`npm run report` writes CSV to stdout: ESC sequences could clear or rewrite the figures shown).
 */
const controlCharacterProblem = (text: string, where: () => string): string | undefined => {
  const found = CONTROL_CHARACTER.exec(text);
  if (!found) return undefined;
  const code = found[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return `${where()} contains the control character U+${code}: text may hold tab, line feed and carriage return only`;
};
