import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { type Role } from '@changeledger/domain';
import {
  EVENT_STORE,
  type EventStore,
  EventStoreDbEventStore,
  type RecordedEvent,
} from '@changeledger/event-store';
import { InMemoryEventStoreDbClient } from '../../../libs/event-store/src/adapters/eventstoredb/testing/in-memory-eventstoredb-client';
import { type AppConfig, type Clock, loadConfig, signToken } from '@changeledger/platform';
import { PROJECTOR_CHECKPOINT, READ_MODEL_STORE, type ReadModelStore } from '@changeledger/read-models';
import { createApp } from '../../../apps/api/src/create-app';
import { builtFile, isBuildCurrent } from '../../support/built';

export interface TestUser {
  readonly sub: string;
  readonly name: string;
  readonly roles: readonly Role[];
}

export const USERS = {
  requester: { sub: 'u-rita', name: 'Rita Requester', roles: ['requester'] },
  otherRequester: { sub: 'u-otto', name: 'Otto Requester', roles: ['requester'] },
  technical: { sub: 'u-tess', name: 'Tess Technical', roles: ['technical-reviewer'] },
  business: { sub: 'u-bob', name: 'Bob Business', roles: ['business-reviewer'] },
  security: { sub: 'u-sam', name: 'Sam Security', roles: ['security-reviewer'] },
  lead: { sub: 'u-lena', name: 'Lena Lead', roles: ['infrastructure-lead'] },
  manager: { sub: 'u-max', name: 'Max Manager', roles: ['management'] },
  implementer: { sub: 'u-ivan', name: 'Ivan Implementer', roles: ['implementer'] },
  auditor: { sub: 'u-ada', name: 'Ada Auditor', roles: ['auditor'] },
  leadImplementer: { sub: 'u-lia', name: 'Lia LeadImpl', roles: ['infrastructure-lead', 'implementer'] },
} as const satisfies Record<string, TestUser>;

export interface HttpResult<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export interface RequestOptions {
  readonly as?: TestUser | null;
  readonly body?: unknown;
  /** Sent as is (for malformed JSON tests). */
  readonly rawBody?: string;
  readonly headers?: Record<string, string>;
  /** GETs add `minPosition` of the newest command answer unless this is false. */
  readonly readYourWrites?: boolean;
}

/**
 * The built projector thread: the e2e suites run the API from TypeScript sources, where the
 * projector would run on the main thread; with this they project as the embedded default does,
 * in a worker thread (with `npm test`, which builds first). MongoDB read models project on the
 * main thread anyway.
 */
export const BUILT_PROJECTOR_WORKER = builtFile('libs/read-models/src/projector.worker.js');
/**
 * The built thread, when the last build is not older than the sources (`isBuildCurrent`): else
 * undefined, and the projector runs on the main thread (the API runs from today's sources; the
 * thread would run yesterday's).
 */
export const projectorWorkerFile = (() => {
  const built = existsSync(BUILT_PROJECTOR_WORKER);
  if (built && isBuildCurrent()) return BUILT_PROJECTOR_WORKER;
  // CI builds first: there, projecting on the main thread would hide a build that went wrong
  if (process.env.CI === 'true') throw new Error('e2e: dist/ is missing or older than the sources in CI');
  if (built)
    console.log('e2e: dist/ is older than the sources (run `npm run build`): projecting on the main thread');
  return undefined;
})();

/**
 * The e2e-eventstoredb-double project: the apps keep their events in the EventStoreDB adapter on
 * the in-memory double of its client (no server can be installed where CI runs), in-process, so
 * suites that start other processes on the same stores skip there.
 */
export const onClientDouble = process.env.E2E_EVENT_STORE === 'eventstoredb-double';
/** Whether the apps' events are in EventStoreDB or its double (not a SQLite file to edit). */
export const onEventStoreDb = process.env.E2E_EVENT_STORE === 'eventstoredb' || onClientDouble;

const doubles = new Map<string, InMemoryEventStoreDbClient>();
const QUIET = { warn: () => undefined, error: () => undefined };
const eventStoreOnDouble = (dataDir: string): EventStore => {
  let server = doubles.get(dataDir);
  if (!server) doubles.set(dataDir, (server = new InMemoryEventStoreDbClient()));
  return new EventStoreDbEventStore(server.connection(), { logger: QUIET });
};

/** A real app on a real SQLite file in a temp folder, listening on a free loopback port. */
export class AppHarness {
  private tokens = new Map<string, string>();
  /** The newest position a command answered: reads wait for it, as a careful client would. */
  private lastPosition = 0n;

  private constructor(
    readonly app: NestFastifyApplication,
    readonly baseUrl: string,
    readonly config: AppConfig,
    private readonly dir: string,
    private readonly ownsDir: boolean,
  ) {}

  /** The EventStoreDB client double holding this app's events (e2e-eventstoredb-double only). */
  get clientDouble(): InMemoryEventStoreDbClient | undefined {
    return doubles.get(this.dir);
  }

