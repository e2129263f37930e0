import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Agent, request } from 'undici';
import {
  type EventStore,
  type EventSubscription,
  EventStoreUnavailableError,
  type RecordedEvent,
  StoredEventCorruptError,
} from '@changeledger/event-store';
import { CHECKPOINT_NAME, type WebhookCheckpoints } from './webhook-checkpoints';
import { WebhookSubjects } from './webhook-subjects';
import {
  signWebhook,
  toWebhookPayload,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_STREAM_PREFIXES,
} from './webhook-payload';

export interface WebhookTarget {
  /** The receiver; a user and password in it are sent as HTTP Basic authentication. */
  readonly url: string;
  /** Signs every delivery (HMAC-SHA256), so that the receiver can tell it came from here. */
  readonly secret: string;
  /** While the secret is being replaced: deliveries carry a signature with this one too. */
  readonly previousSecret?: string;
  /** Only events of these types are sent (the others still move the checkpoint on); all when absent. */
  readonly eventTypes?: readonly string[];
}

export interface WebhookDispatcherOptions {
  readonly target: WebhookTarget;
  readonly checkpoints: WebhookCheckpoints;
  /**
   * Which event store this is (`EVENT_STORE`: its positions mean nothing in another): a
   * checkpoint recorded on another one starts again at this log's end.
   */
  readonly log?: string;
  /** How long a receiver may take to answer one delivery. */
  readonly timeoutMs?: number;
  /**
   * How long the lease on delivering lasts unless renewed (every third of it): a process standing
   * by takes over within this of the holder's crash, at once after its stop.
   */
  readonly leaseMs?: number;
  /** The first retry's delay; each next one doubles, up to `retryMaxMs`. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly now?: () => Date;
  readonly logger?: { log(message: string): void; error(message: string): void };
}

export interface WebhookStatus {
  /**
   * Where delivery got: every wanted event up to this log position was accepted by the receiver,
   * or given up by an operator (`webhook:skip`); events of types not wanted were passed over.
   */
  readonly deliveredThrough: string | null;
  readonly lastDeliveredAt: string | null;
  /**
   * Another process with the same `DATA_DIR/webhooks.sqlite` delivers this webhook: this one
   * takes over when that one stops (or, crashed, once its lease runs out).
   */
  readonly standingBy: boolean;
  /**
   * What keeps failing: the event the receiver refuses (later ones wait behind it: order is
   * kept), or, with `eventId` null, reading the log after `position`.
   */
  readonly failing: {
    readonly since: string;
    readonly attempts: number;
    readonly eventId: string | null;
    readonly position: string;
    readonly lastError: string;
  } | null;
}

/** One checkpoint, whatever the URL (a new token in it loses nothing). */
const CHECKPOINT = CHECKPOINT_NAME;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_BASE_MS = 1_000;
const DEFAULT_RETRY_MAX_MS = 5 * 60_000;
/** How long a stop waits for the answer to a delivery under way. */
const STOP_GRACE_MS = 2_000;
/** How often a refused event's wait looks whether an operator skipped it (`npm run webhook:skip`). */
const SKIP_CHECK_MS = 2_000;
/** Positions of skipped events are saved at most this often (a delivery saves at once). */
const SAVE_SKIPPED_AFTER_MS = 1_000;
const DEFAULT_LEASE_MS = 30_000;
/** How often a process standing by looks whether the lease is free, at most. */
const STANDBY_POLL_MAX_MS = 5_000;

/**
 * A Retry-After header in ms from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3);
 * undefined when absent or neither.
 */
export const retryAfterOf = (header: string | string[] | undefined, now: Date): number | undefined => {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
};

/** The part of a receiver's URL that may be shown and logged (its path often holds a token). */
export const webhookTargetOrigin = (url: string): string => new URL(url).origin;

/**
 * Where to POST and how to authenticate: a user and password in the URL travel as a Basic header,
 * never in the URL the HTTP client is given (whose errors may quote it).
 */
