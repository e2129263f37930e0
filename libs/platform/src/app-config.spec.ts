import { availableParallelism } from 'node:os';
import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_PROJECTOR_BATCH_WINDOW_MS,
  describeDuration,
  ignoredSettings,
  loadConfig,
} from './app-config';

describe('loadConfig: worker threads', () => {
  it('REBUILD_WORKERS defaults to one per core (at most 4) and takes 1 to 16', () => {
    expect(loadConfig({}).rebuildWorkers).toBe(Math.min(4, availableParallelism()));
    expect(loadConfig({ REBUILD_WORKERS: '1' }).rebuildWorkers).toBe(1);
    expect(loadConfig({ REBUILD_WORKERS: '16' }).rebuildWorkers).toBe(16);
    expect(() => loadConfig({ REBUILD_WORKERS: '0' })).toThrow(
      'REBUILD_WORKERS must be an integer >= 1 and <= 16 (got "0")',
    );
    expect(() => loadConfig({ REBUILD_WORKERS: '17' })).toThrow(
      'REBUILD_WORKERS must be an integer >= 1 and <= 16 (got "17")',
    );
    expect(() => loadConfig({ REBUILD_WORKERS: '2.5' })).toThrow(/REBUILD_WORKERS must be an integer/);
  });

  it('PROJECTOR_THREAD is true unless set to false, and nothing else', () => {
    expect(loadConfig({}).projectorThread).toBe(true);
    expect(loadConfig({ PROJECTOR_THREAD: 'false' }).projectorThread).toBe(false);
    expect(() => loadConfig({ PROJECTOR_THREAD: 'no' })).toThrow(
      'PROJECTOR_THREAD must be one of true, false (got "no")',
    );
  });

  it('PROJECTOR_BATCH_WINDOW_MS is unset (each projector its default) unless given, 0 turns it off, and it is at most a second', () => {
    expect(loadConfig({}).projectorBatchWindowMs).toBeUndefined();
    expect(loadConfig({ PROJECTOR_BATCH_WINDOW_MS: '' }).projectorBatchWindowMs).toBeUndefined();
    expect(DEFAULT_PROJECTOR_BATCH_WINDOW_MS).toBe(25);
    expect(loadConfig({ PROJECTOR_BATCH_WINDOW_MS: '0' }).projectorBatchWindowMs).toBe(0);
    expect(loadConfig({ PROJECTOR_BATCH_WINDOW_MS: '1000' }).projectorBatchWindowMs).toBe(1000);
    expect(() => loadConfig({ PROJECTOR_BATCH_WINDOW_MS: '1001' })).toThrow(
      'PROJECTOR_BATCH_WINDOW_MS must be an integer >= 0 and <= 1000 (got "1001")',
    );
  });

  it('SHUTDOWN_DRAIN_MS is 10 s unless given, from 0 to 10 minutes', () => {
    expect(loadConfig({}).shutdownDrainMs).toBe(10_000);
    expect(loadConfig({ SHUTDOWN_DRAIN_MS: '0' }).shutdownDrainMs).toBe(0);
    expect(loadConfig({ SHUTDOWN_DRAIN_MS: '600000' }).shutdownDrainMs).toBe(600_000);
    expect(() => loadConfig({ SHUTDOWN_DRAIN_MS: '600001' })).toThrow(
      'SHUTDOWN_DRAIN_MS must be an integer >= 0 and <= 600000 (got "600001")',
    );
  });

  it('numbers are digits only: no blanks read as 0, no exponents; PORT and the due days bounded', () => {
    for (const value of [' ', ' 80', '1e3', '0x10', '-1', '3000.0']) {
      expect(() => loadConfig({ PORT: value })).toThrow(
        `PORT must be an integer >= 0 and <= 65535 (got "${value}")`,
      );
    }
    expect(loadConfig({ PORT: '0' }).port).toBe(0); // the system picks one
    expect(() => loadConfig({ PORT: '65536' })).toThrow(/PORT must be an integer/);
    expect(loadConfig({ RETROSPECTIVE_DUE_BUSINESS_DAYS: '260' }).retrospectiveDueBusinessDays).toBe(260);
    expect(() => loadConfig({ RETROSPECTIVE_DUE_BUSINESS_DAYS: '1000000000' })).toThrow(
      'RETROSPECTIVE_DUE_BUSINESS_DAYS must be an integer >= 0 and <= 260 (got "1000000000")',
    );
    expect(loadConfig({}).postImplementationReviewDueBusinessDays).toBe(5);
    expect(
      loadConfig({ POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS: '0' })
        .postImplementationReviewDueBusinessDays,
    ).toBe(0);
    expect(() => loadConfig({ POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS: '-1' })).toThrow(
      'POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS must be an integer >= 0 and <= 260 (got "-1")',
    );
  });

  it('names a server address given without the switch that uses it', () => {
    const env = {
      EVENTSTORE_CONNECTION_STRING: 'esdb://es:2113?tls=false',
      MONGODB_URL: 'mongodb://m:27017',
    };
    expect(ignoredSettings(loadConfig(env), env)).toEqual([
      expect.stringMatching(/^EVENTSTORE_CONNECTION_STRING is set but not used: EVENT_STORE is sqlite/),
      expect.stringMatching(/^MONGODB_URL is set but not used: READ_MODEL_STORE is sqlite/),
    ]);
    const used = { ...env, EVENT_STORE: 'eventstoredb', READ_MODEL_STORE: 'mongodb', MONGODB_DB: 'x' };
    expect(ignoredSettings(loadConfig(used), used)).toEqual([]);
    expect(ignoredSettings(loadConfig({}), {})).toEqual([]);
  });

  it('bounds nothing else it did not bound before', () => {
    expect(() => loadConfig({ COMMAND_MAX_ATTEMPTS: '0' })).toThrow(
      'COMMAND_MAX_ATTEMPTS must be an integer >= 1 (got "0")',
    );
    expect(loadConfig({ COMMAND_MAX_ATTEMPTS: '1000' }).commandMaxAttempts).toBe(1000);
  });

  it('AUTH_MAX_TOKEN_LIFETIME: unset is no limit; 90m, 12h, 7d or seconds; anything else refused', () => {
    expect(loadConfig({}).auth.maxTokenLifetimeSeconds).toBeUndefined();
    expect(loadConfig({ AUTH_MAX_TOKEN_LIFETIME: '' }).auth.maxTokenLifetimeSeconds).toBeUndefined();
    for (const [value, seconds] of [
      ['90m', 5400],
      ['12h', 43_200],
      ['7d', 604_800],
      ['3600', 3600],
      ['45s', 45],
    ] as const) {
      expect(loadConfig({ AUTH_MAX_TOKEN_LIFETIME: value }).auth.maxTokenLifetimeSeconds).toBe(seconds);
    }
    expect([3600, 5400, 86_400, 45, 90].map((s) => describeDuration(s))).toEqual([
      '1h',
      '90m',
      '1d',
      '45s',
      '90s',
    ]);
    expect([93_700, 5400, 89.6, 31_535_999.4].map((s) => describeDuration(s, { rounded: true }))).toEqual([
      '1d',
      '2h',
      '1m',
      '365d',
    ]);
    for (const value of ['0', '-1h', '1.5h', '12 hours', '1w', 'h']) {
      expect(() => loadConfig({ AUTH_MAX_TOKEN_LIFETIME: value })).toThrow(
        /AUTH_MAX_TOKEN_LIFETIME must be a duration such as 90m, 12h or 7d/,
      );
    }
  });

  it('refuses an AUTH_JWT_SECRET shorter than 32 characters (guessable offline from any token)', () => {
    expect(() => loadConfig({ AUTH_JWT_SECRET: 'changeme' })).toThrow(/at least 32 characters/);
    expect(() => loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(31) })).toThrow(/at least 32 characters/);
    expect(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }).auth.jwtSecret).toBe('x'.repeat(32));
  });

  it('AUTH_JWKS_URL must be https, or plain http only to this machine', () => {
    const claims = { AUTH_ISSUER: 'https://idp.example.test/', AUTH_AUDIENCE: 'changeledger' };
    for (const url of [
      'http://idp.example.test/jwks.json',
      'ftp://idp.example.test/jwks',
      'not a url',
      'http://10.0.0.5/jwks',
    ]) {
      expect(() => loadConfig({ ...claims, AUTH_JWKS_URL: url })).toThrow(
        /AUTH_JWKS_URL must be an https:\/\/ URL/,
      );
    }
    for (const url of [
      'https://idp.example.test/jwks.json',
      'http://127.0.0.1:8080/jwks.json',
      'http://localhost/jwks',
      'http://[::1]:9/jwks',
    ]) {
      expect(loadConfig({ ...claims, AUTH_JWKS_URL: url }).auth.jwksUrl).toBe(url);
    }
  });

  it('AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE (a shared key set signs for others too)', () => {
    const jwks = { AUTH_JWKS_URL: 'https://idp.example.test/jwks.json' };
    expect(() => loadConfig(jwks)).toThrow(/AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE/);
    expect(() => loadConfig({ ...jwks, AUTH_ISSUER: 'https://idp.example.test/' })).toThrow(/AUTH_AUDIENCE/);
    expect(
      loadConfig({ ...jwks, AUTH_ISSUER: 'https://idp.example.test/', AUTH_AUDIENCE: 'changeledger' }).auth,
    ).toMatchObject({
      jwksUrl: jwks.AUTH_JWKS_URL,
      issuer: 'https://idp.example.test/',
      audience: 'changeledger',
    });
  });

  it('AUTH_REVOKED_TOKEN_IDS: token ids, comma-separated, blanks dropped; unset or empty: none', () => {
    expect(loadConfig({ AUTH_REVOKED_TOKEN_IDS: ' a1, ,b2,' }).auth.revokedTokenIds).toEqual(['a1', 'b2']);
    expect(loadConfig({ AUTH_REVOKED_TOKEN_IDS: ' , ' }).auth.revokedTokenIds).toBeUndefined();
    expect(loadConfig({}).auth.revokedTokenIds).toBeUndefined();
  });

  it('an empty HOST, DATA_DIR or MONGODB_DB counts as unset, as every other variable', () => {
    const config = loadConfig({ HOST: '', DATA_DIR: '', MONGODB_DB: '' });
    expect(config.host).toBe('0.0.0.0');
    expect(config.dataDir).toMatch(/[/\\]data$/);
    expect(config.mongodbDb).toBe('changeledger');
  });
  it('METRICS_TOKEN is optional (then a user token reads the metrics), and refused shorter than 32 characters or with white space', () => {
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN: '' }).metricsToken).toBeUndefined();
    expect(loadConfig({ METRICS_TOKEN: 'm'.repeat(32) }).metricsToken).toBe('m'.repeat(32));
    expect(() => loadConfig({ METRICS_TOKEN: 'prometheus' })).toThrow(/METRICS_TOKEN must be at least 32/);
    expect(() => loadConfig({ METRICS_TOKEN: `${'m'.repeat(32)}\n` })).toThrow(
      /METRICS_TOKEN holds white space/,
    );
    expect(() => loadConfig({ METRICS_TOKEN: `${'m'.repeat(16)} ${'m'.repeat(16)}` })).toThrow(/white space/);
  });

  it('CORS_ORIGINS: none unless given; origins as a browser sends them, or * alone', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: '' }).corsOrigins).toEqual([]);
    expect(
      loadConfig({ CORS_ORIGINS: 'https://changes.example.org, http://localhost:5173' }).corsOrigins,
    ).toEqual(['https://changes.example.org', 'http://localhost:5173']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual(['*']);
    for (const bad of [
      'https://changes.example.org/',
      'https://changes.example.org/app',
      'changes.example.org',
      'ftp://x.org',
    ])
      expect(() => loadConfig({ CORS_ORIGINS: bad })).toThrow(/CORS_ORIGINS: ".*" is not an origin/);
    expect(() => loadConfig({ CORS_ORIGINS: '*, https://a.org' })).toThrow(/either \* or a list/);
  });

  describe('WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_EVENTS', () => {
    const secret = 's'.repeat(32);
    it('unset: no webhook; set: the URL, its secret and the event types, if any', () => {
      expect(loadConfig({}).webhook).toBeUndefined();
      expect(
        loadConfig({ WEBHOOK_URL: 'https://hooks.example.test/a?b=c', WEBHOOK_SECRET: secret }).webhook,
      ).toEqual({
        url: 'https://hooks.example.test/a?b=c',
        secret,
      });
      expect(
        loadConfig({
          WEBHOOK_URL: 'http://10.0.0.5:8080/',
          WEBHOOK_SECRET: secret,
          WEBHOOK_EVENTS: ' ChangeApproved, RetrospectiveDecisionRecorded ,',
        }).webhook?.eventTypes,
      ).toEqual(['ChangeApproved', 'RetrospectiveDecisionRecorded']);
    });

    it.each<[string, Record<string, string>, RegExp]>([
      [
        'not a URL',
        { WEBHOOK_URL: 'hooks.example.test', WEBHOOK_SECRET: secret },
        /WEBHOOK_URL must be an http/,
      ],
      [
        'another scheme',
        { WEBHOOK_URL: 'ftp://hooks.example.test/', WEBHOOK_SECRET: secret },
        /WEBHOOK_URL must be/,
      ],
      [
        'no secret',
        { WEBHOOK_URL: 'https://hooks.example.test/' },
        /WEBHOOK_URL needs WEBHOOK_SECRET, at least 32/,
      ],
      [
        'a user and password over plain http to another machine',
        { WEBHOOK_URL: 'http://u:p@hooks.example.test/', WEBHOOK_SECRET: secret },
        /with a user or password must be https/,
      ],
      [
        'a password that is not %-encoded',
        { WEBHOOK_URL: 'https://u:%zz@hooks.example.test/', WEBHOOK_SECRET: secret },
        /not validly %-encoded/,
      ],
      [
        'a short secret',
        { WEBHOOK_URL: 'https://hooks.example.test/', WEBHOOK_SECRET: 's'.repeat(31) },
        /at least 32 characters/,
      ],
      [
        'an event type that does not exist',
        {
          WEBHOOK_URL: 'https://hooks.example.test/',
          WEBHOOK_SECRET: secret,
          WEBHOOK_EVENTS: 'ChangeApproved,ChangeAproved',
        },
        /WEBHOOK_EVENTS names event types that do not exist: ChangeAproved \(they are: ChangeSubmitted, /,
      ],
    ])('refuses %s', (_name, env, message) => {
      expect(() => loadConfig(env)).toThrow(message);
    });

    it('names a secret or an event list given without a URL', () => {
      const env = {
        WEBHOOK_SECRET: secret,
        WEBHOOK_SECRET_PREVIOUS: secret,
        WEBHOOK_EVENTS: 'ChangeApproved',
      };
      expect(ignoredSettings(loadConfig(env), env)).toEqual([
        'WEBHOOK_SECRET is set but not used: WEBHOOK_URL is not set',
        'WEBHOOK_SECRET_PREVIOUS is set but not used: WEBHOOK_URL is not set',
        'WEBHOOK_EVENTS is set but not used: WEBHOOK_URL is not set',
      ]);
    });

    it('WEBHOOK_SECRET_PREVIOUS: the secret being replaced, as long as a secret must be', () => {
      const env = { WEBHOOK_URL: 'https://hooks.example.test/', WEBHOOK_SECRET: secret };
      expect(loadConfig({ ...env, WEBHOOK_SECRET_PREVIOUS: 'p'.repeat(32) }).webhook?.previousSecret).toBe(
        'p'.repeat(32),
      );
      expect(loadConfig(env).webhook).not.toHaveProperty('previousSecret');
      expect(() => loadConfig({ ...env, WEBHOOK_SECRET_PREVIOUS: 'short' })).toThrow(
        /WEBHOOK_SECRET_PREVIOUS must be at least 32 characters/,
      );
    });
  });
});
