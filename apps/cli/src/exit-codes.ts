/**
 * How the CLI ends when it could not do its work. Imported first by main.ts, so that these
 * handlers are in place before anything else loads: a module that fails to load, or output that
 * cannot be written, would otherwise end the process with Node's default 1, which for `verify`
 * means "the log is broken" (a tampering alarm for a full disk or a closed pipe).
 */

import { ProgressBar } from './progress-bar';

/**
 * verify: 0 intact, 1 broken, 2 could not verify (a failure after a "broken" verdict, closing the
 * store, say, keeps the verdict); every other command: 1 on any failure.
 */
export const failureExitCode = (): number =>
  process.argv[2] !== 'verify' ? 1 : process.exitCode === 1 ? 1 : 2;

const say = (text: string) => {
  try {
    process.stderr.write(`${text}\n`);
  } catch {
    // stderr is gone too: the exit code is all that is left to say it
  }
};

process.on('uncaughtException', (error: unknown) => {
  try {
    ProgressBar.endOpenLines(); // the message on a line of its own
  } catch {
    // stderr is gone
  }
  say(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(failureExitCode());
});

/**
 * Output that could not be written. verify's output is a copy of its verdict, which is the exit
 * code and stays so (a reader that took what it wanted and left, `verify | head -1`, is no
 * failure; a full disk is said on stderr). For every other command the output is the work (a
 * report, a token): cut short, the command failed.
 */
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (process.argv[2] === 'verify') {
    if (error.code !== 'EPIPE')
      say(`the report could not be written to stdout (${error.code ?? error.message})`);
    return;
  }
  say(`the output could not be written (${error.code ?? error.message}): what was written is incomplete`);
  process.exitCode = failureExitCode();
});

// A reader of stderr (progress, the verdict's line) that went away ends nothing: nowhere to say it.
process.stderr.on('error', () => undefined);
