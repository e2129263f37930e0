import type { EventStore, EventSubscription, RecordedEvent } from '@changeledger/event-store';
import type { WebhookCheckpoints } from './webhook-checkpoints';
import {
  signWebhook,
  toWebhookPayload,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_STREAM_PREFIXES,
} from './webhook-payload';

export interface WebhookTarget {
  readonly url: string;
  /** Signs every delivery (HMAC-SHA256), so that the receiver can tell it came from here. */
  readonly secret: string;
  /** Only events of these types are sent (the others still move the checkpoint on); all when absent. */
  readonly eventTypes?: readonly string[];
}

export interface WebhookDispatcherOptions {
  readonly target: WebhookTarget;
  readonly checkpoints: WebhookCheckpoints;
  /** How long a receiver may take to answer one delivery. */
  readonly timeoutMs?: number;
  /** The first retry's delay; each next one doubles, up to `retryMaxMs`. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly now?: () => Date;
  readonly logger?: { log(message: string): void; error(message: string): void };
}

export interface WebhookStatus {
  /** Where deliveries go: scheme, host and port only (a receiver's path often holds its token). */
  readonly target: string;
  /** Every wanted event up to this log position has been accepted by the receiver. */
  readonly deliveredThrough: string | null;
  readonly lastDeliveredAt: string | null;
  /** The event the receiver keeps refusing (later ones wait behind it: order is kept). */
  readonly failing: {
    readonly since: string;
    readonly attempts: number;
    readonly eventId: string;
    readonly position: string;
    readonly lastError: string;
  } | null;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_BASE_MS = 1_000;
const DEFAULT_RETRY_MAX_MS = 5 * 60_000;
/** How long a stop waits for the answer to a delivery under way. */
const STOP_GRACE_MS = 2_000;
/** Positions of skipped events are saved at most this often (a delivery saves at once). */
const SAVE_SKIPPED_AFTER_MS = 1_000;

/** The part of a receiver's URL that may be shown and logged. */
export const webhookTargetOrigin = (url: string): string => new URL(url).origin;

const describeFailure = (error: unknown): string => {
  // fetch says "fetch failed" and puts the reason (ECONNREFUSED, a TLS error) in `cause`
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
};

/**
 * Sends each event of the log, in order, to one receiver as a signed JSON POST, and keeps a
 * checkpoint of what it accepted: at least once (an event whose answer was lost is sent again,
 * with the same `eventId` to tell it by), never out of order. A receiver that fails or does not
 * answer is retried with a growing delay; later events wait behind the refused one.
 */
export class WebhookDispatcher {
  private readonly target: WebhookTarget;
  private readonly origin: string;
  private readonly checkpoints: WebhookCheckpoints;
  private readonly timeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly now: () => Date;
  private readonly logger: { log(message: string): void; error(message: string): void };
  private readonly wanted: (type: string) => boolean;

  private position: bigint | undefined;
  private saved: bigint | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private subscription: EventSubscription | undefined;
  private inflight: AbortController | undefined;
  private wake: (() => void) | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private lastDeliveredAt: Date | undefined;
  private failing: WebhookStatus['failing'] = null;

  constructor(
    private readonly events: EventStore,
    options: WebhookDispatcherOptions,
  ) {
    this.target = options.target;
    this.origin = webhookTargetOrigin(options.target.url);
    this.checkpoints = options.checkpoints;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retryBaseMs = options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.retryMaxMs = options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? { log: () => undefined, error: () => undefined };
    const types = options.target.eventTypes;
    this.wanted = types && types.length > 0 ? (type) => types.includes(type) : () => true;
  }

  async start(): Promise<void> {
    const stored = this.checkpoints.get(this.target.url);
    if (stored === undefined) {
      // A new receiver gets what happens from now on, not years of history
      // (GET /api/v1/audit/events serves that).
      this.position = await this.events.headPosition();
      this.checkpoints.set(this.target.url, this.position, this.now());
      this.logger.log(
        `webhook ${this.origin}: first start, delivering the events after position ${this.position}`,
      );
    } else {
      this.position = stored;
      this.logger.log(`webhook ${this.origin}: delivering the events after position ${stored}`);
    }
    this.saved = this.position;
    this.loop = this.run();
  }

