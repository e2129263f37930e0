// first: its exit codes hold from here on, whatever fails to load after it
import { failureExitCode } from './exit-codes';
import { existsSync, lstatSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { decodeJwt } from 'jose';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CONTROL_CHARACTER, ROLES, withoutControlCharacters } from '@changeledger/domain';
import {
  backupSqliteEventStore,
  parseLogAnchor,
  partialPrefix,
  SqliteEventStore,
  verifyHashChains,
} from '@changeledger/event-store';
import {
  allProjections,
  complianceReportCsv,
  complianceReportFromStore,
  complianceReportHtml,
  rebuildReadModels,
  catchUpLive,
  REPORT_SWAP_WAIT_MS,
  assertPeriodBegun,
  ReportPeriodError,
  resolveReportPeriod,
} from '@changeledger/read-models';
import {
  loadConfig,
  onStopSignals,
  openEventStore,
  openReadModelStore,
  describeDuration,
  parseDuration,
  type Feed,
  FEEDS,
  resolveJwtSecret,
  signToken,
} from '@changeledger/platform';
import { CHECKPOINT_NAME, WEBHOOK_CHECKPOINTS_FILE, WebhookCheckpoints } from '@changeledger/webhooks';
import { ProgressBar } from './progress-bar';

const USAGE = `usage: npm run token -- --sub ID --name NAME --roles role1,role2 [--expires 12h] [--feed schedule]
roles: ${ROLES.join(', ')}
--feed schedule: a token that reads only the schedule's iCalendar feed, and may be put in its URL
  (a calendar subscription: GET /api/v1/schedule?format=ics&access_token=TOKEN)`;

/**
 * Parses a command's options, refusing unknown ones with the command's usage, and one given twice:
 * node keeps the last, so `verify --anchor A --anchor B` would check B alone and pass.
 */
