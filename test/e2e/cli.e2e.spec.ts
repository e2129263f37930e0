import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { type NewEvent, SqliteEventStore } from '@changeledger/event-store';
import { CHECKPOINT_NAME, WebhookCheckpoints } from '@changeledger/webhooks';
import { PROJECTOR_CHECKPOINT, SqliteReadModelStore } from '@changeledger/read-models';
import { metadataFor, writeRandomLifecycles } from '../support/random-lifecycles';
import { inTempDir } from '../support/temp-dir';
import { itWhen } from '../support/skip';
import { AppHarness } from './support/app-harness';
import { expectStatus, normalChange, submit } from './support/change-fixtures';
import { CLI_MAIN, cliBuilt, cliEnvOf, cliReachesEvents, runCliSettled } from './support/cli';

const anEventOf = (type: string): NewEvent => ({
  eventId: randomUUID(),
  type,
  data: { n: 1 },
  metadata: metadataFor({ id: 'u-1', name: 'Test', roles: ['auditor'] }, new Date().toISOString()),
});

/** The CLI's own surface: tokens, usage, refusing what it does not know (rebuild and report run elsewhere). */
describe('the changeledger CLI', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  const whenBuilt = cliBuilt ? it : it.skip; // isBuilt said why, once

  whenBuilt('token prints a token the API accepts, with the roles asked for', async () => {
    const made = await runCliSettled(app.config, [
      'token',
      '--sub',
      'u-cli',
      '--name',
      'Cli User',
      '--roles',
      'requester,auditor',
    ]);
    expect(made.code).toBe(0);
    const token = made.stdout.trim();
    const read = await app.request('GET', '/audit/verify', {
      as: null,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(read.status).toBe(200);
    const bearer = { as: null, headers: { authorization: `Bearer ${token}` } };
    // requester: may submit, and the change names the token's user
    const submitted = await app.request('POST', '/changes', { ...bearer, body: normalChange() });
    expect(submitted.status).toBe(201);
    const { id } = submitted.body as { id: string };
    const change = await app.request('GET', `/changes/${id}`, bearer);
    expect(change.body).toMatchObject({ requestedBy: { id: 'u-cli', name: 'Cli User' } });
    // a role not asked for is not there
    const approval = await app.request('POST', `/changes/${id}/approve`, { ...bearer, body: {} });
    expect(approval.status).toBe(403);
  });

  whenBuilt(
    'token --feed schedule makes a token that reads the schedule feed from its URL, and nothing else',
    async () => {
      const base = ['token', '--sub', 'cal-team', '--name', 'Team calendar', '--roles', 'auditor'];
      const made = await runCliSettled(app.config, [...base, '--feed', 'schedule']);
      expect(made.code).toBe(0);
      const token = made.stdout.trim();
      const feed = await app.request('GET', `/schedule?format=ics&access_token=${token}`, { as: null });
      expect(feed.status).toBe(200);
      expect(feed.headers.get('content-type')).toMatch(/^text\/calendar/);
      const elsewhere = await app.request('GET', '/audit/verify', {
        as: null,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(elsewhere.status).toBe(403);
      // its id, on stderr, withdraws it
      const id = /^token id (\S+) \(to withdraw the token before it expires: AUTH_REVOKED_TOKEN_IDS\)$/m.exec(
        made.stderr,
      )?.[1];
      expect(id).toBeDefined();
      const withdrawing = await AppHarness.start({ AUTH_REVOKED_TOKEN_IDS: `other,${id}` });
      try {
        const refused = await withdrawing.request('GET', `/schedule?format=ics&access_token=${token}`, {
          as: null,
        });
        expect(refused.status).toBe(401);
        expect(refused.body).toMatchObject({ detail: expect.stringMatching(/withdrawn/) });
      } finally {
        await withdrawing.close();
      }
      const other = await runCliSettled(app.config, [...base, '--feed', 'changes']);
      expect(other.code).not.toBe(0);
      expect(other.stderr).toMatch(/--feed changes: the one feed is "schedule"\nusage: npm run token/);
    },
  );

  whenBuilt('token refuses missing or unknown options and unknown roles, with its usage', async () => {
    for (const args of [
      ['token', '--sub', 'u-1'],
      ['token', '--sub', 'u-1', '--name', 'N', '--roles', 'requester', '--admin'],
      ['token', '--sub', 'u-1', '--name', 'N', '--roles', 'root'],
    ]) {
      const result = await runCliSettled(app.config, args);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/usage: npm run token -- --sub ID --name NAME --roles/);
    }
    // a token the service would refuse on every call (control characters in its claims)
    for (const [option, args] of [
      ['--name', ['--sub', 'u-1', '--name', 'Rita\u001b[31m']],
      ['--sub', ['--sub', 'u-1\u0007', '--name', 'Rita']],
    ] as const) {
      const result = await runCliSettled(app.config, ['token', ...args, '--roles', 'requester']);
      expect(result).toMatchObject({ code: 1, stdout: '' });
      expect(result.stderr).toContain(`${option} holds control characters, which the service refuses`);
    }
    // " u-rita" is another user to segregation of duties; a blank name names nobody
    for (const [option, args] of [
      ['--sub', ['--sub', ' u-rita', '--name', 'Rita']],
      ['--name', ['--sub', 'u-rita', '--name', '   ']],
    ] as const) {
      const result = await runCliSettled(app.config, ['token', ...args, '--roles', 'requester']);
      expect(result).toMatchObject({ code: 1, stdout: '' });
      expect(result.stderr).toContain(`${option} "${args[option === '--sub' ? 1 : 3]}": no spaces around it`);
    }
  });

  whenBuilt(
    'token refuses an empty role list and an expiry that is not a duration (the grammar of AUTH_MAX_TOKEN_LIFETIME)',
    async () => {
      const base = ['token', '--sub', 'u-1', '--name', 'N'];
      const noRoles = await runCliSettled(app.config, [...base, '--roles', ' , ']);
      expect(noRoles).toMatchObject({ code: 1, stdout: '' });
      expect(noRoles.stderr).toMatch(/--roles names no role\nusage: npm run token/);
      // jose alone would take the last three (10M as ten minutes; 2 hours; 1w)
      for (const expires of ['-1h', '1h ago', '0s', '10M', '2 hours', '1w']) {
        const result = await runCliSettled(app.config, [
          ...base,
          '--roles',
          'requester',
          `--expires=${expires}`,
        ]);
        expect(result).toMatchObject({ code: 1, stdout: '' });
        expect(result.stderr).toContain(`--expires ${expires}: must be a duration such as 3600 (seconds)`);
      }
      const lifetime = (stdout: string) => {
        const { iat, exp } = JSON.parse(Buffer.from(stdout.trim().split('.')[1], 'base64url').toString()) as {
          iat: number;
          exp: number;
        };
        return exp - iat;
      };
      const week = await runCliSettled(app.config, [...base, '--roles', 'requester', '--expires', '7d']);
      expect(week.code).toBe(0);
      expect(lifetime(week.stdout)).toBe(7 * 86_400);
      // bare seconds, as AUTH_MAX_TOKEN_LIFETIME takes them
      const seconds = await runCliSettled(app.config, [...base, '--roles', 'requester', '--expires', '5400']);
      expect(seconds.code).toBe(0);
      expect(lifetime(seconds.stdout)).toBe(5400);
      // no token the service would refuse for its lifetime
      const capped = { AUTH_MAX_TOKEN_LIFETIME: '1d' };
      const tooLong = await runCliSettled(
        app.config,
        [...base, '--roles', 'requester', '--expires', '7d'],
        capped,
      );
      expect(tooLong).toMatchObject({ code: 1, stdout: '' });
      expect(tooLong.stderr).toContain(
        '--expires 7d: the service accepts tokens that last at most 1d (AUTH_MAX_TOKEN_LIFETIME); pass a shorter --expires',
      );
      expect((await runCliSettled(app.config, [...base, '--roles', 'requester'], capped)).code).toBe(0);
      // without --expires: 12 hours, or the longest allowed when that is shorter
      const hour = await runCliSettled(app.config, [...base, '--roles', 'requester'], {
        AUTH_MAX_TOKEN_LIFETIME: '1h',
      });
      expect(hour.code).toBe(0);
      expect(lifetime(hour.stdout)).toBe(3600);
    },
  );

  whenBuilt(
    'token behind an identity provider says where tokens come from instead of signing one the API refuses',
    async () => {
      const result = await runCliSettled(
        app.config,
        ['token', '--sub', 'u-1', '--name', 'N', '--roles', 'requester'],
        {
          AUTH_JWT_SECRET: '',
          AUTH_JWKS_URL: 'https://idp.example.test/jwks.json',
          AUTH_ISSUER: 'https://idp.example.test/',
          AUTH_AUDIENCE: 'changeledger',
        },
      );
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/AUTH_JWKS_URL is set: .*identity provider/);
      expect(result.stdout).toBe('');
    },
  );

  whenBuilt(
    '--help prints a usage and does nothing else; unknown options and commands are refused',
    async () => {
      const head = await app.store.headPosition();
      const help = await runCliSettled(app.config, ['rebuild', '--help']);
      expect(help).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/usage: npm run projections:rebuild/),
      });
      expect(help.stderr).not.toMatch(/swapped in/);
      const typo = await runCliSettled(app.config, ['rebuild', '--now']);
      expect(typo.code).toBe(1);
      expect(typo.stderr).toMatch(/usage: npm run projections:rebuild/);
      expect((await runCliSettled(app.config, ['verify', 'extra'])).code).toBe(2); // could not verify
      expect((await runCliSettled(app.config, ['--help'])).code).toBe(0);
      const unknown = await runCliSettled(app.config, ['rebiuld']);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(
        /unknown command rebiuld\nusage: npm run <token\|projections:rebuild\|audit:verify\|report\|backup\|webhook:skip> -- /,
      );
      expect(unknown.stderr).toContain(
        'or: node dist/apps/cli/src/main.js <token|rebuild|verify|report|backup|webhook-skip>',
      );
      const none = await runCliSettled(app.config, []);
      expect(none).toMatchObject({ code: 1, stdout: '' });
      expect(none.stderr).toMatch(/^no command given\nusage: npm run </);
      // an option given twice would keep only the last: verify would check one anchor of two
      const twice = await runCliSettled(app.config, [
        'verify',
        '--anchor',
        `1:${'0'.repeat(64)}`,
        '--anchor',
        `1:${'1'.repeat(64)}`,
      ]);
      expect(twice).toMatchObject({ code: 2, stdout: '' });
      expect(twice.stderr).toMatch(/--anchor is given more than once\nusage: npm run audit:verify/);
      const roles = ['token', '--sub', 'u-1', '--name', 'N', '--roles', 'auditor', '--roles=requester'];
      expect(await runCliSettled(app.config, roles)).toMatchObject({
        code: 1,
        stdout: '',
        stderr: expect.stringContaining('--roles is given more than once'),
      });
      // a report whose folder is not there fails before it catches up, not after
      const nowhere = join(tmpdir(), `changeledger-no-folder-${process.pid}`, 'q4.html');
      const report = await runCliSettled(app.config, ['report', '--period', '2026', '--out', nowhere]);
      expect(report).toMatchObject({ code: 1, stdout: '' });
      expect(report.stderr).toContain(`no folder ${join(tmpdir(), `changeledger-no-folder-${process.pid}`)}`);
      expect(report.stderr).not.toContain('read models');
      expect(await app.store.headPosition()).toBe(head);
    },
  );

  const whenEventsReached = cliBuilt && cliReachesEvents ? it : it.skip;
  whenEventsReached('verify checks every chain and exits 0 when intact', async () => {
    await submit(app, normalChange()); // a log with events of its own (an empty one exits 2)
    const result = await runCliSettled(app.config, ['verify']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ valid: true });
    expect(result.stderr).toMatch(/every hash chain is intact/);
    expectStatus(await app.get('/changes?limit=1'), 200);
    // the anchor it printed proves the log up to there unchanged at a later verify
    const { anchor } = JSON.parse(result.stdout) as { anchor: { position: string; digest: string } };
    expect(result.stderr).toContain(`anchor ${anchor.position}:${anchor.digest}`);
    const later = await runCliSettled(app.config, [
      'verify',
      '--anchor',
      `${anchor.position}:${anchor.digest}`,
    ]);
    expect(later.code).toBe(0);
    expect(later.stderr).toMatch(new RegExp(`the log up to position ${anchor.position} is the one anchored`));
    const wrong = await runCliSettled(app.config, [
      'verify',
      '--anchor',
      `${anchor.position}:${'0'.repeat(64)}`,
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/BROKEN: the log up to position \d+ is not the one the anchor was taken of/);
    expect((await runCliSettled(app.config, ['verify', '--anchor', 'yesterday'])).code).toBe(2);
  });

  whenEventsReached(
    'verify keeps its verdict as exit code when the reader of its output goes away',
    async () => {
      await submit(app, normalChange());
      const child = spawn(process.execPath, [CLI_MAIN, 'verify'], {
        env: cliEnvOf(app.config),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.destroy(); // as `verify | head -0` does
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(stderr).toMatch(/every hash chain is intact/);
      expect(stderr).not.toMatch(/EPIPE/);
      expect(code).toBe(0);
    },
  );

  /** Runs the CLI with its stdout closed by the reader, or into a file descriptor (/dev/full). */
  const runWithOutput = async (
    args: string[],
    stdout: 'reader-gone' | 'disk-full',
    stderr: 'read' | 'reader-gone' = 'read',
  ) => {
    const full = stdout === 'disk-full' ? openSync('/dev/full', 'w') : undefined;
    try {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], {
        env: cliEnvOf(app.config),
        stdio: ['ignore', full ?? 'pipe', 'pipe'],
      });
      child.stdout?.destroy(); // as `… | head -0` does
      let err = '';
      if (stderr === 'reader-gone') child.stderr?.destroy();
      else child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code, stderr: err };
    } finally {
      if (full !== undefined) closeSync(full);
    }
  };

  whenEventsReached(
    'verify exits with its verdict, not 1 ("broken"), when its stderr reader goes away',
    async () => {
      await submit(app, normalChange());
      // `verify 2>&1 | head -1` under pipefail: the summary line has nowhere to go
      expect((await runWithOutput(['verify'], 'reader-gone', 'reader-gone')).code).toBe(0);
    },
  );

  whenEventsReached('a report cut short on stdout (its reader gone) exits 1 and says so', async () => {
    await submit(app, normalChange());
    const cut = await runWithOutput(['report', '--period', '2026', '--format', 'csv'], 'reader-gone');
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/the output could not be written \(EPIPE\): what was written is incomplete/);
  });

  // /dev/full: a disk that is full for every write (Linux)
  const whenDiskCanBeFull =
    cliBuilt && cliReachesEvents && existsSync('/dev/full')
      ? it
      : itWhen(false, 'the full-disk CLI tests: no /dev/full here, or no CLI to run');
  whenDiskCanBeFull(
    'on a full disk, verify keeps its verdict and says what was lost; a report exits 1',
    async () => {
      await submit(app, normalChange());
      // `verify > verify.json`: the verdict stands, and stderr says what was lost
      const verified = await runWithOutput(['verify'], 'disk-full');
      expect(verified.code).toBe(0);
      expect(verified.stderr).toMatch(/every hash chain is intact/);
      expect(verified.stderr).toMatch(/the report could not be written to stdout \(ENOSPC\)/);
      const cut = await runWithOutput(['report', '--period', '2026', '--format', 'csv'], 'disk-full');
      expect(cut.code).toBe(1);
      expect(cut.stderr).toMatch(
        /the output could not be written \(ENOSPC\): what was written is incomplete/,
      );
    },
  );

  const onSqliteEvents = cliBuilt
    ? itWhen(
        process.env.E2E_EVENT_STORE !== 'eventstoredb',
        'CLI tests that edit the SQLite event store: the events are in EventStoreDB',
      )
    : it.skip;
  onSqliteEvents(
    'verify escapes the C1 controls of a tampered stream id in its JSON (U+009B starts a terminal escape)',
    () =>
      inTempDir('cli-c1', async (dir) => {
        const file = join(dir, 'events.sqlite');
        const store = new SqliteEventStore(file);
        await store.append('x\u009b31m-1', [anEventOf('Noted')], 'no-stream');
        await store.close();
        const db = new Database(file);
        db.prepare('UPDATE events SET data = ?').run('{"n":2}');
        db.close();
        const result = await runCliSettled({ ...app.config, dataDir: dir }, ['verify']);
        expect(result.code).toBe(1);
        expect(result.stdout).not.toMatch(/[\u007f-\u009f]/);
        expect(result.stdout).toContain('x\\u009b31m-1');
        expect(JSON.parse(result.stdout)).toMatchObject({ firstInvalid: { streamId: 'x\u009b31m-1' } });
      }),
  );
  onSqliteEvents(
    'Ctrl-C during a rebuild stops it at once before the swap: the live read models as they were',
    () =>
      inTempDir('cli-interrupt', async (dir) => {
        const store = new SqliteEventStore(join(dir, 'events.sqlite'));
        const written = await writeRandomLifecycles(store, { seed: 7, count: 3000 });
        await store.close();
        const child = spawn(process.execPath, [CLI_MAIN, 'rebuild'], {
          env: cliEnvOf({ ...app.config, dataDir: dir }),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        let interrupted = false;
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          // at its first progress line, well before the swap
          if (!interrupted && stderr.includes('rebuild [')) {
            interrupted = true;
            child.kill('SIGINT');
          }
        });
        const ended = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
          child.once('exit', (code, signal) => resolve([code, signal])),
        );
        expect(written).toBeGreaterThan(20_000);
        expect(interrupted).toBe(true);
        expect(stderr).not.toContain('swapped in');
        expect(ended).toEqual([null, 'SIGINT']); // at once, by the signal
        const models = SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
        try {
          expect(await models.checkpoint(PROJECTOR_CHECKPOINT)).toBe(0n);
        } finally {
          await models.close();
        }
      }),
    60_000,
  );

  onSqliteEvents(
    'webhook-skip sets a checkpoint edited into something that is no position, and refuses a DATA_DIR no webhook ran in',
    () =>
      inTempDir('cli-skip', async (dir) => {
        const store = new SqliteEventStore(join(dir, 'events.sqlite'));
        await store.append('changeRequest-CHG-001', [anEventOf('ChangeSubmitted')], 'no-stream');
        await store.close();
        const config = { ...app.config, dataDir: dir };
        const none = await runCliSettled(config, ['webhook-skip', '--through', '1']);
        expect(none).toMatchObject({ code: 1, stderr: expect.stringContaining('no webhook checkpoint at') });
        const file = join(dir, 'webhooks.sqlite');
        const checkpoints = new WebhookCheckpoints(file);
        checkpoints.set(CHECKPOINT_NAME, 1n, new Date());
        checkpoints.close();
        const db = new Database(file);
        db.prepare('UPDATE webhook_checkpoints SET position = ?').run('junk');
        db.close();
        const mended = await runCliSettled(config, ['webhook-skip', '--through', '1']);
        expect(mended.code).toBe(0);
        expect(mended.stderr).toContain('held no position; set to 1');
        const reopened = new WebhookCheckpoints(file);
        expect(reopened.get(CHECKPOINT_NAME)).toBe(1n);
        reopened.close();
        expect((await runCliSettled(config, ['webhook-skip', '--through', 'x'])).code).toBe(1);
      }),
  );
  onSqliteEvents(
    'verify, report and backup open the event store read-only: a file that is no event store is named and left as it was',
    () =>
      inTempDir('cli-not-a-store', async (dir) => {
        const file = join(dir, 'events.sqlite');
        const other = new Database(file);
        other.exec('CREATE TABLE notes (body TEXT)');
        other.close();
        const before = readFileSync(file);
        const config = { ...app.config, dataDir: dir };
        const verified = await runCliSettled(config, ['verify']);
        expect(verified).toMatchObject({ code: 2, stdout: '' });
        expect(verified.stderr).toContain(`${file} is not a changeledger event store`);
        const reported = await runCliSettled(config, ['report', '--period', '2026', '--format', 'json']);
        expect(reported.code).toBe(1);
        expect(reported.stderr).toContain('is not a changeledger event store');
        const backedUp = await runCliSettled(config, ['backup', '--out', join(dir, 'copy.sqlite')]);
        expect(backedUp.code).toBe(1);
        expect(backedUp.stderr).toContain('not a changeledger event store');
        expect(readFileSync(file).equals(before)).toBe(true); // no tables added, not turned into WAL
        expect(readdirSync(dir).filter((name) => name.startsWith('events.'))).toEqual(['events.sqlite']);
      }),
  );
  onSqliteEvents(
    'a DATA_DIR without an event store is an error, not an empty log that verifies (and nothing is created there)',
    () =>
      inTempDir('cli-empty', async (empty) => {
        const elsewhere = { ...app.config, dataDir: empty };
        const verified = await runCliSettled(elsewhere, ['verify']);
        expect(verified).toMatchObject({ code: 2, stdout: '' });
        expect(verified.stderr).toContain(`no event store at ${join(empty, 'events.sqlite')}`);
        const reported = await runCliSettled(elsewhere, ['report', '--period', '2026', '--format', 'json']);
        expect(reported).toMatchObject({ code: 1, stdout: '' });
        expect(reported.stderr).toContain('no event store at');
        const backedUp = await runCliSettled(elsewhere, [
          'backup',
          '--out',
          join(tmpdir(), `none-${process.pid}`),
        ]);
        expect(backedUp).toMatchObject({ code: 1, stdout: '' });
        expect(backedUp.stderr).toContain(`no event store at ${join(empty, 'events.sqlite')}`);
        expect(readdirSync(empty)).toEqual([]);
        // an event store with no events proves nothing either
        await new SqliteEventStore(join(empty, 'events.sqlite')).close();
        const nothing = await runCliSettled(elsewhere, ['verify']);
        expect(nothing.code).toBe(2);
        expect(nothing.stderr).toContain('the log holds no events: nothing was verified');
        // a consumer of the JSON that ignores the exit code is not told the log verified
        expect(JSON.parse(nothing.stdout)).toMatchObject({
          valid: false,
          checkedEvents: 0,
          firstInvalid: { reason: 'the log holds no events: nothing was verified' },
        });
        // against an anchor it is a log found changed (1): emptied, as far as the anchor can tell
        const anchored = await runCliSettled(elsewhere, ['verify', '--anchor', `12:${'a'.repeat(64)}`]);
        expect(anchored.code).toBe(1);
        expect(anchored.stderr).toContain(
          'BROKEN: the log up to position 12 is not the one the anchor was taken of',
        );
        // and a backup of it is refused, with no file left
        const emptyCopy = join(tmpdir(), `empty-copy-${process.pid}.sqlite`);
        const emptyBackup = await runCliSettled(elsewhere, ['backup', '--out', emptyCopy]);
        expect(emptyBackup).toMatchObject({ code: 1, stdout: '' });
        expect(emptyBackup.stderr).toContain('the event store holds no events: nothing to back up');
        expect(existsSync(emptyCopy)).toBe(false);
        expect(
          readdirSync(tmpdir()).filter((f) => f.startsWith(`.empty-copy-${process.pid}.sqlite.partial`)),
        ).toEqual([]);
        rmSync(join(empty, 'events.sqlite'));
        for (const wal of readdirSync(empty)) rmSync(join(empty, wal));
        // a token refused for its expiry leaves no secret behind (a mistyped DATA_DIR stays empty)
        const refused = await runCliSettled(
          elsewhere,
          ['token', '--sub', 'u-x', '--name', 'X', '--roles', 'auditor', '--expires', '7d'],
          { AUTH_JWT_SECRET: '', AUTH_MAX_TOKEN_LIFETIME: '1d' },
        );
        expect(refused).toMatchObject({ code: 1, stdout: '' });
        expect(refused.stderr).not.toContain('created a new secret');
        expect(readdirSync(empty)).toEqual([]);
        // a token there makes the secret a first start would, and says so
        const made = await runCliSettled(
          elsewhere,
          ['token', '--sub', 'u-x', '--name', 'X', '--roles', 'auditor'],
          { AUTH_JWT_SECRET: '' },
        );
        expect(made.code).toBe(0);
        expect(made.stderr).toContain(`created a new secret in ${join(empty, 'jwt-secret')}`);
        expect(readdirSync(empty)).toEqual(['jwt-secret']);
        const again = await runCliSettled(
          elsewhere,
          ['token', '--sub', 'u-x', '--name', 'X', '--roles', 'auditor'],
          { AUTH_JWT_SECRET: '' },
        );
        expect(again.code).toBe(0);
        expect(again.stderr).not.toContain('secret'); // the one made before is used
      }),
  );
  const whenEmbeddedEvents =
    cliBuilt && cliReachesEvents
      ? itWhen(
          process.env.E2E_EVENT_STORE !== 'eventstoredb',
          'CLI backup of the SQLite event store: the events are in EventStoreDB',
        )
      : it.skip;
  whenEmbeddedEvents(
    'backup copies the event store while the API takes writes; a service started on the copy has every change in it',
    async () => {
      const { id } = await submit(app, normalChange());
      const folder = mkdtempSync(join(tmpdir(), 'changeledger-backup-'));
      const restoredDir = mkdtempSync(join(tmpdir(), 'changeledger-restored-'));
      try {
        const out = join(folder, 'events-backup.sqlite');
        // submissions one after another for as long as the backup runs, from its start to its end
        let backupRunning = true;
        let submittedMeanwhile = 0;
        const writing = (async () => {
          while (backupRunning) {
            await submit(app, normalChange());
            submittedMeanwhile++;
          }
        })();
        const backedUp = await runCliSettled(app.config, ['backup', '--out', out]);
        backupRunning = false;
        await writing;
        expect(backedUp.code).toBe(0);
        expect(submittedMeanwhile).toBeGreaterThan(1);
        expect(backedUp.stderr).toMatch(
          /backup: \d+ events up to position \d+ in [\d.]+ s, [\d.]+ MiB, every hash chain intact: /,
        );
        expect(backedUp.stderr).toContain(out);
        // the step that draws no bar is named, between the copy and the chains' check
        expect(backedUp.stderr).toMatch(/backup .*events[^]*backup: SQLite's integrity check of the copy…\n/);
        const anchor = /anchor (\d+:[0-9a-f]{64})/.exec(backedUp.stderr)![1];
        const head = /events up to position (\d+)/.exec(backedUp.stderr)![1];
        // writes went on past the copy's snapshot: they were not held up, and are not in it
        expect(await app.store.headPosition()).toBeGreaterThan(BigInt(head));
        // a second backup to the same name is refused, the first one untouched
        const again = await runCliSettled(app.config, ['backup', '--out', out]);
        expect(again.code).toBe(1);
        expect(again.stderr).toContain('exists: a backup never overwrites a file');
        expect(readdirSync(folder)).toEqual(['events-backup.sqlite']);

        // Restore, as the README says: a fresh DATA_DIR with the copy as its event store.
        copyFileSync(out, join(restoredDir, 'events.sqlite'));
        const restored = await AppHarness.start({}, { dataDir: restoredDir });
        try {
          const original = expectStatus(await app.get(`/changes/${id}`), 200).body;
          // (its read models are built from the copy on first start: minPosition waits for that)
          expect(expectStatus(await restored.get(`/changes/${id}?minPosition=${head}`), 200).body).toEqual(
            original,
          );
          // the copy holds what the backup said it did: that many events, up to that position
          const counted = Number(/backup: (\d+) events/.exec(backedUp.stderr)![1]);
          expect(await restored.eventCount()).toBe(counted);
          expect((await restored.store.headPosition()).toString()).toBe(head);
          // the anchor the backup printed proves the restored log is the one backed up
          expect((await runCliSettled(restored.config, ['verify', '--anchor', anchor])).code).toBe(0);
          // numbering goes on after the last change in the copy
          const inCopy = (await restored.store.readAll({ after: 0n, limit: 100_000 })).filter(
            (e) => e.type === 'ChangeSubmitted',
          ).length;
          expect((await submit(restored, normalChange())).id).toBe(
            `CHG-${String(inCopy + 1).padStart(3, '0')}`,
          );
        } finally {
          await restored.close();
        }
      } finally {
        rmSync(folder, { recursive: true, force: true });
        rmSync(restoredDir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  whenBuilt('backup refuses an EventStoreDB event store, pointing to its own procedure', async () => {
    const refused = await runCliSettled(
      app.config,
      ['backup', '--out', join(tmpdir(), `esdb-${process.pid}`)],
      {
        EVENT_STORE: 'eventstoredb',
        EVENTSTORE_CONNECTION_STRING: 'esdb://127.0.0.1:1?tls=false',
      },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /EVENT_STORE is eventstoredb: back EventStoreDB up with its own procedure/,
    );
  });
});
