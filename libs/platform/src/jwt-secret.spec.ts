import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { builtFile, isBuilt } from '../../../test/support/built';
import { resolveJwtSecret } from './jwt-secret';

const BUILT = builtFile('libs/platform/src/jwt-secret.js');

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

  // Processes, since the function is synchronous: the API and `npm run token` started together.
  (isBuilt(BUILT, 'secret race test') ? it : it.skip)(
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
