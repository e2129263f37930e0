import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

  it('refuses a stored secret other accounts may read, or a link in its place, saying what to do', () => {
    const file = join(dir, 'jwt-secret');
    writeFileSync(file, `${'s'.repeat(48)}\n`, { mode: 0o644 });
    chmodSync(file, 0o644); // (whatever the umask)
    expect(() => resolveJwtSecret(undefined, dir)).toThrow(
      `${file} may be read or written by other accounts (mode 644): it signs tokens of every role; chmod 600 ${file}`,
    );
    chmodSync(file, 0o600);
    expect(resolveJwtSecret(undefined, dir)).toBe('s'.repeat(48));
    rmSync(file);
    const elsewhere = join(dir, 'elsewhere');
    writeFileSync(elsewhere, 's'.repeat(48), { mode: 0o600 });
    symlinkSync(elsewhere, file);
    expect(() => resolveJwtSecret(undefined, dir)).toThrow(/is not a plain file/);
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
