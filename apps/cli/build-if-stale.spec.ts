import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = join(__dirname, 'build-if-stale.mjs');

/**
 * In a package of its own whose build counts its runs and writes the stamp, as the real one
 * does: real npm, real files and modification times.
 */
describe('build-if-stale (the npm scripts run it before the service and the CLI)', () => {
  let dir: string;
  const builds = () => readFileSync(join(dir, 'builds'), 'utf8').length;
  const run = () => spawnSync(process.execPath, [script], { cwd: dir, encoding: 'utf8' });
  const age = (path: string, secondsAgo: number) => {
    const at = new Date(Date.now() - secondsAgo * 1000);
    utimesSync(join(dir, path), at, at);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-build-if-stale-'));
    mkdirSync(join(dir, 'libs', 'domain'), { recursive: true });
    writeFileSync(join(dir, 'libs', 'domain', 'a.ts'), 'export const a = 1;\n');
    writeFileSync(join(dir, 'builds'), '');
    const build =
      "require('fs').appendFileSync('builds','x');require('fs').mkdirSync('dist',{recursive:true});" +
      "require('fs').writeFileSync('dist/.build-stamp','now')";
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'stale-test', private: true, scripts: { build: `node -e "${build}"` } }),
    );
    writeFileSync(join(dir, 'tsconfig.build.json'), '{}\n');
    age('package.json', 60);
    age('tsconfig.build.json', 60);
    age(join('libs', 'domain', 'a.ts'), 60);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('builds when there is no build, not again while nothing changed, and again once a source is newer', () => {
    expect(run().status).toBe(0);
    expect(builds()).toBe(1);
    expect(run().status).toBe(0);
    expect(builds()).toBe(1);
    age(join('dist', '.build-stamp'), 90); // the sources (60 s old) are newer than this build
    expect(run().status).toBe(0);
    expect(builds()).toBe(2);
  });

  it('builds nothing in an install of the build alone (the container image: no tsconfig.build.json, no compiler)', () => {
    rmSync(join(dir, 'tsconfig.build.json'));
    expect(run().status).toBe(0);
    expect(builds()).toBe(0);
  });

  it("fails with the build's failure", () => {
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'stale-test', private: true, scripts: { build: 'node -e "process.exit(3)"' } }),
    );
    const result = run();
    expect(result.status).not.toBe(0);
    expect(builds()).toBe(0);
  });
});
