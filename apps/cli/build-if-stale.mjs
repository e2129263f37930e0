// Builds dist/ (npm run build) only when a source is newer than the last build's stamp
// (dist/.build-stamp): the service's and the CLI's npm scripts run this first, so that they work
// on a fresh clone or after a pull, without a full compile at each `npm run token` and without
// rewriting dist/ under a running service for nothing. Run in the package's folder (npm does).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const root = process.cwd();
const SOURCES = ['apps', 'libs', 'bench'];
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];

const mtime = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
};

/** The newest modification time of a TypeScript file under `dir`. */
const newestUnder = (dir) => {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return newest;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestUnder(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, mtime(path) ?? 0);
  }
  return newest;
};

// An install of the build alone (the container image: dist/, no sources, no compiler) has
// nothing to build: its scripts run what it holds.
if (mtime(join(root, 'tsconfig.build.json')) === undefined) process.exit(0);

const built = mtime(join(root, 'dist', '.build-stamp'));
const newestSource = Math.max(
  ...SOURCES.map((dir) => newestUnder(join(root, dir))),
  ...CONFIGS.map((file) => mtime(join(root, file)) ?? 0),
);
if (built === undefined || newestSource > built) {
  // (npm.cmd runs only through a shell on Windows, since Node 20.12.2)
  const windows = process.platform === 'win32';
  const result = spawnSync(windows ? 'npm.cmd' : 'npm', ['run', 'build', '--silent'], {
    stdio: 'inherit',
    cwd: root,
    shell: windows,
  });
  if (result.error) process.stderr.write(`build-if-stale: could not run npm: ${result.error.message}\n`);
  // 2, not the build's own code: audit:verify's 1 means "the log is broken", its 2 "could not
  // verify"; every other command fails either way
  process.exit(result.status === 0 ? 0 : 2);
}
