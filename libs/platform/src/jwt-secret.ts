import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export const JWT_SECRET_FILE = 'jwt-secret';

/** The shortest HS256 secret accepted, configured or stored. */
export const MIN_JWT_SECRET_LENGTH = 32;

/**
 * The stored secret, if it is a file only its owner may read: it signs tokens of every role, a
 * management one too. A copy put there by hand (a restore, a configuration tool) as 0644, or a
 * link to a file elsewhere, is refused with what to do, not used.
 */
const readStored = (file: string): string => {
  const stat = lstatSync(file);
  if (!stat.isFile()) {
    throw new Error(`${file} is not a plain file (a link, a folder): put the secret itself there, mode 0600`);
  }
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    throw new Error(
      `${file} may be read or written by other accounts (mode ${(stat.mode & 0o777).toString(8)}): ` +
        `it signs tokens of every role; chmod 600 ${file}`,
    );
  }
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
  if (lstatSync(file, { throwIfNoEntry: false })) return readStored(file);
  // DATA_DIR, when this creates it, is its owner's alone, as the stores make it (the files in it
  // are 0644: the folder keeps other accounts out)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  const temporary = join(dataDir, `.${JWT_SECRET_FILE}.${process.pid}.${randomBytes(6).toString('hex')}`);
  // On disk before it is linked, and the link too: after a power cut the name must not stand
  // for an empty file (the next start would refuse it, and a new secret would void every token)
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${secret}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temporary, 0o600);
  try {
    linkSync(temporary, file);
    syncFolder(dataDir);
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

/** Makes a folder's entries (a new link) durable; where a folder cannot be opened (Windows), skipped. */
const syncFolder = (dir: string) => {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // (some file systems refuse to sync a folder: the link is as durable as they make it)
  } finally {
    closeSync(fd);
  }
};