  static async start(
    env: Record<string, string> = {},
    options: {
      dataDir?: string;
      clock?: Clock;
      /** Another instance's event store (tests of several API instances on one log). */
      openEventStore?: (config: AppConfig) => Promise<EventStore>;
    } = {},
  ): Promise<AppHarness> {
    const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'changeledger-e2e-'));
    const mongo =
      process.env.E2E_READ_MODEL_STORE === 'mongodb'
        ? {
            READ_MODEL_STORE: 'mongodb',
            MONGODB_URL: process.env.MONGODB_URL ?? '',
            MONGODB_DB: `e2e_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`,
          }
        : {};
    const eventstore =
      process.env.E2E_EVENT_STORE === 'eventstoredb'
        ? {
            EVENT_STORE: 'eventstoredb',
            EVENTSTORE_CONNECTION_STRING: process.env.EVENTSTORE_CONNECTION_STRING ?? '',
          }
        : onClientDouble
          ? {
              EVENT_STORE: 'eventstoredb',
              EVENTSTORE_CONNECTION_STRING: 'esdb://client-double:2113?tls=false',
            }
          : {};
    const config = loadConfig({
      ...mongo,
      ...eventstore,
      DATA_DIR: dir,
      AUTH_JWT_SECRET: 'e2e-secret-that-is-long-enough-for-hs256-0123456789',
      LOG_LEVEL: 'error',
      ...env,
    });
    const app = await createApp(config, {
      clock: options.clock,
      projectorWorkerFile,
      // one double per data folder: an app started again on the same folder finds its events
      openEventStore:
        options.openEventStore ?? (onClientDouble ? async () => eventStoreOnDouble(dir) : undefined),
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.getHttpServer().address() as { port: number };
    return new AppHarness(app, `http://127.0.0.1:${address.port}/api/v1`, config, dir, !options.dataDir);
  }

  get dataDir() {
    return this.dir;
  }

  get store(): EventStore {
    return this.app.get<EventStore>(EVENT_STORE);
  }

  get readModels(): ReadModelStore {
    return this.app.get<ReadModelStore>(READ_MODEL_STORE);
  }

  /**
   * Waits until the read models hold the whole log: after a suite wrote hundreds of events at
   * once, FerretDB under CI's load can take longer to project them than a read waits (5 s).
   */
  async readModelsCaughtUp(timeoutMs = 60_000): Promise<void> {
    const head = await this.store.headPosition();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const applied = await this.readModels.checkpoint(PROJECTOR_CHECKPOINT);
      if (applied >= head) return;
      if (Date.now() > deadline)
        throw new Error(`the read models reached ${applied} of ${head} in ${timeoutMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async token(
    user: TestUser,
    options: { issuer?: string; audience?: string; expiresIn?: string; expiresAt?: number } = {},
  ) {
    const cacheKey = `${user.sub}|${user.roles.join(',')}|${JSON.stringify(options)}`;
    let token = this.tokens.get(cacheKey);
    if (!token) {
      token = await signToken(user, this.config.auth.jwtSecret!, {
        issuer: options.issuer ?? this.config.auth.issuer,
        audience: options.audience ?? this.config.auth.audience,
        expiresIn: options.expiresIn,
        expiresAt: options.expiresAt,
      });
      this.tokens.set(cacheKey, token);
    }
    return token;
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    const as = options.as === undefined ? USERS.requester : options.as;
    if (as) headers.authorization ??= `Bearer ${await this.token(as)}`;
    let body: string | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    let url = `${this.baseUrl}${path}`;
    if (
      method === 'GET' &&
      options.readYourWrites !== false &&
      this.lastPosition > 0n &&
      !/[?&]minPosition=/.test(path)
    ) {
      url += `${path.includes('?') ? '&' : '?'}minPosition=${this.lastPosition}`;
    }
    const response = await fetch(url, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    const position = (parsed as { position?: unknown } | undefined)?.position;
    if (
      method !== 'GET' &&
      response.status < 300 &&
      typeof position === 'string' &&
      BigInt(position) > this.lastPosition
    ) {
      this.lastPosition = BigInt(position);
    }
    return { status: response.status, body: parsed as T, headers: response.headers };
  }

  post<T = Record<string, unknown>>(
    path: string,
    body: unknown,
    as: TestUser | null = USERS.requester,
    headers?: Record<string, string>,
  ) {
    return this.request<T>('POST', path, { body, as, headers });
  }

  get<T = Record<string, unknown>>(path: string, as: TestUser | null = USERS.requester) {
    return this.request<T>('GET', path, { as });
  }

  async eventsOf(changeId: string): Promise<RecordedEvent[]> {
    return this.store.readStream(`changeRequest-${changeId}`);
  }

  /** How many events the log holds (positions need not be dense: EventStoreDB's are offsets). */
  async eventCount(): Promise<number> {
    return (await this.store.readAll({ after: 0n, limit: 100_000 })).length;
  }

  async close() {
    await this.app.close();
    if (this.config.readModelStore === 'mongodb') {
      const { MongoClient } = await import('mongodb');
      const client = await MongoClient.connect(this.config.mongodbUrl!);
      await client.db(this.config.mongodbDb).dropDatabase();
      await client.close();
    }
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