const options = <O extends ParseArgsConfig['options']>(args: string[], spec: O, usage: string) => {
  let parsed;
  try {
    parsed = parseArgs({ args, options: spec, strict: true, allowPositionals: false, tokens: true });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${usage}`);
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new Error(`--${token.name} is given more than once\n${usage}`);
    seen.add(token.name);
  }
  return parsed.values;
};

/**
 * JSON for stdout, which may be a terminal: JSON.stringify leaves DEL and the C1 controls
 * (U+007F–U+009F; U+009B starts an escape sequence) as they are; text from the store (a
 * tampered event's stream id, a title) could hold them. Escaped, the JSON means the same.
 */
const terminalSafeJson = (value: unknown) =>
  JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/** `token`: prints an HS256 token signed with the configured (or generated) secret. */
const token = async (args: string[]) => {
  const values = options(
    args,
    {
      sub: { type: 'string' },
      name: { type: 'string' },
      roles: { type: 'string' },
      expires: { type: 'string' },
      feed: { type: 'string' },
    },
    USAGE,
  );
  const feed = values.feed as Feed | undefined;
  if (feed !== undefined && !FEEDS.includes(feed)) {
    throw new Error(`--feed ${feed}: the one feed is ${FEEDS.map((f) => `"${f}"`).join(', ')}\n${USAGE}`);
  }
  if (!values.sub || !values.name || !values.roles) throw new Error(USAGE);
  // The service refuses such a token (they would reach auditors' terminals through the events).
  for (const [option, value] of [
    ['--sub', values.sub],
    ['--name', values.name],
  ] as const) {
    if (CONTROL_CHARACTER.test(value)) {
      throw new Error(`${option} holds control characters, which the service refuses in a token\n${USAGE}`);
    }
    // " u-rita" would be another user to segregation of duties, and a blank name names nobody
    if (value.trim() !== value || value.trim() === '') {
      throw new Error(`${option} ${JSON.stringify(value)}: no spaces around it, and not blank\n${USAGE}`);
    }
  }
  const roles = values.roles
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  // A token without a role is refused by every command: most likely a mistyped list.
  if (roles.length === 0) throw new Error(`--roles names no role\n${USAGE}`);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new Error(`unknown role(s): ${unknown.join(', ')}\n${USAGE}`);
  const config = loadConfig();
  // 12 hours, or the longest AUTH_MAX_TOKEN_LIFETIME allows when that is shorter
  const max = config.auth.maxTokenLifetimeSeconds;
  const expires = values.expires ?? describeDuration(Math.min(max ?? 43_200, 43_200));
  // the grammar of AUTH_MAX_TOKEN_LIFETIME (jose's own would take "10M" as minutes, "-1h", "1h ago")
  const lifetime = parseDuration(expires);
  if (lifetime === undefined) throw new Error(`--expires ${expires}: ${EXPIRES}\n${USAGE}`);
  if (config.auth.jwksUrl && !config.auth.jwtSecret) {
    // The service then accepts only its identity provider's RS256 tokens (and keeps no secret).
    throw new Error(
      'AUTH_JWKS_URL is set: the service accepts tokens from that identity provider only; get one there (npm run token signs with AUTH_JWT_SECRET)',
    );
  }
  // A token the service would refuse helps nobody. (Checked before a secret is made: a refused
  // token leaves no new secret in a mistyped DATA_DIR.)
  if (max !== undefined && lifetime > max) {
    throw new Error(
      `--expires ${expires}: the service accepts tokens that last at most ${describeDuration(max)} (AUTH_MAX_TOKEN_LIFETIME); pass a shorter --expires\n${USAGE}`,
    );
  }
  const secret = resolveJwtSecret(config.auth.jwtSecret, config.dataDir, (file) =>
    // As on a first start: the service started with this DATA_DIR uses it. Said, because a token
    // made with a mistyped DATA_DIR is otherwise a mystery 401.
    process.stderr.write(
      `created a new secret in ${resolve(file)} (there was none): a service started with another DATA_DIR refuses this token\n`,
    ),
  );
  const signed = await signToken({ sub: values.sub, name: values.name, roles, feed }, secret, {
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    lifetimeSeconds: lifetime,
  });
  const { jti } = decodeJwt(signed);
  process.stdout.write(`${signed}\n`);
  // on stderr: `TOKEN=$(npm run --silent token …)` keeps only the token
  process.stderr.write(`token id ${jti} (to withdraw the token before it expires: AUTH_REVOKED_TOKEN_IDS)\n`);
};
const EXPIRES = 'must be a duration such as 3600 (seconds), 30m, 12h or 7d';

/**
 * `rebuild`: replays the whole log into fresh read models next to the live ones, then swaps
 * them in at once, so clients never see a half-built model.
 */
const REBUILD_USAGE =
  'usage: npm run projections:rebuild (no options; REBUILD_WORKERS sets the worker threads)';
const rebuild = async (args: string[]) => {
  options(args, {}, REBUILD_USAGE); // a typo or --help must not start a rebuild and swap
  const config = loadConfig();
  const events = await openEventStore(config, { readOnly: true });
  const live = await openReadModelStore(config);
  const bar = new ProgressBar('rebuild', 'events');
  const started = Date.now();
  // Ctrl-C while the shadow fills stops at once (no handler yet: the replay may hold the thread):
  // the live models are untouched, and the next rebuild clears the shadow. Once the swap has
  // begun it is finished first: on MongoDB a swap announced and left half-way pauses the live
  // projector until another rebuild completes it.
  let removeListeners: (() => void) | undefined;
  const interrupts = {
    first: (signal: NodeJS.Signals) => {
      ProgressBar.endOpenLines();
      process.stderr.write(
        `rebuild: ${signal}: finishing the swap under way first (${signal} again to stop at once)\n`,
      );
    },
    again: (signal: NodeJS.Signals) => {
      ProgressBar.endOpenLines();
      process.stderr.write(
        `rebuild: ${signal} again: stopped during the swap; run the rebuild again to complete it\n`,
      );
      process.exit(130);
    },
  };
  try {
    const projections = allProjections();
    // Positions need not be dense: progress is measured in log positions, the rate in events.
    const result = await rebuildReadModels(
      events,
      live,
      projections,
      (p) => bar.update(p.events, Number(p.position), Number(p.head)),
      { workers: config.rebuildWorkers },
      () => {
        removeListeners = onStopSignals(interrupts);
        // the swap builds every index (and on MongoDB first waits for the projector to pause):
        // at a large log, many seconds with nothing moving on the bar
        bar.endLine();
        process.stderr.write(
          `rebuild: replayed in ${((Date.now() - started) / 1000).toFixed(1)} s; swapping in (building the indexes${config.readModelStore === 'mongodb' ? ', pausing the projector' : ''})…\n`,
        );
      },
    );
    bar.done(
      `${result.events} events into ${projections.length} read models in ${((Date.now() - started) / 1000).toFixed(1)} s; swapped in`,
    );
  } finally {
    removeListeners?.();
    await live.close();
    await events.close();
  }
};

/**
 * `audit:verify`: checks every stream's hash chain; exits 1 and names the first broken event,
 * 2 when it could not verify (so that a monitor tells tampering from an outage).
 */
const VERIFY_USAGE =
  'usage: npm run audit:verify [-- --anchor POSITION:DIGEST] (exits 0 when intact, 1 naming the first broken event or the anchor not met, ' +
  '2 when it could not verify; the anchor of an earlier verify proves the log up to its position unchanged)';
const verify = async (args: string[]) => {
  const values = options(args, { anchor: { type: 'string' } }, VERIFY_USAGE);
  const anchor = values.anchor === undefined ? undefined : parseLogAnchor(values.anchor);
  if (values.anchor !== undefined && !anchor) {
    throw new Error(`--anchor must be POSITION:DIGEST, as a verify printed it\n${VERIFY_USAGE}`);
  }
  const config = loadConfig();
  const events = await openEventStore(config, { readOnly: true });
  const bar = new ProgressBar('verify', 'events');
  try {
    const report = await verifyHashChains(events, {
      anchor,
      onProgress: (checked, position, head) => bar.update(checked, Number(position), Number(head)),
    });
    bar.endLine();
    // Nothing checked is no proof (most likely the wrong DATA_DIR or cluster): the JSON says so
    // too, for a consumer that reads `valid` and not the exit code.
    // (With an anchor, a log without events is not the one anchored: broken, 1. It may have been
    // emptied, which is what the anchor is there to show.)
    const nothingVerified = report.valid && report.checkedEvents === 0;
    const printed: typeof report = nothingVerified
      ? {
          ...report,
          valid: false,
          // the shape of every report that is not valid; no event to name, as for a missing stream
          firstInvalid: {
            streamId: '',
            revision: '',
            position: 'none',
            reason: 'the log holds no events: nothing was verified',
          },
        }
      : report;
    process.stdout.write(`${terminalSafeJson(printed)}\n`);
    if (nothingVerified) {
      bar.done(
        "the log holds no events: nothing was verified (is this the service's event store? DATA_DIR, EVENTSTORE_CONNECTION_STRING)",
      );
      process.exitCode = 2;
    } else if (report.valid) {
      bar.done(
        `${report.checkedEvents} events in ${report.checkedStreams} streams: every hash chain is intact` +
          (anchor ? `, and the log up to position ${anchor.position} is the one anchored` : '') +
          (report.anchor
            ? `\nanchor ${report.anchor.position}:${report.anchor.digest} (keep it apart from the data: ` +
              '`npm run audit:verify -- --anchor` with it proves later that the log up to here is unchanged)'
            : ''),
      );
    } else {
      const f = report.firstInvalid!;
      bar.done(
        // stream ids and reasons come from the (maybe tampered) store: no escape sequences
        withoutControlCharacters(
          f.streamId
            ? `BROKEN at ${f.streamId} revision ${f.revision} (position ${f.position}): ${f.reason}`
            : `BROKEN: ${f.reason}`,
        ),
      );
      process.exitCode = 1;
    }
  } finally {
    await events.close();
  }
};

const REPORT_USAGE =
  'usage: npm run report -- (--period 2026-Q4 | --from 2026-10-01 --to 2026-12-31) [--format html|json|csv (default html)] [--out FILE]';

/**
 * `report`: the compliance report from the read models. It first brings them up to the event
 * store's head (idempotent, safe beside a running projector), so a report made while the
 * service is stopped is still complete.
 */
const report = async (args: string[]) => {
  const values = options(
    args,
    {
      period: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string', default: 'html' },
      out: { type: 'string' },
    },
    REPORT_USAGE,
  );
  if (!['json', 'csv', 'html'].includes(values.format!))
    throw new Error(`unknown format ${values.format}\n${REPORT_USAGE}`);
  if (values.out === '') throw new Error(`--out names no file\n${REPORT_USAGE}`);
  // npm runs scripts in the package's folder: a relative --out is meant from where it was typed.
  const out =
    values.out === undefined ? undefined : resolve(process.env.INIT_CWD ?? process.cwd(), values.out);
  // Before the catch-up, which may take minutes: a folder that is not there fails now.
  if (out && !statSync(dirname(out), { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`--out ${values.out}: no folder ${dirname(out)} to write the report in`);
  if (out && statSync(out, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`--out ${values.out} is a folder: name a file`);
  let period;
  try {
    period = resolveReportPeriod(values);
    assertPeriodBegun(period, values, new Date());
  } catch (error) {
    if (!(error instanceof ReportPeriodError)) throw error;
    throw new Error(
      `--${error.field}: ${error.message.replace(/\b(from|to|period)\b/g, '--$1')}\n${REPORT_USAGE}`,
    );
  }
  const config = loadConfig();
  const events = await openEventStore(config, { readOnly: true });
  const store = await openReadModelStore(config);
  try {
    const catchUp = new ProgressBar('read models', 'events');
    const applied = await catchUpLive(events, store, allProjections(), {
      onProgress: (p) => catchUp.update(p.events, Number(p.position), Number(p.head), Number(p.from ?? 0n)),
      // as a report read waits out a swap (ReadModelsSwappingError): the README's 15 s
      swapWaitMs: REPORT_SWAP_WAIT_MS,
      onSwapWait: () =>
        process.stderr.write(
          `a rebuild is being swapped into the read models: waiting for it (up to ${REPORT_SWAP_WAIT_MS / 1000} s)\n`,
        ),
    });
    catchUp.done(`up to date (${applied} events applied now)`);
    const loading = new ProgressBar('report', 'changes');
    const { documentsRead, ...built } = await complianceReportFromStore(store, period, {
      now: new Date(),
      settings: config,
      onDocument: (count) => loading.tally(count),
    });
    const output =
      values.format === 'json'
        ? `${terminalSafeJson(built)}\n`
        : values.format === 'csv'
          ? complianceReportCsv(built)
          : complianceReportHtml(built);
    const findings = Object.values(built.findings).reduce((n, list) => n + list.length, 0);
    loading.endLine();
    if (out && lstatSync(out, { throwIfNoEntry: false })?.isFile() === false) {
      // not a plain file (/dev/stdout, a pipe, a symbolic link): written through, as it is
      writeFileSync(out, output);
    } else if (out) {
      // whole or not at all: a reader of the file (or a report of the last quarter kept
      // there) never sees half of one
      const partial = `${out}.${process.pid}.partial`;
      try {
        writeFileSync(partial, output);
        renameSync(partial, out);
      } finally {
        rmSync(partial, { force: true });
      }
    } else process.stdout.write(output);
    loading.done(
      `${period.label}: ${built.volumes.submitted.total} changes submitted, ${findings} findings, from ${documentsRead} changes` +
        (out ? `; written to ${out}` : ''),
    );
  } finally {
    await store.close();
    await events.close();
  }
};

const BACKUP_USAGE =
  'usage: npm run backup -- --out FILE (the embedded event store, copied while the service runs, then its hash chains verified; ' +
  'FILE must not exist; restore: see the README)';

/**
 * `backup`: a consistent copy of the embedded event store (the log is the only thing that
 * cannot be built again: read models are replayed from it), verified before it is named.
 */
const backup = async (args: string[]) => {
  const values = options(args, { out: { type: 'string' } }, BACKUP_USAGE);
  if (!values.out) throw new Error(`--out names no file\n${BACKUP_USAGE}`);
  const config = loadConfig();
  if (config.eventStore !== 'sqlite') {
    throw new Error(
      'EVENT_STORE is eventstoredb: back EventStoreDB up with its own procedure (its documentation: copy the database ' +
        'and index folders in the order it gives, or a volume snapshot); this command copies the embedded store',
    );
  }
  // npm runs scripts in the package's folder: a relative --out is meant from where it was typed.
  const out = resolve(process.env.INIT_CWD ?? process.cwd(), values.out);
  const source = join(config.dataDir, 'events.sqlite');
  const copying = new ProgressBar('backup', 'events');
  const started = Date.now();
  let anchor: string | undefined;
  // Ctrl-C stops it between two pages or two checked pages, and the partial copy is removed; a
  // second one, while that takes long (a page of a slow disk), stops at once.
  const interrupted = new AbortController();
  const removeListeners = onStopSignals({
    first: () => interrupted.abort(new Error('interrupted: no backup written')),
    again: (signal) => {
      ProgressBar.endOpenLines();
      process.stderr.write(
        `backup: ${signal} again: stopped at once; no backup written (a partial copy may be left beside it, ${partialPrefix(out)}…)\n`,
      );
      process.exit(130);
    },
  });
  let result: Awaited<ReturnType<typeof backupSqliteEventStore>>;
  try {
    result = await backupSqliteEventStore(source, out, {
      signal: interrupted.signal,
      onProgress: (copied, position, head) => copying.update(copied, Number(position), Number(head)),
      onIntegrityCheck: () => {
        copying.endLine();
        process.stderr.write("backup: SQLite's integrity check of the copy…\n");
      },
      check: async (file) => {
        // made now: its rate and time left count the check alone, not the copy before it
        const checking = new ProgressBar('backup check', 'events');
        const copy = new SqliteEventStore(file, { readOnly: true });
        try {
          const chains = await verifyHashChains(copy, {
            onProgress: (checked, position, head) => {
              interrupted.signal.throwIfAborted();
              checking.update(checked, Number(position), Number(head));
            },
          });
          checking.endLine();
          // a copy of nothing is no backup: most likely the wrong DATA_DIR (verify says so too)
          if (chains.valid && chains.checkedEvents === 0) {
            throw new Error(
              "the event store holds no events: nothing to back up (is this the service's event store? DATA_DIR)",
            );
          }
          if (!chains.valid) {
            const f = chains.firstInvalid!;
            throw new Error(
              withoutControlCharacters(
                `the copy's hash chains are broken at ${f.streamId} revision ${f.revision} (position ${f.position}): ${f.reason}; ` +
                  'so is the event store (npm run audit:verify): no backup written',
              ),
            );
          }
          if (chains.anchor) anchor = `${chains.anchor.position}:${chains.anchor.digest}`;
        } finally {
          await copy.close();
        }
      },
    });
  } finally {
    removeListeners();
  }
  copying.done(
    `${result.events} events up to position ${result.head} in ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
      `${(result.bytes / 1024 / 1024).toFixed(1)} MiB, every hash chain intact: ${out}` +
      (anchor
        ? `\nanchor ${anchor} (\`npm run audit:verify -- --anchor\` with it proves a restored log is this one)`
        : ''),
  );
};

