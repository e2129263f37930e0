import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The repository's root, from this file. */
export const REPO_ROOT = join(__dirname, '..', '..');

/** A file of the build (`npm run build`, which CI and `npm test` run first), by its path under dist/. */
export const builtFile = (path: string) => join(REPO_ROOT, 'dist', path);

/**
 * Whether a file of the build exists. Tests that run compiled code (worker threads, the CLI, the
 * built server) skip with one line without it; in CI (`CI=true`: `.ci/run` builds first) a
 * missing file fails their suite instead, so a build that stops producing it cannot turn those
 * tests into skips.
 */
export const isBuilt = (file: string, tests: string): boolean => {
  if (existsSync(file)) return true;
  if (process.env.CI === 'true') throw new Error(`${tests}: ${file} is missing, though CI builds first`);
  console.log(`${tests} skipped: ${file} is missing (run \`npm run build\` first)`);
  return false;
};