  /**
   * Stops between deliveries. One under way is given STOP_GRACE_MS to be answered (so that a
   * graceful restart sends nothing twice to a healthy receiver), then abandoned: the next start
   * sends it again.
   */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.wake?.();
      const inflight = this.inflight;
      const abandon = setTimeout(() => inflight?.abort(), STOP_GRACE_MS);
      try {
        await this.subscription?.close().catch(() => undefined);
        await this.loop;
      } finally {
        clearTimeout(abandon);
      }
    }
    await this.loop;
    clearTimeout(this.saveTimer);
    this.save();
  }

  status(): WebhookStatus {
    return {
      target: this.origin,
      deliveredThrough: this.position?.toString() ?? null,
      lastDeliveredAt: this.lastDeliveredAt?.toISOString() ?? null,
      failing: this.failing,
    };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const subscription = this.events.subscribeToAll({
          after: this.position,
          streamPrefixes: WEBHOOK_STREAM_PREFIXES,
        });
        this.subscription = subscription;
        try {
          for await (const event of subscription) {
            if (this.wanted(event.type)) {
              if (!(await this.deliver(event))) return;
              this.position = event.position;
              this.save();
            } else {
              this.position = event.position;
              this.saveSoon();
            }
            if (this.stopping) return;
          }
        } finally {
          await subscription.close().catch(() => undefined);
        }
      } catch (error) {
        if (this.stopping) return;
        this.logger.error(
          `webhook ${this.origin}: reading the event log failed (${describeFailure(error)}); reading again in ${this.retryBaseMs} ms`,
        );
        await this.sleep(this.retryBaseMs);
      }
    }
  }

  /** True once the receiver accepted the event; false when stopped first. */
  private async deliver(event: RecordedEvent): Promise<boolean> {
    // The same bytes on every attempt: only the signature's timestamp changes.
    const body = JSON.stringify(toWebhookPayload(event));
    for (let attempt = 1; !this.stopping; attempt++) {
      const error = await this.post(event, body, attempt);
      if (error === undefined) {
        if (this.failing) {
          this.logger.log(
            `webhook ${this.origin}: ${event.type} at position ${event.position} delivered at attempt ${attempt}`,
          );
        }
        this.failing = null;
        this.lastDeliveredAt = this.now();
        return true;
      }
      if (this.stopping) return false;
      const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
      this.failing = {
        since: this.failing?.since ?? this.now().toISOString(),
        attempts: attempt,
        eventId: event.eventId,
        position: event.position.toString(),
        lastError: error,
      };
      this.logger.error(
        `webhook ${this.origin}: ${event.type} at position ${event.position} not delivered (attempt ${attempt}: ${error}); trying again in ${delay} ms, later events wait`,
      );
      await this.sleep(delay);
    }
    return false;
  }

  /** One attempt: undefined when the receiver answered 2xx, else why not. */
  private async post(event: RecordedEvent, body: string, attempt: number): Promise<string | undefined> {
    const controller = new AbortController();
    this.inflight = controller;
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const timestamp = Math.floor(this.now().getTime() / 1000);
      const response = await fetch(this.target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'changeledger-webhook/1',
          'changeledger-event-id': event.eventId,
          'changeledger-event-type': event.type,
          'changeledger-delivery-attempt': String(attempt),
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(this.target.secret, timestamp, body),
        },
        body,
        // a redirect is not an acceptance: the event would be sent somewhere nobody configured
        redirect: 'manual',
        signal: controller.signal,
      });
      await response.body?.cancel().catch(() => undefined);
      return response.status >= 200 && response.status < 300 ? undefined : `HTTP ${response.status}`;
    } catch (error) {
      if (controller.signal.aborted)
        return this.stopping ? 'stopped' : `no answer within ${this.timeoutMs} ms`;
      return describeFailure(error);
    } finally {
      clearTimeout(timer);
      this.inflight = undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private save(): void {
    const position = this.position;
    if (position === undefined || (this.saved !== undefined && position <= this.saved)) return;
    try {
      this.checkpoints.set(this.target.url, position, this.now());
      this.saved = position;
    } catch (error) {
      // Not fatal: what was delivered since the last save is sent again after a restart.
      this.logger.error(`webhook ${this.origin}: could not save the checkpoint (${describeFailure(error)})`);
    }
  }

  private saveSoon(): void {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, SAVE_SKIPPED_AFTER_MS);
    this.saveTimer.unref();
  }
}