const WEBHOOK_SKIP_USAGE =
  'usage: npm run webhook:skip -- --through POSITION (gives up the webhook events up to POSITION, the `failing.position` ' +
  '/health shows for an event the receiver keeps refusing: they are not sent; a running service moves on within seconds)';

/**
 * `webhook:skip`: moves the webhook's checkpoint forward past an event its receiver keeps
 * refusing (later events wait behind it, in order). The service notices at its next attempt.
 */
const webhookSkip = async (args: string[]) => {
  const values = options(args, { through: { type: 'string' } }, WEBHOOK_SKIP_USAGE);
  if (values.through === undefined || !/^\d{1,20}$/.test(values.through))
    throw new Error(
      `--through must be a log position, such as /health's webhook.failing.position\n${WEBHOOK_SKIP_USAGE}`,
    );
  const through = BigInt(values.through);
  const config = loadConfig();
  const file = join(config.dataDir, WEBHOOK_CHECKPOINTS_FILE);
  if (!existsSync(file))
    throw new Error(`no webhook checkpoint at ${resolve(file)}: no webhook has run with this DATA_DIR`);
  const events = await openEventStore(config, { readOnly: true });
  const checkpoints = new WebhookCheckpoints(file);
  try {
    const head = await events.headPosition();
    // past the end, it would silently swallow events not written yet
    if (through > head)
      throw new Error(
        `--through ${through} is past the end of the event log (${head}): nothing there to skip`,
      );
    let delivered: bigint | undefined;
    try {
      delivered = checkpoints.get(CHECKPOINT_NAME);
    } catch {
      // a position edited into something else: the operator's is the one to go on from
      checkpoints.reset(CHECKPOINT_NAME, through, new Date());
      process.stderr.write(
        `webhook: the checkpoint in ${resolve(file)} held no position; set to ${through}: delivery goes on after it\n`,
      );
      return;
    }
    if (delivered === undefined)
      throw new Error(`the webhook checkpoint file ${resolve(file)} holds no checkpoint: no webhook has run`);
    if (through <= delivered) {
      process.stderr.write(`webhook: delivered through ${delivered} already: nothing skipped\n`);
      return;
    }
    checkpoints.set(CHECKPOINT_NAME, through, new Date());
    process.stderr.write(
      `webhook: the events after ${delivered} up to ${through} are given up (not sent); delivery goes on after ${through} ` +
        '(a running service within seconds, at its next look)\n',
    );
  } finally {
    checkpoints.close();
    await events.close();
  }
};