const endpointOf = (url: string): { endpoint: string; authorization?: string } => {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return { endpoint: url };
  const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return {
    endpoint: parsed.toString(),
    authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`,
  };
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
  private readonly endpoint: string;
  private readonly authorization: string | undefined;
  private readonly checkpoints: WebhookCheckpoints;
  private readonly timeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly now: () => Date;
  private readonly logger: { log(message: string): void; error(message: string): void };
  private readonly wanted: (type: string) => boolean;
  private readonly secrets: readonly string[];
  private readonly subjects: WebhookSubjects;
  private readonly log: string | undefined;
  /**
   * undici's own client rather than the global fetch, which made the same deliveries at about
   * half the rate in the webhook bench (its WHATWG objects): the dispatcher shares the API's
   * thread. undici's keep-alive default (4 s unless the receiver says otherwise) is kept: a
   * longer one risks a socket the receiver is closing just then.
   */
  private readonly agent: Agent;
  /** Names this dispatcher in the lease: one delivers per checkpoint file. */
  private readonly owner = `${hostname()} pid ${process.pid} ${randomUUID().slice(0, 8)}`;
  private readonly leaseMs: number;

  private position: bigint | undefined;
  /** Holds the lease: delivers (else stands by). */
  private holding = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private saved: bigint | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private subscription: EventSubscription | undefined;
  private inflight: AbortController | undefined;
  private wake: (() => void) | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private lastDeliveredAt: Date | undefined;
  private failing: WebhookStatus['failing'] = null;
  /** An operator moved the checkpoint past a refused event (`npm run webhook:skip`): up to here, nothing is sent. */
  private skippedThrough: bigint | undefined;

  constructor(
    private readonly events: EventStore,
    options: WebhookDispatcherOptions,
  ) {
    this.target = options.target;
    this.origin = webhookTargetOrigin(options.target.url);
    ({ endpoint: this.endpoint, authorization: this.authorization } = endpointOf(options.target.url));
    this.checkpoints = options.checkpoints;
    this.log = options.log;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retryBaseMs = options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.retryMaxMs = options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? { log: () => undefined, error: () => undefined };
    this.secrets = [
      options.target.secret,
      ...(options.target.previousSecret ? [options.target.previousSecret] : []),
    ];
    this.agent = new Agent({ connect: { timeout: this.timeoutMs } });
    this.subjects = new WebhookSubjects(events);
    const types = options.target.eventTypes;
    this.wanted = types && types.length > 0 ? (type) => types.includes(type) : () => true;
  }

  /**
   * Starts delivering where the checkpoint says, or, while another process holding the same
   * checkpoint file delivers, stands by to take over (two would send every event twice, and each
   * would take the other's progress for an operator's skip and give up events it never sent).
   */
  async start(): Promise<void> {
    const holds = this.claimLease();
    if (holds) await this.takeUp();
    else {
      this.logger.log(
        `webhook ${this.origin}: another process delivers it (${this.holderName()}); standing by to take over`,
      );
    }
    if (this.stopping) return;
    this.loop = this.lead(holds);
  }

  /** Delivers while it holds the lease; stands by while another process does. */
  private async lead(takenUp: boolean): Promise<void> {
    let ready = takenUp;
    while (!this.stopping) {
      if (!ready) {
        if (!this.claimLease()) {
          await this.sleep(Math.min(STANDBY_POLL_MAX_MS, this.leaseMs / 6));
          continue;
        }
        this.logger.log(`webhook ${this.origin}: taking over delivery`);
        await this.takeUp();
        if (this.stopping) return;
      }
      ready = false;
      this.renewTimer = setInterval(() => {
        if (this.claimLease()) return;
        // lost (this process stalled past it, or the file could not be written): another may
        // deliver now; this one stops at once and stands by
        this.logger.error(
          `webhook ${this.origin}: lost the lease on delivering (now ${this.holderName()}); standing by`,
        );
        void this.subscription?.close().catch(() => undefined);
        this.wake?.();
      }, this.leaseMs / 3);
      try {
        await this.run();
      } finally {
        clearInterval(this.renewTimer);
      }
    }
  }

  /** Takes or renews the lease; false while another process holds it (or the file fails). */
  private claimLease(): boolean {
    try {
      this.holding = this.checkpoints.claim(CHECKPOINT, this.owner, Date.now(), this.leaseMs);
    } catch (error) {
      this.logger.error(
        `webhook ${this.origin}: could not claim the lease on delivering (${this.describe(error)})`,
      );
      this.holding = false;
    }
    return this.holding;
  }

  private holderName(): string {
    try {
      return this.checkpoints.holder(CHECKPOINT, Date.now()) ?? 'nobody';
    } catch {
      return 'not known';
    }
  }

  /** Delivering, not stopped and holding the lease. */
  private get delivering(): boolean {
    return !this.stopping && this.holding;
  }

  /** Where delivery goes on from: the stored checkpoint (see start). */
  private async takeUp(): Promise<void> {
    const head = await this.events.headPosition();
    if (this.stopping) return; // stopped while it looked
    const stored = this.checkpoints.get(CHECKPOINT);
    const storedLog = this.checkpoints.logOf(CHECKPOINT);
    if (stored !== undefined && this.log && storedLog && storedLog !== this.log) {
      // EVENT_STORE switched: a position of the old log says nothing of this one (SQLite counts
      // events, EventStoreDB bytes), and taken as one it would send most of the history again.
      this.position = head;
      this.checkpoints.reset(CHECKPOINT, head, this.now());
      this.logger.error(
        `webhook ${this.origin}: its checkpoint (position ${stored}) is of another event store (${storedLog}, now ${this.log}): delivering the events after ${head}`,
      );
    } else if (stored === undefined) {
      // A new webhook gets what happens from now on, not years of history
      // (GET /api/v1/audit/events serves that).
      this.position = head;
      this.checkpoints.set(CHECKPOINT, head, this.now());
      this.logger.log(`webhook ${this.origin}: first start, delivering the events after position ${head}`);
    } else if (stored > head) {
      // Another log than the one it was delivering (restored, or EVENT_STORE switched): new events
      // there would sit at positions it takes for delivered. From its end, and said loudly.
      this.position = head;
      this.checkpoints.reset(CHECKPOINT, head, this.now());
      this.logger.error(
        `webhook ${this.origin}: its checkpoint (position ${stored}) is past the end of the event log (${head}): a restored or another log; delivering the events after ${head}`,
      );
    } else {
      this.position = stored;
      this.logger.log(`webhook ${this.origin}: delivering the events after position ${stored}`);
    }
    if (this.log) this.checkpoints.markLog(CHECKPOINT, this.log);
    this.saved = this.position;
    this.skippedThrough = undefined;
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
      const abandon = setTimeout(() => {
        inflight?.abort();
        // an abort does not end a connection still being set up (a receiver that drops packets):
        // destroying the client does
        void this.agent.destroy().catch(() => undefined);
      }, STOP_GRACE_MS);
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
    if (this.holding) {
      try {
        this.checkpoints.release(CHECKPOINT, this.owner);
      } catch {
        // it runs out on its own: a process standing by takes over then
      }
      this.holding = false;
    }
    await this.agent.close().catch(() => undefined);
  }

  status(): WebhookStatus {
    return {
      deliveredThrough: this.position?.toString() ?? null,
      lastDeliveredAt: this.lastDeliveredAt?.toISOString() ?? null,
      standingBy: !this.stopping && !this.holding,
      failing: this.failing,
    };
  }

  private async run(): Promise<void> {
    let readFailures = 0;
    while (this.delivering) {
      let handling: RecordedEvent | undefined; // the event being delivered, while it is
      let recovered: NodeJS.Timeout | undefined;
      try {
        // A log that could not be read and reads again with nothing new after where delivery got
        // is no longer failing once the subscription has stood for a retry's delay, though no
        // event comes through to say so (a quiet night after a dropped subscription); one that
        // drops again within it stays failing, since the first failure. Failing to read the
        // head is another failed read.
        if (this.failing?.eventId === null && (await this.events.headPosition()) <= (this.position ?? 0n)) {
          recovered = setTimeout(
            () => {
              if (this.failing?.eventId !== null) return;
              this.failing = null;
              readFailures = 0;
            },
            this.delayBefore(readFailures + 1),
          );
          recovered.unref();
        }
        const subscription = this.events.subscribeToAll({
          after: this.position,
          streamPrefixes: WEBHOOK_STREAM_PREFIXES,
        });
        this.subscription = subscription;
        try {
          for await (const event of subscription) {
            handling = event;
            if (this.skippedThrough !== undefined && event.position <= this.skippedThrough) {
              this.position = event.position; // the stored checkpoint is already past it
            } else if (this.wanted(event.type)) {
              // a read for its subject that fails throws: counted as a failed read of the log
              const outcome = await this.deliver(event);
              if (outcome === 'stopped') return;
              this.position = event.position;
              if (outcome === 'delivered') this.save();
            } else {
              this.position = event.position;
              this.saveSoon();
            }
            // Only once an event went through does the log count as read again: an event read
            // again and again whose subject cannot be read must keep backing off, and stay failing.
            readFailures = 0;
            handling = undefined;
            if (this.failing?.eventId === null) this.failing = null;
            if (!this.delivering) return;
          }
        } finally {
          await subscription.close().catch(() => undefined);
        }
      } catch (error) {
        clearTimeout(recovered);
        if (!this.delivering) return;
        // A log that cannot be read (a store down, a corrupt row) is retried like a receiver:
        // with a growing delay, and named in the status.
        readFailures++;
        const delay = this.delayBefore(readFailures + 1);
        const reason = `reading the event log: ${this.describe(error)}`;
        // Where it is stuck, when known: the row that does not parse, or the event whose subject
        // could not be read (else where it got to): the position webhook:skip is given.
        const at = error instanceof StoredEventCorruptError ? error.position : handling?.position;
        this.failing = {
          since: this.failing?.eventId === null ? this.failing.since : this.now().toISOString(),
          attempts: readFailures,
          eventId: null,
          position: String(at ?? this.position),
          lastError: reason,
        };
        // (the log, not the public status, may name the event store's server: see describe)
        const detail = error instanceof EventStoreUnavailableError ? ` (${error.message})` : '';
        this.logger.error(
          `webhook ${this.origin}: ${reason}${detail}; reading again in ${delay} ms` +
            (at !== undefined ? ` (to give it up: npm run webhook:skip -- --through ${at})` : ''),
        );
        // As while a receiver refuses: an event the log cannot give (an edited row) is given up
        // by an operator's skip without a restart.
        await this.waitUnlessSkipped(delay, () => this.checkpointMovedPast(at));
      }
    }
  }

  /**
   * Whether the stored checkpoint was moved past where reading the log is stuck (at `at`, when
   * known; else past where it got to): reading goes on after it, and what it passed is not sent.
   */
  private checkpointMovedPast(at: bigint | undefined): boolean {
    const stored = this.storedCheckpoint();
    if (stored === undefined || stored <= (this.position ?? 0n) || (at !== undefined && stored < at))
      return false;
    this.position = stored;
    this.giveUpThrough(
      stored,
      at !== undefined ? `the event at position ${at}` : 'the events the log could not give',
    );
    return true;
  }

  /** The checkpoint stored now (an operator's skip moves it); undefined when it cannot be read. */
  private storedCheckpoint(): bigint | undefined {
    try {
      return this.checkpoints.get(CHECKPOINT);
    } catch (error) {
      this.logger.error(`webhook ${this.origin}: could not read the checkpoint (${this.describe(error)})`);
      return undefined;
    }
  }

  /** What an operator's move of the checkpoint to `stored` passed is not sent from here. */
  private giveUpThrough(stored: bigint, what: string) {
    this.skippedThrough = stored;
    this.saved = this.saved !== undefined && this.saved > stored ? this.saved : stored;
    this.failing = null;
    this.logger.error(
      `webhook ${this.origin}: ${what} given up: the stored checkpoint was moved to ${stored} ` +
        '(by npm run webhook:skip, or another process delivering this webhook); the events up to there are not sent from here',
    );
  }

  /** The wait before attempt `attempt` (2, 3, …): the base, doubling, at most the maximum. */
  private delayBefore(attempt: number): number {
    return Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(attempt - 2, 30));
  }

  /**
   * Whether the receiver accepted the event, an operator skipped it while it was refused (see
   * `skippedByOperator`), or the dispatcher stopped first.
   */
  private async deliver(event: RecordedEvent): Promise<'delivered' | 'skipped' | 'stopped'> {
    // The same bytes on every attempt: only the signature's timestamp changes.
    const body = JSON.stringify(toWebhookPayload(event, await this.subjects.after(event)));
    for (let attempt = 1; this.delivering; attempt++) {
      const refusal = await this.post(event, body, attempt);
      if (refusal === undefined) {
        if (this.failing) {
          this.logger.log(
            `webhook ${this.origin}: ${event.type} at position ${event.position} delivered at attempt ${attempt}`,
          );
        }
        this.failing = null;
        this.lastDeliveredAt = this.now();
        return 'delivered';
      }
      if (!this.delivering) return 'stopped';
      const { error, retryAfterMs } = refusal;
      // A receiver that says when (429 or 503 with Retry-After) is asked again then, within the
      // cap, and never sooner than the first retry's delay ("0" or a past date would loop).
      const delay =
        retryAfterMs !== undefined
          ? Math.max(this.retryBaseMs, Math.min(retryAfterMs, this.retryMaxMs))
          : this.delayBefore(attempt + 1);
      this.failing = {
        since: this.failing?.eventId === event.eventId ? this.failing.since : this.now().toISOString(),
        attempts: attempt,
        eventId: event.eventId,
        position: event.position.toString(),
        lastError: error,
      };
      this.logger.error(
        `webhook ${this.origin}: ${event.type} at position ${event.position} not delivered (attempt ${attempt}: ${error}); ` +
          `trying again in ${delay} ms${retryAfterMs !== undefined ? " (the receiver's Retry-After)" : ''}, later events wait ` +
          `(to give it up: npm run webhook:skip -- --through ${event.position})`,
      );
      if (await this.waitUnlessSkipped(delay, () => this.skippedByOperator(event))) return 'skipped';
    }
    return 'stopped';
  }

  /**
   * Waits `delay` ms before trying again, looking every few seconds meanwhile whether an operator
   * skipped what it waits on (`skipped`): a skip takes effect soon, not after a 5-minute wait.
   * True when one did; false once the delay is over or the dispatcher stops.
   */
  private async waitUnlessSkipped(delay: number, skipped: () => boolean): Promise<boolean> {
    for (const until = performance.now() + delay; this.delivering;) {
      const left = until - performance.now();
      if (left <= 0) return false;
      await this.sleep(Math.min(left, SKIP_CHECK_MS));
      if (skipped()) return true;
    }
    return false;
  }

  /**
   * Whether an operator moved the stored checkpoint to or past `event` while it was refused
   * (`npm run webhook:skip`, in another process): it, and whatever else the move passed, is not
   * sent. Looked at before each retry, so a running service moves on at its next attempt.
   */
  private skippedByOperator(event: RecordedEvent): boolean {
    const stored = this.storedCheckpoint();
    if (stored === undefined || stored < event.position) return false;
    this.giveUpThrough(stored, `${event.type} at position ${event.position}`);
    return true;
  }

  /** One attempt: undefined when the receiver answered 2xx, else why not (and when to ask again, if it said). */
  private async post(
    event: RecordedEvent,
    body: string,
    attempt: number,
  ): Promise<{ error: string; retryAfterMs?: number } | undefined> {
    const controller = new AbortController();
    this.inflight = controller;
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const timestamp = Math.floor(this.now().getTime() / 1000);
      const response = await request(this.endpoint, {
        dispatcher: this.agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'changeledger-webhook/1',
          'changeledger-event-id': event.eventId,
          'changeledger-event-type': event.type,
          'changeledger-delivery-attempt': String(attempt),
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(this.secrets, timestamp, body),
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        body,
        // Not followed (undici's request never does): a redirect is not an acceptance, and the
        // event would go somewhere nobody configured.
        signal: controller.signal,
      });
      await response.body.dump().catch(() => undefined);
      if (response.statusCode >= 200 && response.statusCode < 300) return undefined;
      const retryAfterMs =
        response.statusCode === 429 || response.statusCode === 503
          ? retryAfterOf(response.headers['retry-after'], this.now())
          : undefined;
      return { error: `HTTP ${response.statusCode}`, retryAfterMs };
    } catch (error) {
      if (controller.signal.aborted)
        return { error: this.stopping ? 'stopped' : `no answer within ${this.timeoutMs} ms` };
      return { error: this.describe(error) };
    } finally {
      clearTimeout(timer);
      this.inflight = undefined;
    }
  }

  /**
   * Why something failed, fit for the log and the public health endpoint: the error's code where
   * it has one (ECONNREFUSED, UND_ERR_SOCKET, a TLS error's), else its own message, which the
   * adapters keep free of credentials (not its cause's, which may name them); never the
   * receiver's path or query, which often hold its token. An unavailable event store is said so
   * alone: the adapter's message names its server (EventStoreDB's host, port, the address it
   * could not reach), which the log may show and a public endpoint may not.
   */
  private describe(error: unknown): string {
    if (error instanceof EventStoreUnavailableError) return 'the event store is unavailable';
    const failure = error as { code?: unknown; cause?: { code?: unknown } } | undefined;
    const text =
      typeof failure?.code === 'string'
        ? failure.code
        : typeof failure?.cause?.code === 'string'
          ? failure.cause.code
          : error instanceof Error
            ? error.message
            : String(error);
    let safe = text;
    const url = new URL(this.endpoint);
    for (const secret of [
      this.target.url,
      new URL(this.target.url).href,
      this.endpoint,
      url.pathname + url.search,
    ]) {
      if (secret.length > 1) safe = safe.split(secret).join(this.origin);
    }
    return safe.slice(0, 300);
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
      this.checkpoints.setAsHolder(CHECKPOINT, position, this.now(), this.owner);
      this.saved = position;
    } catch (error) {
      // Not fatal: what was delivered since the last save is sent again after a restart.
      this.logger.error(`webhook ${this.origin}: could not save the checkpoint (${this.describe(error)})`);
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
