import { it } from '@jest/globals';

const announced = new Set<string>();

/** `it` when `runs`, else `it.skip`, saying why once (a skip that names no reason hides what did not run). */
export const itWhen = (runs: boolean, whyNot: string): typeof it.skip => {
  if (runs) return it;
  if (!announced.has(whyNot)) {
    announced.add(whyNot);
    console.log(`skipped: ${whyNot}`);
  }
  return it.skip;
};
