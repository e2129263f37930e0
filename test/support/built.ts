import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The repository's root, from this file. */
export const REPO_ROOT = join(__dirname, '..', '..');

/** A file of the build (`npm run build`, which CI and `npm test` run first), by its path under dist/. */
export const builtFile = (path: string) => join(REPO_ROOT, 'dist', path);

/** The newest modification time of the TypeScript sources the build compiles, under `dir`. */
const newestSource = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'testing' ? newest : Math.max(newest, newestSource(path));
    const built = entry.name.endsWith('.ts') && !/\.(spec|fixtures)\.ts$/.test(entry.name);
    return built ? Math.max(newest, statSync(path).mtimeMs) : newest;
  }, 0);

let buildIsCurrent: boolean | undefined;
/**
 * Whether the last build is not older than the sources it compiles. The build writes
 * `dist/.build-stamp` (tsc's incremental build leaves unchanged files with their old times).
 */
export const isBuildCurrent = (): boolean => {
  if (buildIsCurrent === undefined) {
    const stamp = builtFile('.build-stamp');
    // what apps/cli/build-if-stale.mjs weighs too: a changed tsconfig or package.json is a change
    const configs = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((file) =>
      existsSync(join(REPO_ROOT, file)) ? statSync(join(REPO_ROOT, file)).mtimeMs : 0,
    );
    buildIsCurrent =
      existsSync(stamp) &&
      statSync(stamp).mtimeMs >=
        Math.max(...['libs', 'apps', 'bench'].map((dir) => newestSource(join(REPO_ROOT, dir))), ...configs);
  }
  return buildIsCurrent;
};

/**
 * Whether a file of the build exists, from a build not older than the sources. Tests that run
 * compiled code (worker threads, the CLI, the built server) skip with one line otherwise (a bare
 * `npx jest` after an edit would run yesterday's code and could pass); in CI (`CI=true`:
 * `.ci/run` builds first) that fails their suite instead, so a build that stops producing the
 * file cannot turn those tests into skips.
 */
export const isBuilt = (file: string, tests: string): boolean => {
  const problem = !existsSync(file)
    ? `${file} is missing`
    : !isBuildCurrent()
      ? 'dist/ is older than the sources'
      : undefined;
  if (problem === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${tests}: ${problem}, though CI builds first`);
  console.log(`${tests} skipped: ${problem} (run \`npm run build\` first)`);
  return false;
};