/** Each command, with the npm script that runs it (package.json). */
const COMMANDS: Record<string, { run: (args: string[]) => Promise<void>; usage: string; script: string }> = {
  token: { run: token, usage: USAGE, script: 'token' },
  rebuild: { run: rebuild, usage: REBUILD_USAGE, script: 'projections:rebuild' },
  verify: { run: verify, usage: VERIFY_USAGE, script: 'audit:verify' },
  report: { run: report, usage: REPORT_USAGE, script: 'report' },
  backup: { run: backup, usage: BACKUP_USAGE, script: 'backup' },
  'webhook-skip': { run: webhookSkip, usage: WEBHOOK_SKIP_USAGE, script: 'webhook:skip' },
};
const MAIN_USAGE =
  `usage: npm run <${Object.values(COMMANDS)
    .map((c) => c.script)
    .join('|')}> -- [options] (--help for a command's)\n` +
  `   or: node dist/apps/cli/src/main.js <${Object.keys(COMMANDS).join('|')}> [options]`;

const main = async () => {
  const [command, ...args] = process.argv.slice(2);
  if (command === undefined) throw new Error(`no command given\n${MAIN_USAGE}`);
  if (command === '--help' || command === '-h') {
    process.stdout.write(`${MAIN_USAGE}\n`);
    return;
  }
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!entry) throw new Error(`unknown command ${command}\n${MAIN_USAGE}`);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${entry.usage}\n`);
    return;
  }
  await entry.run(args);
};

main().catch((error: unknown) => {
  // end a progress line drawn in place before the message
  ProgressBar.endOpenLines();
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(failureExitCode());
});
