import { join } from 'node:path';

/** The repository's root, from this file. */
export const REPO_ROOT = join(__dirname, '..', '..');

/** A file of the build (`npm run build`, which CI and `npm test` run first), by its path under dist/. */
export const builtFile = (path: string) => join(REPO_ROOT, 'dist', path);
