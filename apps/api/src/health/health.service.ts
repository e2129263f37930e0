import { Inject, Injectable } from '@nestjs/common';
import { EVENT_STORE, type EventStore } from '@changeledger/event-store';
import {
  allProjections,
  READ_MODEL_STORE,
  type ReadModelStore,
  type StaleReadModel,
  staleReadModels,
} from '@changeledger/read-models';
import type { WebhookStatus } from '@changeledger/webhooks';
import { type ProjectorMode, ProjectorService, ReadPosition } from '../read-models/read-position';
import { WebhookService } from '../webhooks/webhook.service';

/**
 * The fields of a report that could not be read in time (shown as null and [] in the JSON):
 * under a symbol, so the JSON answer leaves it out; the metrics leave those gauges out.
 */
export const UNKNOWN_FIELDS = Symbol('unknown fields');

/** A read that failed or did not answer in time. */
const UNREAD: unique symbol = Symbol('unread');

export interface HealthReport {
  [UNKNOWN_FIELDS]?: ReadonlySet<'projectorStalledSince' | 'staleReadModels'>;
  status: 'ok' | 'degraded';
  eventStore: 'up' | 'down';
  readModels: 'up' | 'down';
  /** How far the read models are behind the log, in log positions (0 = caught up). */
  projectionLag: number | null;
  eventStorePosition: string | null;
  readModelPosition: string | null;
  /**
   * Where the read models are projected: this process's main thread, a worker thread of it,
   * standby (a leased projector here waits while another process holds the projector lease, or
   * while its own starts), elsewhere (RUN_PROJECTOR=false: another process), or down (its
   * thread died and is being started again, or its event-store subscription failed and it waits
   * to subscribe again: degraded).
   */
  projector: ProjectorMode;
  /**
   * Since when the projector has been failing to write the same events (a projection that
   * throws on an event, a full disk, a store that stays busy: its log says which), once that
   * has lasted STALL_GRACE_MS (10 s); null otherwise. The read models stand still meanwhile.
   * Degraded (503) when this process projects; with `projector: elsewhere` or `standby` it is
   * the projecting process that is unwell, not this one, which still takes commands: reported,
   * status ok.
   */
  projectorStalledSince: string | null;
  /**
   * Read models whose documents were written by an older version of their projection (after an
   * upgrade that changed it): served, but with the old meaning until `projections:rebuild`.
   */
  staleReadModels: StaleReadModel[];
  /**
   * The webhook (WEBHOOK_URL) of this process: how far it has delivered, and the event its
   * receiver keeps refusing, if one does (reported, status ok: commands are not held up by it).
   * Null when none is configured here.
   */
  webhook: WebhookStatus | null;
}

/** How long a look at the projection versions is reused (health is polled; they rarely change). */
const STALE_CHECK_MS = 10_000;

/** How long a store may take to answer health's probe before it counts as down. */
const PROBE_TIMEOUT_MS = 3000;

/** What `/health` reports (and `/metrics` renders): the stores, the projector, the webhook. */
@Injectable()
export class HealthService {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(READ_MODEL_STORE) private readonly readModels: ReadModelStore,
    private readonly readPosition: ReadPosition,
    private readonly projectorService: ProjectorService,
    private readonly webhooks: WebhookService,
  ) {}

  private stale: { at: number; models: Promise<StaleReadModel[]> } | undefined;
  private readonly projections = allProjections();

  /** Rejects when they cannot be read (unknown: not kept, asked again next time). */
  private staleModels(applied: bigint): Promise<StaleReadModel[]> {
    const now = performance.now();
    if (!this.stale || now - this.stale.at > STALE_CHECK_MS) {
      const models = staleReadModels(this.readModels, this.projections, applied);
      this.stale = { at: now, models };
      models.catch(() => {
        if (this.stale?.models === models) this.stale = undefined;
      });
    }
    return this.stale.models;
  }

  async report(): Promise<HealthReport> {
    // One deadline for the whole report (one timer), the reads after the probes too: a store may
    // answer a ping and then stop answering. What has not answered by then is down or unknown.
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, PROBE_TIMEOUT_MS);
    });
    const by = <T, F>(read: Promise<T>, fallback: F): Promise<T | F> =>
      Promise.race([read.catch(() => fallback), expired.then(() => fallback)]);
    const up = (probe: Promise<unknown>) =>
      by(
        probe.then(() => 'up' as const),
        'down' as const,
      );
    try {
      const [eventStore, readModels] = await Promise.all([up(this.store.ping()), up(this.readModels.ping())]);
      const [head, applied] = await Promise.all([
        eventStore === 'up' ? by(this.store.headPosition(), null) : null,
        readModels === 'up' ? by(this.readPosition.applied(), null) : null,
      ]);
      const projector = this.projectorService.mode;
      const [staleRead, stalledRead] = await Promise.all([
        applied === null ? UNREAD : by(this.staleModels(applied), UNREAD),
        readModels === 'up' ? by(this.projectorService.stalledSince(), UNREAD) : UNREAD,
      ]);
      const unknownFields = new Set<'projectorStalledSince' | 'staleReadModels'>();
      if (staleRead === UNREAD) unknownFields.add('staleReadModels');
      if (stalledRead === UNREAD) unknownFields.add('projectorStalledSince');
      const stale = staleRead === UNREAD ? [] : (staleRead as Exclude<typeof staleRead, symbol>);
      const stalledSince =
        stalledRead === UNREAD ? undefined : (stalledRead as Exclude<typeof stalledRead, symbol>);
      // a stall of the projector in another process is reported, not this instance's fault
      const stalledHere = stalledSince !== undefined && projector !== 'elsewhere' && projector !== 'standby';
      const status =
        eventStore === 'up' && readModels === 'up' && projector !== 'down' && !stalledHere
          ? 'ok'
          : 'degraded';
      return {
        [UNKNOWN_FIELDS]: unknownFields,
        status,
        eventStore,
        readModels,
        projectionLag:
          head !== null && applied !== null ? Number(head > applied ? head - applied : 0n) : null,
        eventStorePosition: head?.toString() ?? null,
        readModelPosition: applied?.toString() ?? null,
        projector,
        projectorStalledSince: stalledSince !== undefined ? new Date(stalledSince).toISOString() : null,
        staleReadModels: stale,
        webhook: this.webhooks.status(),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}
