import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { WEBHOOK_EVENT_TYPES, type WebhookTarget } from '@changeledger/webhooks';
import { MIN_JWT_SECRET_LENGTH } from './jwt-secret';

/** DI token for the AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');

export type EventStoreKind = 'sqlite' | 'eventstoredb';
export type ReadModelStoreKind = 'sqlite' | 'mongodb';

/** Every setting the service reads, from the environment only (see the README's table). */
export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly eventStore: EventStoreKind;
  readonly eventStoreConnectionString?: string;
  readonly readModelStore: ReadModelStoreKind;
  readonly mongodbUrl?: string;
  readonly mongodbDb: string;
  readonly auth: {
    readonly jwtSecret?: string;
    readonly jwksUrl?: string;
    readonly issuer?: string;
    readonly audience?: string;
    /** The longest a token may live (exp − iat), in seconds; unset: no limit. */
    readonly maxTokenLifetimeSeconds?: number;
    /** Ids (`jti`) of tokens refused before they expire. */
    readonly revokedTokenIds?: readonly string[];
  };
  readonly retrospectiveDueBusinessDays: number;
  /** Business days after a normal or standard change's implementation ended within which it is reviewed and closed. */
  readonly postImplementationReviewDueBusinessDays: number;
  /** How often a command is run against the newest state when a concurrent write wins. */
  readonly commandMaxAttempts: number;
  /** Whether this process also runs the projector (one active projector per read-model store). */
  readonly runProjector: boolean;
  /** Whether an in-process projector on the embedded stores runs in a worker thread. */
  readonly projectorThread: boolean;
  /**
   * At most one live projector batch per this many ms under load (see `ProjectorOptions.batchWindowMs`);
   * unset: DEFAULT_PROJECTOR_BATCH_WINDOW_MS in the API's projector, 0 in a projector process of its own.
   */
  readonly projectorBatchWindowMs?: number;
  /** Worker threads `projections:rebuild` replays with (embedded stores only; 1: the main thread). */
  readonly rebuildWorkers: number;
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug';
  /**
   * On SIGTERM, how long requests in flight (an export streaming to a slow client among them)
   * may take once the server stops accepting; then their connections are closed.
   */
  readonly shutdownDrainMs: number;
  /** Where every event is sent as it is recorded (signed JSON POSTs); unset: nowhere. */
  readonly webhook?: WebhookTarget;
  /** The bearer token `GET /metrics` asks for instead of a user's token (a scraper's); unset: a user's. */
  readonly metricsToken?: string;
  /**
   * The browser origins (`https://changes.example.org`) whose pages may call the API (CORS), or
   * `*` for any; empty: none but the API's own (a frontend served from the same origin).
   */
  readonly corsOrigins: readonly string[];
}

const oneOf = <T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T => {
  if (value === undefined || value === '') return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new Error(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
};

/** The units of a duration setting, largest first, in seconds. */
const DURATION_UNITS = [
  ['d', 86_400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
] as const;
const UNIT_SECONDS: Readonly<Record<string, number>> = Object.fromEntries(DURATION_UNITS);

/**
 * `90m`, `12h`, `7d` or seconds (`3600`) as whole seconds; anything else (`10M`, `1 hour`, `0s`,
 * `-1h`) undefined. The one grammar of durations, in settings and on the command line.
 */
export const parseDuration = (value: string): number | undefined => {
  const match = /^([1-9]\d{0,8})([smhd]?)$/.exec(value.trim());
  return match ? Number(match[1]) * UNIT_SECONDS[match[2] || 's'] : undefined;
};

/** A duration setting; unset or empty: undefined. */
const duration = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined || value === '') return undefined;
  const seconds = parseDuration(value);
  if (seconds === undefined)
    throw new Error(`${name} must be a duration such as 90m, 12h or 7d (got "${value}")`);
  return seconds;
};

/**
 * Seconds as a duration would be written: `3600` → `1h`, `5400` → `90m`. `rounded`: in the
 * largest unit it reaches, rounded (`93_700` → `1d`), for a time that is not a whole number.
 */
