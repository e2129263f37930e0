import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveJwtSecret } from './jwt-secret';

const BUILT = join(__dirname, '..', '..', '..', 'dist', 'libs', 'platform', 'src', 'jwt-secret.js');

describe('resolveJwtSecret', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-secret-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('generates a secret once (mode 0600), keeps it, and leaves no temporary files', () => {
    const secret = resolveJwtSecret(undefined, dir);
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(resolveJwtSecret(undefined, dir)).toBe(secret);
    expect(statSync(join(dir, 'jwt-secret')).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['jwt-secret']);
    expect(resolveJwtSecret('configured-secret-that-is-long-enough', dir)).toBe(
      'configured-secret-that-is-long-enough',
    );
  });

  // in CI (which builds first) a missing build fails here instead of skipping
  if (!existsSync(BUILT) && process.env.CI === 'true') throw new Error(`${BUILT} is missing in CI`);
  if (!existsSync(BUILT))
    console.log('secret race test skipped: dist/ is missing (run `npm run build` first)');
  // Processes, since the function is synchronous: the API and `npm run token` started together.
  (existsSync(BUILT) ? it : it.skip)(
    'processes starting at once on a fresh DATA_DIR all get the same secret',
    async () => {
      const script = `process.stdout.write(require(${JSON.stringify(BUILT)}).resolveJwtSecret(undefined, ${JSON.stringify(dir)}))`;
      const secrets = await Promise.all(
        Array.from({ length: 8 }, () =>
          promisify(execFile)(process.execPath, ['-e', script]).then((r) => r.stdout),
        ),
      );
      expect(new Set(secrets).size).toBe(1);
      expect(secrets[0].length).toBeGreaterThanOrEqual(32);
      expect(readdirSync(dir)).toEqual(['jwt-secret']);
    },
  );
});
