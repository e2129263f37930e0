import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AppConfig } from '@changeledger/platform';
import { builtFile, isBuilt } from '../../support/built';
import { onClientDouble } from './app-harness';

/** The built CLI: CI builds before testing; without dist/ the CLI tests cannot run. */
export const CLI_MAIN = builtFile('apps/cli/src/main.js');
export const cliBuilt = isBuilt(CLI_MAIN, 'CLI tests');

/**
 * Whether a CLI process can open the apps' event store: not the in-process client double of the
 * e2e-eventstoredb-double project (its verify and rebuild run on SQLite and EventStoreDB runs).
 */
export const cliReachesEvents = !onClientDouble;
if (!cliReachesEvents)
  console.log('CLI verify, rebuild and backup skipped: the event store is an in-process double');

/** The environment that points the CLI at the same stores as an app started with `config`. */
export const cliEnvOf = (c: AppConfig): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  DATA_DIR: c.dataDir,
  AUTH_JWT_SECRET: c.auth.jwtSecret,
  READ_MODEL_STORE: c.readModelStore,
  ...(c.readModelStore === 'mongodb' ? { MONGODB_URL: c.mongodbUrl, MONGODB_DB: c.mongodbDb } : {}),
  ...(process.env.E2E_EVENT_STORE === 'eventstoredb'
    ? { EVENT_STORE: 'eventstoredb', EVENTSTORE_CONNECTION_STRING: process.env.EVENTSTORE_CONNECTION_STRING }
    : {}),
  LOG_LEVEL: 'error',
  // A rebuild on the embedded stores replays in worker threads, on any machine
  REBUILD_WORKERS: '2',
});

/** Runs `changeledger <args>` in its own process against the stores of `config`. */
export const runCli = (config: AppConfig, args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)(process.execPath, [CLI_MAIN, ...args], { env: { ...cliEnvOf(config), ...env } });

/** `runCli` that resolves with the exit code and output instead of rejecting on a failure. */
export const runCliSettled = async (
  config: AppConfig,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
) => {
  try {
    const { stdout, stderr } = await runCli(config, args, env);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
};