export const describeDuration = (seconds: number, { rounded = false } = {}): string => {
  for (const [unit, size] of DURATION_UNITS) {
    if (seconds >= size && (rounded || seconds % size === 0)) {
      return `${rounded ? Math.round(seconds / size) : seconds / size}${unit}`;
    }
  }
  return `${rounded ? Math.round(seconds) : seconds}s`;
};

const integer = (
  name: string,
  value: string | undefined,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number => {
  if (value === undefined || value === '') return fallback;
  // digits only: Number() reads " " as 0 (PORT=" " would listen on a random port) and "1e3" as 1000
  const n = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(
      `${name} must be an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''} (got "${value}")`,
    );
  return n;
};

const optional = (value: string | undefined) => (value === undefined || value === '' ? undefined : value);

/** A comma-separated list, blanks dropped; undefined when it names nothing. */
const list = (value: string | undefined): readonly string[] | undefined => {
  const items = (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  return items.length > 0 ? items : undefined;
};

/**
 * Settings given but not used, to be logged at start: a server address set without the switch
 * that selects it runs on the embedded store (several API instances would each keep a log of
 * their own), which only the start line would otherwise show.
 */
export const ignoredSettings = (config: AppConfig, env: NodeJS.ProcessEnv = process.env): string[] => {
  const ignored: string[] = [];
  if (config.eventStore !== 'eventstoredb' && optional(env.EVENTSTORE_CONNECTION_STRING)) {
    ignored.push(
      'EVENTSTORE_CONNECTION_STRING is set but not used: EVENT_STORE is sqlite (set EVENT_STORE=eventstoredb to use it)',
    );
  }
  for (const name of ['WEBHOOK_SECRET', 'WEBHOOK_SECRET_PREVIOUS', 'WEBHOOK_EVENTS'] as const) {
    if (!config.webhook && optional(env[name])) {
      ignored.push(`${name} is set but not used: WEBHOOK_URL is not set`);
    }
  }
  for (const name of ['MONGODB_URL', 'MONGODB_DB'] as const) {
    if (config.readModelStore !== 'mongodb' && optional(env[name])) {
      ignored.push(
        `${name} is set but not used: READ_MODEL_STORE is sqlite (set READ_MODEL_STORE=mongodb to use it)`,
      );
    }
  }
  return ignored;
};

/**
 * The batch window of the projector inside the API process. Measured on 2026-11-27 (2 vCPU, 32
 * clients running lifecycles): the projector thread's CPU per command fell from about 85 us to 44
 * at 15 ms and about 30 at 25 ms, and commands/s rose by a fifth with it: the two cores are shared
 * by the API thread, the projector thread and the load (see the README's performance section).
 * The first event after a quiet spell, and what a `minPosition` read of the same process waits
 * for, are not held. A projector process of its own is not told of the API's reads, whose
 * `minPosition` would then wait out the window too: there the window is off unless set.
 */
export const DEFAULT_PROJECTOR_BATCH_WINDOW_MS = 25;

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): AppConfig => {
  const eventStore = oneOf('EVENT_STORE', env.EVENT_STORE, ['sqlite', 'eventstoredb'] as const, 'sqlite');
  const readModelStore = oneOf(
    'READ_MODEL_STORE',
    env.READ_MODEL_STORE,
    ['sqlite', 'mongodb'] as const,
    'sqlite',
  );
  const config: AppConfig = {
    port: integer('PORT', env.PORT, 3000, 0, 65_535),
    host: optional(env.HOST) ?? '0.0.0.0',
    dataDir: resolve(optional(env.DATA_DIR) ?? './data'),
    eventStore,
    eventStoreConnectionString: optional(env.EVENTSTORE_CONNECTION_STRING),
    readModelStore,
    mongodbUrl: optional(env.MONGODB_URL),
    mongodbDb: optional(env.MONGODB_DB) ?? 'changeledger',
    auth: {
      jwtSecret: optional(env.AUTH_JWT_SECRET),
      jwksUrl: optional(env.AUTH_JWKS_URL),
      issuer: optional(env.AUTH_ISSUER),
      audience: optional(env.AUTH_AUDIENCE),
      maxTokenLifetimeSeconds: duration('AUTH_MAX_TOKEN_LIFETIME', env.AUTH_MAX_TOKEN_LIFETIME),
      revokedTokenIds: list(env.AUTH_REVOKED_TOKEN_IDS),
    },
    // at most a year of business days: due dates are counted a day at a time on every read
    retrospectiveDueBusinessDays: integer(
      'RETROSPECTIVE_DUE_BUSINESS_DAYS',
      env.RETROSPECTIVE_DUE_BUSINESS_DAYS,
      2,
      0,
      260,
    ),
    postImplementationReviewDueBusinessDays: integer(
      'POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS',
      env.POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS,
      5,
      0,
      260,
    ),
    runProjector: oneOf('RUN_PROJECTOR', env.RUN_PROJECTOR, ['true', 'false'] as const, 'true') === 'true',
    projectorThread:
      oneOf('PROJECTOR_THREAD', env.PROJECTOR_THREAD, ['true', 'false'] as const, 'true') === 'true',
    projectorBatchWindowMs:
      optional(env.PROJECTOR_BATCH_WINDOW_MS) === undefined
        ? undefined
        : integer('PROJECTOR_BATCH_WINDOW_MS', env.PROJECTOR_BATCH_WINDOW_MS, 0, 0, 1000),
    rebuildWorkers: integer(
      'REBUILD_WORKERS',
      env.REBUILD_WORKERS,
      Math.min(4, availableParallelism()),
      1,
      16,
    ),
    commandMaxAttempts: integer('COMMAND_MAX_ATTEMPTS', env.COMMAND_MAX_ATTEMPTS, 8, 1),
    logLevel: oneOf('LOG_LEVEL', env.LOG_LEVEL, ['error', 'warn', 'log', 'debug'] as const, 'log'),
    shutdownDrainMs: integer('SHUTDOWN_DRAIN_MS', env.SHUTDOWN_DRAIN_MS, 10_000, 0, 600_000),
    webhook: webhookTarget(env),
    metricsToken: optional(env.METRICS_TOKEN),
    corsOrigins: corsOrigins(env.CORS_ORIGINS),
  };
  if (eventStore === 'eventstoredb' && !config.eventStoreConnectionString) {
    throw new Error(
      'EVENT_STORE=eventstoredb needs EVENTSTORE_CONNECTION_STRING (e.g. esdb://localhost:2113?tls=false)',
    );
  }
  // Anyone holding one token can test guesses of an HS256 secret offline, as fast as they hash.
  if (config.auth.jwtSecret !== undefined && config.auth.jwtSecret.length < MIN_JWT_SECRET_LENGTH) {
    throw new Error(
      `AUTH_JWT_SECRET must be at least ${MIN_JWT_SECRET_LENGTH} characters (e.g. openssl rand -base64 48): a short secret can be guessed from any token it signed`,
    );
  }
  // A key set may sign tokens for others too (a multi-tenant identity provider): without both
  // checks, anyone with a token from it could act here with whatever roles it names.
  if (config.auth.jwksUrl && (!config.auth.issuer || !config.auth.audience)) {
    throw new Error(
      'AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE: tokens from the key set are accepted only for this issuer and audience',
    );
  }
  // Keys fetched over plain HTTP can be swapped on the way: whoever does signs any role.
  if (config.auth.jwksUrl && !isSafeKeySetUrl(config.auth.jwksUrl)) {
    throw new Error(
      'AUTH_JWKS_URL must be an https:// URL (plain http only to this machine: localhost, 127.0.0.1, ::1)',
    );
  }
  // a token sent on every scrape, kept in the scraper's file: not a word a person picks
  if (config.metricsToken !== undefined && config.metricsToken.length < MIN_JWT_SECRET_LENGTH) {
    throw new Error(
      `METRICS_TOKEN must be at least ${MIN_JWT_SECRET_LENGTH} characters (e.g. openssl rand -hex 32)`,
    );
  }
  // a bearer token has none, and a scraper trims its token file: it could never match
  if (config.metricsToken !== undefined && /\s/.test(config.metricsToken)) {
    throw new Error(
      'METRICS_TOKEN holds white space (a line break at the end of the file it was read from?): a bearer token has none',
    );
  }
  if (readModelStore === 'mongodb' && !config.mongodbUrl) {
    throw new Error('READ_MODEL_STORE=mongodb needs MONGODB_URL (e.g. mongodb://localhost:27017)');
  }
  return config;
};

/**
 * CORS_ORIGINS: a comma-separated list of origins, each scheme, host and port only (what a
 * browser sends in `Origin`), or `*` alone. Checked here: a path or a trailing slash would never
 * match an `Origin`, and the frontend's calls would fail with no word why.
 */
const corsOrigins = (value: string | undefined): string[] => {
  const listed = (optional(value) ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  if (listed.includes('*')) {
    if (listed.length > 1) throw new Error('CORS_ORIGINS is either * or a list of origins, not both');
    return listed;
  }
  for (const origin of listed) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (
      !parsed ||
      (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
      parsed.origin !== origin
    ) {
      throw new Error(
        `CORS_ORIGINS: "${origin}" is not an origin: scheme, host and port only, as a browser sends it (e.g. https://changes.example.org, no path or trailing slash)`,
      );
    }
  }
  return listed;
};

/** WEBHOOK_URL, WEBHOOK_SECRET and WEBHOOK_EVENTS, checked; undefined without a URL. */
const webhookTarget = (env: NodeJS.ProcessEnv): WebhookTarget | undefined => {
  const url = optional(env.WEBHOOK_URL);
  if (url === undefined) return undefined;
  const parsed = parseUrl(url);
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol)) {
    // not echoed: a receiver's URL often holds its token
    throw new Error(
      `WEBHOOK_URL must be an http:// or https:// URL (got ${parsed ? `one starting ${parsed.protocol}//` : 'something that is not a URL'})`,
    );
  }
  if (parsed.username || parsed.password) {
    try {
      decodeURIComponent(parsed.username);
      decodeURIComponent(parsed.password);
    } catch {
      throw new Error('WEBHOOK_URL has a user or password that is not validly %-encoded');
    }
    // Basic credentials over plain http can be read on the way: only to this machine.
    if (parsed.protocol === 'http:' && !LOOPBACK_HOSTS.includes(parsed.hostname)) {
      throw new Error(
        'WEBHOOK_URL with a user or password must be https:// (plain http only to this machine: localhost, 127.0.0.1, ::1)',
      );
    }
  }
  const secret = optional(env.WEBHOOK_SECRET);
  // Anyone who sees one delivery can test guesses of the secret offline, then forge deliveries.
  if (secret === undefined || secret.length < MIN_JWT_SECRET_LENGTH) {
    throw new Error(
      `WEBHOOK_URL needs WEBHOOK_SECRET, at least ${MIN_JWT_SECRET_LENGTH} characters (e.g. openssl rand -hex 32): every delivery is signed with it, so that the receiver can check where it came from`,
    );
  }
  const previousSecret = optional(env.WEBHOOK_SECRET_PREVIOUS);
  if (previousSecret !== undefined && previousSecret.length < MIN_JWT_SECRET_LENGTH) {
    throw new Error(
      `WEBHOOK_SECRET_PREVIOUS must be at least ${MIN_JWT_SECRET_LENGTH} characters, as WEBHOOK_SECRET`,
    );
  }
  const eventTypes = list(env.WEBHOOK_EVENTS) ?? [];
  const unknown = eventTypes.filter((type) => !WEBHOOK_EVENT_TYPES.includes(type));
  if (unknown.length > 0) {
    throw new Error(
      `WEBHOOK_EVENTS names event types that do not exist: ${unknown.join(', ')} (they are: ${WEBHOOK_EVENT_TYPES.join(', ')})`,
    );
  }
  return {
    url,
    secret,
    ...(previousSecret !== undefined ? { previousSecret } : {}),
    ...(eventTypes.length > 0 ? { eventTypes } : {}),
  };
};

/** A URL, or undefined for a text that is not one. */
const parseUrl = (text: string): URL | undefined => {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
};

/** Host names of this machine, as a parsed URL gives them. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** https, or plain http to the loopback interface (a local identity provider, tests). */
const isSafeKeySetUrl = (text: string): boolean => {
  const url = parseUrl(text);
  if (!url) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && LOOPBACK_HOSTS.includes(url.hostname);
};
