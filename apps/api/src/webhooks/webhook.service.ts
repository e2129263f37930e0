import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { EVENT_STORE, type EventStore } from '@changeledger/event-store';
import { APP_CONFIG, type AppConfig } from '@changeledger/platform';
import {
  WEBHOOK_CHECKPOINTS_FILE,
  WebhookCheckpoints,
  WebhookDispatcher,
  type WebhookStatus,
} from '@changeledger/webhooks';

/**
 * Sends the log's events to WEBHOOK_URL while the API runs. Configure it on one process only:
 * each process that has it delivers every event (receivers tell repeats by `eventId`).
 */
@Injectable()
export class WebhookService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Webhook');
  private checkpoints: WebhookCheckpoints | undefined;
  private dispatcher: WebhookDispatcher | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(EVENT_STORE) private readonly events: EventStore,
  ) {}

  async onApplicationBootstrap() {
    const target = this.config.webhook;
    if (!target) return;
    mkdirSync(this.config.dataDir, { recursive: true, mode: 0o700 }); // see resolveJwtSecret
    this.checkpoints = new WebhookCheckpoints(join(this.config.dataDir, WEBHOOK_CHECKPOINTS_FILE));
    this.dispatcher = new WebhookDispatcher(this.events, {
      target,
      checkpoints: this.checkpoints,
      log: this.config.eventStore,
      logger: { log: (m) => this.logger.log(m), error: (m) => this.logger.error(m) },
    });
    await this.dispatcher.start();
  }

  /** For health: null when no webhook is configured. */
  status(): WebhookStatus | null {
    return this.dispatcher?.status() ?? null;
  }

  /** At shutdown, after the HTTP server closed and before the stores do (see StoreLifecycle). */
  async stop() {
    try {
      await this.dispatcher?.stop();
    } finally {
      this.checkpoints?.close();
    }
  }
}
