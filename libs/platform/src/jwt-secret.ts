import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const JWT_SECRET_FILE = 'jwt-secret';

/** The shortest HS256 secret accepted, configured or stored. */
export const MIN_JWT_SECRET_LENGTH = 32;

const readStored = (file: string): string => {
  const stored = readFileSync(file, 'utf8').trim();
  if (stored.length >= MIN_JWT_SECRET_LENGTH) return stored;
  throw new Error(
    `${file} holds a secret shorter than ${MIN_JWT_SECRET_LENGTH} characters; delete it or set AUTH_JWT_SECRET`,
  );
};

/**
 * The HS256 secret: AUTH_JWT_SECRET when set; otherwise one generated on first start and kept
 * in DATA_DIR (mode 0600), so the server and `npm run token` agree without a hard-coded default.
 * The file appears whole or not at all: written under a temporary name, then linked into place
 * (a link fails if the name exists), so a process starting at the same moment never reads a
 * file another one has created but not yet written.
 */
export const resolveJwtSecret = (
  configured: string | undefined,
  dataDir: string,
  /** Called when this call created the secret (none was there). */
  onCreated?: (file: string) => void,
): string => {
  if (configured) return configured;
  const file = join(dataDir, JWT_SECRET_FILE);
  if (existsSync(file)) return readStored(file);
  // DATA_DIR, when this creates it, is its owner's alone, as the stores make it (the files in it
  // are 0644: the folder keeps other accounts out)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  const temporary = join(dataDir, `.${JWT_SECRET_FILE}.${process.pid}.${randomBytes(6).toString('hex')}`);
  writeFileSync(temporary, `${secret}\n`, { flag: 'wx', mode: 0o600 });
  chmodSync(temporary, 0o600);
  try {
    linkSync(temporary, file);
    onCreated?.(file);
    return secret;
  } catch (error) {
    // another process linked its secret first: use theirs, complete since it was linked whole
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readStored(file);
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
};
