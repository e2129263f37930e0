import { join } from 'node:path';
import {
  type DynamicModule,
  Inject,
  Module,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { EVENT_STORE, type EventStore, SqliteEventStore } from '@changeledger/event-store';
import {
  APP_CONFIG,
  type AppConfig,
  CLOCK,
  type Clock,
  resolveJwtSecret,
  systemClock,
} from '@changeledger/platform';
import { AggregateLoader } from './application/aggregate-loader';
import { ExecuteDecisionHandler } from './application/execute-decision.handler';
import { GetChangeHandler } from './application/get-change.query';
import { ListStandardTemplatesHandler } from './application/list-standard-templates.query';
import { AuthGuard } from './auth/auth.guard';
import { JWT_VERIFIER, JwtVerifier } from './auth/jwt-verifier';
import { ChangeRequestsController } from './changes/change-requests.controller';
import { HealthController } from './health/health.controller';
import { ProblemDetailsFilter } from './http/problem-details.filter';
import { StrictValidationPipe } from './http/validation.pipe';
import { SqliteIdempotencyStore } from './idempotency/adapters/sqlite-idempotency-store';
import { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './idempotency/idempotency-store.port';
import { StandardTemplatesController } from './templates/standard-templates.controller';

export interface AppModuleOptions {
  readonly config: AppConfig;
  /** Tests pass a fixed clock; production uses the system clock. */
  readonly clock?: Clock;
}

const eventStoreProvider: Provider = {
  provide: EVENT_STORE,
  inject: [APP_CONFIG],
  useFactory: async (config: AppConfig): Promise<EventStore> => {
    if (config.eventStore === 'eventstoredb') {
      const { EventStoreDbEventStore } = await import('@changeledger/event-store');
      return EventStoreDbEventStore.connect(config.eventStoreConnectionString!);
    }
    return new SqliteEventStore(join(config.dataDir, 'events.sqlite'));
  },
};

/** Closes the stores after Nest has stopped taking requests (graceful shutdown). */
class StoreLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(IDEMPOTENCY_STORE) private readonly idempotency: IdempotencyStore,
  ) {}

  async onApplicationShutdown() {
    await this.idempotency.close();
    await this.store.close();
  }
}

@Module({})
export class AppModule {
  static register({ config, clock }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [CqrsModule.forRoot()],
      controllers: [ChangeRequestsController, StandardTemplatesController, HealthController],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: CLOCK, useValue: clock ?? systemClock },
        eventStoreProvider,
        {
          provide: IDEMPOTENCY_STORE,
          inject: [APP_CONFIG],
          useFactory: (c: AppConfig) => new SqliteIdempotencyStore(join(c.dataDir, 'idempotency.sqlite')),
        },
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
            }),
        },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        { provide: APP_PIPE, useClass: StrictValidationPipe },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
        AggregateLoader,
        ExecuteDecisionHandler,
        GetChangeHandler,
        ListStandardTemplatesHandler,
        StoreLifecycle,
      ],
    };
  }
}
