import { join } from 'node:path';
import {
  type DynamicModule,
  Inject,
  Module,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { EVENT_STORE, type EventStore } from '@changeledger/event-store';
import { PROJECTOR_WORKER_FILE, READ_MODEL_STORE, type ReadModelStore } from '@changeledger/read-models';
import {
  APP_CONFIG,
  type AppConfig,
  CLOCK,
  type Clock,
  openEventStore,
  openReadModelStore,
  resolveJwtSecret,
  systemClock,
} from '@changeledger/platform';
import { AggregateLoader } from './application/aggregate-loader';
import { AuditController } from './audit/audit.controller';
import { ExecuteDecisionHandler } from './application/execute-decision.handler';
import { FindKeyedChangeSubmissionHandler } from './application/find-keyed-change-submission.query';
import { READ_MODEL_QUERY_HANDLERS } from './read-models/read-model.queries';
import { ReadModelsController } from './read-models/read-models.controller';
import { GetComplianceReportHandler } from './reports/compliance-report.query';
import { ReportsController } from './reports/reports.controller';
import { PROJECTOR_WORKER, ProjectorService, ReadPosition } from './read-models/read-position';
import { AuthGuard } from './auth/auth.guard';
import { JWT_VERIFIER, JwtVerifier } from './auth/jwt-verifier';
import { ChangeRequestsController } from './changes/change-requests.controller';
import { HealthController } from './health/health.controller';
import { HealthService } from './health/health.service';
import { CommandMetrics } from './metrics/command-metrics';
import { MetricsController } from './metrics/metrics.controller';
import { ProblemDetailsFilter } from './http/problem-details.filter';
import { StrictValidationPipe } from './http/validation.pipe';
import { MongoIdempotencyStore } from './idempotency/adapters/mongodb-idempotency-store';
import { SqliteIdempotencyStore } from './idempotency/adapters/sqlite-idempotency-store';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './idempotency/idempotency-store.port';
import { IdempotentCommands } from './idempotency/idempotent-commands';
import { StandardTemplatesController } from './templates/standard-templates.controller';
import { WebhookService } from './webhooks/webhook.service';
import {
  OPENAPI_DOCUMENT,
  OpenApiController,
  type OpenApiDocumentHolder,
} from './openapi/openapi.controller';

export interface AppModuleOptions {
  readonly config: AppConfig;
  /** Tests pass a fixed clock; production uses the system clock. */
  readonly clock?: Clock;
  /**
   * The compiled projector thread entry. By default the one next to the code (absent when
   * running from TypeScript sources: the projector then runs on the main thread); tests that run
   * from sources pass the built one, so that they project as the embedded default does.
   */
  readonly projectorWorkerFile?: string;
  /**
   * Opens the event store instead of the configuration's own (tests: the EventStoreDB adapter on
   * the in-memory double of its client, as no server can be installed where CI runs).
   */
  readonly openEventStore?: (config: AppConfig) => Promise<EventStore>;
}

const eventStoreProvider = (open: (config: AppConfig) => Promise<EventStore>): Provider => ({
  provide: EVENT_STORE,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig) => open(config),
});

const readModelStoreProvider: Provider = {
  provide: READ_MODEL_STORE,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig) => openReadModelStore(config),
};

/**
 * The end of a graceful shutdown, once Nest has closed the HTTP server (its requests in flight
 * answered: reads waiting for minPosition among them, while the projector still runs): the
 * projector and the webhook stop (each finishes its batch or delivery), then the stores close.
 */
class StoreLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(IDEMPOTENCY_STORE) private readonly idempotency: IdempotencyStore,
    @Inject(READ_MODEL_STORE) private readonly readModels: ReadModelStore,
    private readonly projector: ProjectorService,
    private readonly webhooks: WebhookService,
  ) {}

  async onApplicationShutdown() {
    // Each step whatever the others did: a stop that failed must not leave the stores open.
    const failures: unknown[] = [];
    const step = (work: () => Promise<void>) => work().catch((error: unknown) => void failures.push(error));
    await Promise.all([step(() => this.projector.stop()), step(() => this.webhooks.stop())]);
    await step(() => this.idempotency.close());
    await step(() => this.readModels.close());
    await step(() => this.store.close());
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) {
      throw new AggregateError(
        failures,
        `the shutdown failed in ${failures.length} steps: ${failures.map(String).join('; ')}`,
      );
    }
  }
}

export const API_CONTROLLERS = [
  AuditController,
  ChangeRequestsController,
  StandardTemplatesController,
  ReadModelsController,
  ReportsController,
  HealthController,
  MetricsController,
  OpenApiController,
] as const;

@Module({})
export class AppModule {
  static register({
    config,
    clock,
    projectorWorkerFile,
    openEventStore: openGivenEventStore,
  }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [CqrsModule.forRoot()],
      controllers: [...API_CONTROLLERS],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: OPENAPI_DOCUMENT, useValue: {} satisfies OpenApiDocumentHolder },
        { provide: CLOCK, useValue: clock ?? systemClock },
        { provide: PROJECTOR_WORKER, useValue: projectorWorkerFile ?? PROJECTOR_WORKER_FILE },
        eventStoreProvider(openGivenEventStore ?? openEventStore),
        {
          provide: IDEMPOTENCY_STORE,
          inject: [APP_CONFIG],
          // Shared by every API instance where the read models are (MongoDB); the embedded
          // default is one machine's anyway.
          useFactory: async (c: AppConfig): Promise<IdempotencyStore> =>
            c.readModelStore === 'mongodb'
              ? MongoIdempotencyStore.connect(c.mongodbUrl!, c.mongodbDb)
              : new SqliteIdempotencyStore(join(c.dataDir, 'idempotency.sqlite')),
        },
        IdempotentCommands,
        {
          provide: JWT_VERIFIER,
          inject: [APP_CONFIG],
          useFactory: (c: AppConfig) =>
            new JwtVerifier({
              // Behind an identity provider (JWKS) no local secret is generated.
              secret:
                c.auth.jwksUrl && !c.auth.jwtSecret
                  ? undefined
                  : resolveJwtSecret(c.auth.jwtSecret, c.dataDir),
              jwksUrl: c.auth.jwksUrl,
              issuer: c.auth.issuer,
              audience: c.auth.audience,
              maxLifetimeSeconds: c.auth.maxTokenLifetimeSeconds,
              revokedTokenIds: c.auth.revokedTokenIds,
            }),
        },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        { provide: APP_PIPE, useClass: StrictValidationPipe },
        AggregateLoader,
        ExecuteDecisionHandler,
        FindKeyedChangeSubmissionHandler,
        ...READ_MODEL_QUERY_HANDLERS,
        GetComplianceReportHandler,
        ProjectorService,
        ReadPosition,
        WebhookService,
        HealthService,
        CommandMetrics,
        readModelStoreProvider,
        StoreLifecycle,
      ],
    };
  }
}
