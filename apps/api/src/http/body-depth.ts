/**
 * How deep a request body may nest objects and arrays. The contract's deepest body is 3 levels
 * (a review's criteria); the idempotency fingerprint and class-transformer walk bodies
 * recursively, so a 40 KB body of nested brackets would overflow the stack there (a 500).
 */
export const MAX_BODY_DEPTH = 32;

/** Whether `value` nests deeper than `max` levels; a walk with its own stack, for the same reason. */
export const nestsDeeperThan = (value: unknown, max: number): boolean => {
  if (value === null || typeof value !== 'object') return false;
  const pending: [object, number][] = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [node, depth] = next;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') pending.push([child as object, depth + 1]);
    }
  }
  return false;
};
