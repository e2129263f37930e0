import type { EventStore, EventSubscription, RecordedEvent } from '@changeledger/event-store';
import { CHANGE_STREAM_PREFIX, type Projection, TEMPLATE_STREAM_PREFIX } from './projections/projection';
import {
  type CheckpointMark,
  type CommitBatch,
  CheckpointMovedError,
  type ReadModelDocument,
  type ReadModelStore,
} from './read-model-store.port';
import { PositionWaiters } from './position-waiters';
import {
  describeStale,
  markOlderWriters,
  recordProjectionVersions,
  settleProjectionVersions,
  staleReadModels,
} from './projection-versions';
import { type ParallelReplay, replayInShards, shardableFiles } from './rebuild-shards';

/**
 * Named after the set of read models: adding one renames it, so an installation upgraded to a
 * new read model replays the log once from the start. Documents already up to date skip every
 * event they have seen (the `_position` guard); the new read model fills up. (A changed
 * `evolve` of an existing read model needs `projections:rebuild` instead.)
 * v2: compliance_facts added; v3: change_schedule added; v4: follow_ups added.
 */
export const PROJECTOR_CHECKPOINT = 'read-models@v4';
export const PROJECTED_STREAM_PREFIXES = [CHANGE_STREAM_PREFIX, TEMPLATE_STREAM_PREFIX];
export const isProjected = (event: RecordedEvent) =>
  PROJECTED_STREAM_PREFIXES.some((p) => event.streamId.startsWith(p));
/** Written by a rebuild into its shadow: a new value each time the read models are swapped. */
export const REBUILD_GENERATION = `${PROJECTOR_CHECKPOINT}:generation`;
/** Written with it: the position the rebuilt models were replayed through. */
export const REBUILT_THROUGH = `${PROJECTOR_CHECKPOINT}:rebuilt-through`;
/**
 * The generation being swapped in: announced in the live models before a swap that is not one
 * transaction (MongoDB renames collections one by one) and equal to the generation once it is
 * done. Live writes expect it unchanged, so none lands while some collections are new and some old.
 */
export const REBUILD_PROMOTING = `${PROJECTOR_CHECKPOINT}:promoting`;
/** The generation a projector finished healing: one that crashed half-way heals again at start. */
export const REBUILD_HEALED = `${PROJECTOR_CHECKPOINT}:healed`;
/**
 * Written by a live projector that saw a swap announced, between two writes: the swap waits for
 * it, so no write begun earlier is still landing when collections move.
 */
export const REBUILD_PAUSED = `${PROJECTOR_CHECKPOINT}:paused-for`;
/** A running projector's heartbeat (its clock, each second, also while a write takes long). */
export const PROJECTOR_ALIVE = `${PROJECTOR_CHECKPOINT}:alive`;
/** How long a projector may retry a failing write (a busy store, a failover) before it is stalled. */
export const STALL_GRACE_MS = 10_000;

/**
 * For an API whose projector runs in another process: since when (ms since the epoch, the
 * projector's clock) it has been stalled, and when it last was not. Stalled while the first is
 * the later. Two checkpoints, because checkpoints only move forward; the projector writes them
 * with its heartbeat, again until they are stored (the failing store may refuse them at first)
 * and, while stalled, every beat (a rebuild's swap replaces the checkpoints).
 */
export const PROJECTOR_STALLED_SINCE = `${PROJECTOR_CHECKPOINT}:stalled-since`;
export const PROJECTOR_RECOVERED_AT = `${PROJECTOR_CHECKPOINT}:recovered-at`;

/** The two stall checkpoints as stored. */
const stallCheckpoints = async (store: ReadModelStore) => {
  const [since, recovered] = await Promise.all([
    store.checkpoint(PROJECTOR_STALLED_SINCE),
    store.checkpoint(PROJECTOR_RECOVERED_AT),
  ]);
  return { since, recovered, stalled: since > recovered };
};

/** Since when a projector in another process has been stalled (ms), from the checkpoints above. */
export const storedStall = async (store: ReadModelStore): Promise<number | undefined> => {
  const { since, stalled } = await stallCheckpoints(store);
  return stalled ? Number(since) : undefined;
};

/** A rebuild holds this many documents in memory (about 100 MB of change requests). */
const REBUILD_DOCUMENTS_IN_MEMORY = 20_000;
/** How often the projector looks for a rebuild swapped in under it. */
const REBUILD_CHECK_MS = 1000;
/** How long a projector waits before looking again at a swap under way, and how often it says so. */
const SWAP_WAIT_MS = 100;
const SWAP_WAIT_LOG_MS = 30_000;
/** An announced swap that sees no heartbeat move for this long goes on: no projector runs. */
const NO_PROJECTOR_AFTER_MS = 5_000;
/** Heartbeat writes on their way at once (beyond the store's write timeout, in beats). */
const MAX_BEATS_IN_FLIGHT = 12;

/** The projector was stopped in the middle of a heal: what is left of it waits for the next start. */
class ProjectorStoppedError extends Error {}

/** A rebuild's swap was announced and is not done: the live projector writes nothing meanwhile. */
export class RebuildSwapInProgressError extends Error {
  constructor(
    readonly generation: bigint,
    message = `the swap of rebuild generation ${generation} is under way`,
  ) {
    super(message);
    this.name = 'RebuildSwapInProgressError';
  }
}

/**
 * A swap announced and still not done after a wait: on MongoDB, most often one whose rebuild
 * died half-way (killed, or a second Ctrl-C), which stays announced until a rebuild completes it.
 */
export class RebuildSwapNotFinishedError extends RebuildSwapInProgressError {
  constructor(generation: bigint, waitedMs: number) {
    super(
      generation,
      `the swap of rebuild generation ${generation} into the read models has not finished for ` +
        `${Math.round(waitedMs / 1000)} s; if no rebuild is running, run projections:rebuild to complete it, then try again`,
    );
    this.name = 'RebuildSwapNotFinishedError';
  }
}

/**
 * The read models have applied the log further than it goes: they belong to a later copy of it
 * or to another log (an older backup restored under them). Its next events would come at
 * positions they count as applied, and be skipped for good: the projector does not start.
 */
export class ReadModelsAheadOfLogError extends Error {
  constructor(
    readonly applied: bigint,
    readonly head: bigint,
  ) {
    super(
      `the read models have applied the event log up to position ${applied}, but it ends at ${head}: they belong to ` +
        'a later or another log (an older copy restored under them?). Start on a fresh DATA_DIR holding the log ' +
        '(README: Backup and restore), or replay them from this log: npm run projections:rebuild',
    );
    this.name = 'ReadModelsAheadOfLogError';
  }
}

export interface ProjectorOptions {
  /** Most events folded into one read-model write while catching up. */
  readonly batchSize?: number;
  readonly logger?: { error(message: string): void; log?(message: string): void };
  /** Called each time the read models include more of the log (a projector thread reports it). */
  readonly onAdvance?: (position: bigint) => void;
  /** Called when writing starts failing (with the time, ms) and when it works again (undefined). */
  readonly onStall?: (since: number | undefined) => void;
  /**
   * Called when its subscription to the log fails (false: waiting to subscribe again, health
   * says `down`) and when it has subscribed again (true): a projector in a thread reports it.
   */
  readonly onFollowing?: (following: boolean) => void;
  /** How long failing writes last before the stall checkpoints say so. Default STALL_GRACE_MS. */
  readonly stallGraceMs?: number;
  /**
   * Live batches start at most once per this many ms while events keep coming: the events of
   * the window are folded into one write instead of one write per wake-up. The first event
   * after a quiet window is written at once, and so is everything up to a position someone
   * waits for (`waitFor`, a `minPosition` read). Default 0: a batch as soon as the log has
   * nothing more.
   */
  readonly batchWindowMs?: number;
}

/** What the API needs of a running projector, in its process or in a worker thread. */
export interface LiveProjector {
  /** The position of the last event applied to the read models. */
  readonly position: bigint;
  /** Projecting now (false while it is being started again, and once stopped): for health. */
  readonly running: boolean;
  /**
   * Since when (ms since the epoch) it has been retrying a batch it cannot write (a projection
   * that throws on an event, a full disk, a store that stays busy), else undefined: for health.
   */
  readonly stalledSince: number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves true once the read models include `position`, false after `timeoutMs`. */
  waitFor(position: bigint, timeoutMs: number): Promise<boolean>;
}

/**
 * Applies a batch: loads the documents it touches, evolves each with every event whose
 * position is above the document's `_position` (so a replayed event is a no-op), and commits
 * the changed documents together with the checkpoint. Each projection owns its collection.
 */
export const applyBatch = async (
  store: ReadModelStore,
  projections: readonly Projection[],
  events: readonly RecordedEvent[],
  checkpointName = PROJECTOR_CHECKPOINT,
  expect?: CommitBatch['expect'],
): Promise<number> => {
  if (events.length === 0) return 0;
  const width = projections.length;
  const ids = documentIds(projections, events);
  const wanted = projections.map(() => new Set<string>());
  ids.forEach((id, i) => id !== undefined && wanted[i % width].add(id));
  const documents = await loadDocuments(store, projections, wanted);
  // Positions as numbers, and `_position` stamped once per written document, not once per event.
  const positions = documents.map((docs) => {
    const byId = new Map<string, bigint>();
    for (const [id, doc] of docs) byId.set(id, BigInt(doc._position));
    return byId;
  });
  const changed = projections.map(() => new Set<string>());
  for (let e = 0; e < events.length; e++) {
    const event = events[e];
    for (let p = 0; p < width; p++) {
      const id = ids[e * width + p];
      if (id === undefined) continue;
      const applied = positions[p].get(id);
      if (applied !== undefined && applied >= event.position) continue;
      const next = projections[p].evolve(documents[p].get(id), event);
      if (!next) continue;
      documents[p].set(id, next as ReadModelDocument);
      positions[p].set(id, event.position);
      changed[p].add(id);
    }
  }
  await store.commit({
    documents: projections.flatMap((projection, p) =>
      [...changed[p]].map((id) => toWrite(projection, documents[p].get(id)!, positions[p].get(id)!)),
    ),
    checkpoint: { name: checkpointName, position: events[events.length - 1].position },
    expect,
  });
  return events.length;
};

/**
 * A folded document as it is written: finished, stamped with the position of the last event it
 * applied. It is an object evolve (or finish) made for this write, so it is stamped in place.
 */
const toWrite = (projection: Projection, folded: ReadModelDocument, position: bigint) => {
  const document = (projection.finish ? projection.finish(folded) : folded) as {
    _position: string;
  } & ReadModelDocument;
  document._position = position.toString();
  return { collection: projection.collection.name, document };
};

/** ids[e * projections.length + p]: the document of projection p that event e touches. */
const documentIds = (projections: readonly Projection[], events: readonly RecordedEvent[]) => {
  const ids = new Array<string | undefined>(events.length * projections.length);
  for (let e = 0; e < events.length; e++) {
    for (let p = 0; p < projections.length; p++) {
      ids[e * projections.length + p] = projections[p].documentId(events[e]);
    }
  }
  return ids;
};

/** The stored documents of these ids, per projection. */
const loadDocuments = (
  store: Pick<ReadModelStore, 'getMany'>,
  projections: readonly Projection[],
  ids: readonly Set<string>[],
): Promise<Map<string, ReadModelDocument>[]> =>
  Promise.all(
    projections.map((projection, p) =>
      ids[p].size === 0
        ? new Map<string, ReadModelDocument>()
        : store.getMany(projection.collection.name, [...ids[p]]),
    ),
  );

/** Follows the event store's global log and keeps the read models and their checkpoint. */
export class Projector implements LiveProjector {
  private subscription?: EventSubscription;
  private loop?: Promise<void>;
  private applied = 0n;
  private readonly waiters = new PositionWaiters();
  private stopped = false;
  private readonly batchSize: number;
  /** The rebuild generation the documents this projector writes belong to (healed for). */
  private generation = 0n;
  /** The `REBUILD_PROMOTING` value this projector's writes expect; -1 (none) until it has looked. */
  private promoting = -1n;
  private pausedFor = 0n;
  private waitingSince?: number;
  private lastWaitLog = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private rebuildCheck?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private starting?: Promise<void>;
  private beat = 0n;
  /** Heartbeat writes still on their way. */
  private beatsInFlight = 0;
  private following = true;
  private failingSince?: number;
  /** What the stall checkpoints say (as far as this projector stored them), and their last value. */
  private storedStallState: 'stalled' | 'fine' | undefined;
  private lastStallMark = 0n;
  /** The current stall's mark (undefined while not stalled). */
  private stallMark?: bigint;
  private stallWriting?: Promise<void>;
  /** Ends a pause (before subscribing again, or before writing a failed batch again): stop(). */
  private wakeFromPause?: () => void;
  /**
   * The highest position a reader waits for, and until when (performance.now()) one waits:
   * batches up to it are not held (see batchWindowMs). Waits end: a read of a position the log
   * never reaches (a made-up minPosition) must not turn the window off for good.
   */
  private awaited = 0n;
  private awaitedUntil = 0;
  /** Ends a batch's hold early: a reader waits, or stop(). */
  private wakeFromHold?: () => void;

  constructor(
    private readonly events: EventStore,
    private readonly store: ReadModelStore,
    private readonly projections: readonly Projection[],
    private readonly options: ProjectorOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 500;
  }

  /** The position of the last event applied to the read models. */
  get position(): bigint {
    return this.applied;
  }

  get stalledSince(): number | undefined {
    return this.failingSince;
  }

  /** A batch failed to write (`failing`) or went through: for health (the heartbeat stores it). */
  private noteWrite(failing: boolean) {
    if (failing === (this.failingSince !== undefined)) return;
    this.failingSince = failing ? Date.now() : undefined;
    this.options.onStall?.(this.failingSince);
  }

  /**
   * Brings the stall checkpoints in line with this projector, from the heartbeat: stalled once a
   * batch has failed for STALL_GRACE_MS (written again each beat meanwhile), fine otherwise
   * (written until it is stored). Best effort: a store that refuses it is tried next beat.
   */
  private storeStall(now: number) {
    const grace = this.options.stallGraceMs ?? STALL_GRACE_MS;
    const stalled = this.failingSince !== undefined && now - this.failingSince >= grace;
    if (!stalled) this.stallMark = undefined;
    if (!stalled && this.storedStallState === 'fine') return;
    if (this.stallWriting) return; // one write at a time: the next beat looks again
    const next = (at: bigint) =>
      (this.lastStallMark = at > this.lastStallMark ? at : this.lastStallMark + 1n);
    // A stall's mark is taken once, above every earlier mark (also a recovery still being written).
    if (stalled) this.stallMark ??= next(BigInt(this.failingSince!));
    const name = stalled ? PROJECTOR_STALLED_SINCE : PROJECTOR_RECOVERED_AT;
    const mark = stalled ? this.stallMark! : next(BigInt(now));
    this.stallWriting = (async () => {
      // Stored already: written again only if a swap replaced the checkpoints (a read does not
      // take the write lock a busy store may be holding).
      if (stalled && this.storedStallState === 'stalled' && (await this.store.checkpoint(name)) >= mark)
        return;
      await this.store.commit({ documents: [], checkpoint: { name, position: mark } });
      this.storedStallState = stalled ? 'stalled' : 'fine';
    })()
      .catch(() => undefined)
      .finally(() => (this.stallWriting = undefined));
  }

  start(): Promise<void> {
    // kept: a stop that comes during the start (its heal may be writing) waits for it
    this.starting = this.startOnce();
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    await this.store.init(this.projections.map((p) => p.collection));
    // From here on it beats, also through a long heal below: a swap waits while it does.
    this.beat = await this.store.checkpoint(PROJECTOR_ALIVE);
    // A stall an earlier run left stored is that run's: the first beat clears it.
    const stored = await stallCheckpoints(this.store);
    this.lastStallMark = stored.stalled ? stored.since : stored.recovered;
    this.storedStallState = stored.stalled ? 'stalled' : 'fine';
    this.heartbeat = setInterval(() => this.beatOnce(), REBUILD_CHECK_MS);
    this.heartbeat.unref();
    try {
      // A rebuild swapped in while no projector ran, or one whose heal a crash cut short, is
      // healed before the first batch: the generation differs from the one last healed.
      // Models last rebuilt before heals were recorded (no `promoting`, no `healed`): as then, the
      // generation in them counts as healed, rather than re-reading the log since that rebuild.
      const healed = await this.store.checkpoint(REBUILD_HEALED);
      const recorded = healed > 0n || (await this.store.checkpoint(REBUILD_PROMOTING)) > 0n;
      this.generation = recorded ? healed : await this.store.checkpoint(REBUILD_GENERATION);
      this.applied = await this.store.checkpoint(PROJECTOR_CHECKPOINT);
      const head = await this.events.headPosition();
      if (this.applied > head) throw new ReadModelsAheadOfLogError(this.applied, head);
      await settleProjectionVersions(this.store, this.projections, this.applied);
      const stale = await staleReadModels(this.store, this.projections, this.applied);
      if (stale.length > 0) this.options.logger?.error(`projector: ${describeStale(stale)}`);
      await this.healAfterRebuild().catch((error: unknown) => {
        if (!(error instanceof RebuildSwapInProgressError)) throw error;
        this.logWaiting(error); // the batch loop and the idle check try again
      });
      if (this.stopped) {
        clearInterval(this.heartbeat);
        return;
      }
      this.rebuildCheck = setInterval(() => {
        this.exclusive(() => this.healAfterRebuild()).catch((error: unknown) => {
          if (error instanceof RebuildSwapInProgressError) this.logWaiting(error);
          else if (!(error instanceof ProjectorStoppedError))
            this.options.logger?.error(`projector: checking for a rebuild failed: ${String(error)}`);
        });
      }, REBUILD_CHECK_MS);
      this.rebuildCheck.unref();
      this.subscription = this.events.subscribeToAll({
        after: this.applied,
        streamPrefixes: PROJECTED_STREAM_PREFIXES,
      });
    } catch (error) {
      clearInterval(this.heartbeat);
      clearInterval(this.rebuildCheck);
      this.following = false; // a start that failed is not running (health: down)
      throw error;
    }
    this.loop = this.follow().catch((error: unknown) => {
      this.following = false;
      this.options.logger?.error(
        `projector stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    });
  }

  /**
   * False while the event store's subscription is down and the projector waits to subscribe
   * again, and once it stopped: health reports it.
   */
  get running(): boolean {
    return this.following && !this.stopped;
  }

  /**
   * Runs the batch loop; when the subscription fails (the event store unreachable for longer
   * than the adapter's own retries), subscribes again from the last applied position after a
   * pause (1 s, doubling to 30 s; back to 1 s once events flow again), for as long as it runs.
   * Events delivered but not yet written are simply delivered again.
   */
  private async follow(): Promise<void> {
    let failures = 0;
    for (;;) {
      const before = this.applied;
      try {
        await this.run(this.subscription!);
        return; // stopped, or the log ended (a closed store)
      } catch (error) {
        if (this.stopped) return;
        if (this.applied !== before) failures = 0;
        failures += 1;
        if (this.following) this.options.onFollowing?.(false);
        this.following = false;
        const delay = restartPause(failures);
        this.options.logger?.error(
          `projector: the event store subscription failed (${error instanceof Error ? error.message : String(error)}); ` +
            `subscribing again after position ${this.applied} in ${delay} ms`,
        );
        await this.pause(delay);
        if (this.stopped) return;
        await this.subscription?.close().catch(() => undefined);
        if (this.stopped) return; // stop() came while the old one closed: open nothing new
        this.subscription = this.events.subscribeToAll({
          after: this.applied,
          streamPrefixes: PROJECTED_STREAM_PREFIXES,
        });
        this.following = true;
        this.options.onFollowing?.(true);
      }
    }
  }

  /** How long a batch waits for more events before it is written (see batchWindowMs); 0: now. */
  private holdFor(lastBatchAt: number): number {
    const windowMs = this.options.batchWindowMs ?? 0;
    if (windowMs <= 0 || this.stopped) return 0;
    const now = performance.now();
    if (this.readerWaits(now)) return 0;
    return Math.max(0, windowMs - (now - lastBatchAt));
  }

  /** Whether a reader still waits for a position not yet applied (see `hurry`). */
  private readerWaits(now: number): boolean {
    return this.awaited > this.applied && now < this.awaitedUntil;
  }

  /** Waits `ms`, or until a reader waits for a position (`hurry`) or stop(). */
  private async holdBatch(ms: number): Promise<void> {
    await sleepUnlessWoken(ms, (wake) => (this.wakeFromHold = wake));
    this.wakeFromHold = undefined;
  }

  /**
   * Someone waits up to `timeoutMs` to read `position` (a `minPosition` read, here or through a
   * projector thread): meanwhile the batches up to it are written without waiting out the
   * batch window.
   */
  hurry(position: bigint, timeoutMs: number): void {
    if (position <= this.applied) return;
    const now = performance.now();
    const waiting = this.readerWaits(now); // an earlier wait still on
    this.awaited = waiting && this.awaited > position ? this.awaited : position;
    this.awaitedUntil = Math.max(waiting ? this.awaitedUntil : 0, now + timeoutMs);
    this.wakeFromHold?.();
  }

  /** Waits `ms`, or until stop(). */
  private async pause(ms: number): Promise<void> {
    await sleepUnlessWoken(ms, (wake) => (this.wakeFromPause = wake));
    this.wakeFromPause = undefined;
  }

  /**
   * Outside `exclusive`, so it beats while a long write runs. Always higher than the last beat
   * (checkpoints only move forward): a clock stepping back does not freeze it.
   */
  private beatOnce() {
    this.storeStall(Date.now());
    // Beats of a store that never answers would pile up, each holding a connection of the pool
    // the API's reads share: a few in flight at most. Not one: a beat that takes seconds (a slow
    // majority, up to the store's write timeout) must not stop the heartbeat moving, or a
    // rebuild's swap would take this projector for gone (NO_PROJECTOR_AFTER_MS) and go on.
    if (this.beatsInFlight >= MAX_BEATS_IN_FLIGHT) return;
    const now = BigInt(Date.now());
    this.beat = now > this.beat ? now : this.beat + 1n;
    this.beatsInFlight += 1;
    this.store
      .commit({ documents: [], checkpoint: { name: PROJECTOR_ALIVE, position: this.beat } })
      .catch(() => undefined) // a store that is down shows up in the batch loop
      .finally(() => (this.beatsInFlight -= 1));
  }

  private async run(subscription: EventSubscription): Promise<void> {
    const iterator = subscription[Symbol.asyncIterator]();
    let pending: Promise<IteratorResult<RecordedEvent>> | undefined;
    let batch: RecordedEvent[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const events = batch;
      batch = [];
      // A store that is down (MongoDB failover, disk full) must not end the projector: retry the
      // same batch with backoff; the position guard makes a partly written batch safe to repeat.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.exclusive(() => this.applyLive(events));
          this.noteWrite(false);
          break;
        } catch (error) {
          // Stopping: the batch is left to the next start (the checkpoint is not past it).
          const waiting =
            error instanceof RebuildSwapInProgressError || error instanceof ProjectorStoppedError;
          if (this.stopped && waiting) return;
          if (this.stopped) throw error;
          if (error instanceof RebuildSwapInProgressError) {
            this.logWaiting(error);
            await new Promise((resolve) => setTimeout(resolve, SWAP_WAIT_MS));
            continue;
          }
          const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
          this.noteWrite(true);
          this.options.logger?.error(
            `projector: writing ${events.length} events failed (attempt ${attempt}, retrying in ${delay} ms): ${error instanceof Error ? error.message : String(error)}`,
          );
          await this.pause(delay); // stop() ends it: the batch waits for the next start
          if (this.stopped) return;
        }
      }
    };
    let lastBatchAt = Number.NEGATIVE_INFINITY;
    while (!this.stopped) {
      pending ??= iterator.next();
      // Flush as soon as the log has nothing more right now (once the batch window is over), or
      // the batch is full.
      let next: Awaited<typeof pending> | typeof IDLE;
      try {
        next = batch.length === 0 ? await pending : await Promise.race([pending, nextTurn()]);
      } catch (error) {
        // The log failed at an event (a corrupt row, a read that failed): the events read before
        // it are applied first, so that reads waiting for them are answered; then it is read
        // again from there (see `follow`).
        await flush();
        throw error;
      }
      if (next === IDLE) {
        const hold = this.holdFor(lastBatchAt);
        if (hold > 0) {
          await this.holdBatch(hold);
          continue;
        }
        lastBatchAt = performance.now();
        await flush();
        continue;
      }
      pending = undefined;
      if (next.done) break;
      batch.push(next.value);
      if (batch.length >= this.batchSize) await flush();
    }
    await flush();
  }

  /** One store operation sequence at a time: the batch loop and the rebuild check share the store. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** What a live write expects: no rebuild swap announced or done since this projector looked. */
  private swapGuard(promoting = this.promoting): CommitBatch['expect'] {
    return { name: REBUILD_PROMOTING, position: promoting };
  }

  /**
   * A live batch. A rebuild swapped in since the last one is healed first: a write first would
   * stamp documents with later positions, and the guard would then skip the events the heal has
   * to re-apply. A swap after that check is caught by the commit's expectation: nothing was
   * written (SQLite checks it in the write's transaction; MongoDB before writing), or, on
   * MongoDB, documents loaded before the swap was announced went out whole, to either models.
   * Either way: heal, then apply the batch again (the position guard skips what is there).
   */
  private async applyLive(events: readonly RecordedEvent[]): Promise<void> {
    for (;;) {
      await this.healAfterRebuild(this.applied);
      try {
        await applyBatch(this.store, this.projections, events, PROJECTOR_CHECKPOINT, this.swapGuard());
        break;
      } catch (error) {
        if (!(error instanceof CheckpointMovedError)) throw error;
        if (error.maybeWritten) {
          // MongoDB: some of the batch may have gone into the models swapped in, folded from the
          // ones before; the heal's position guard keeps them. Only a changed projection makes
          // that matter, and that is when a rebuild is run.
          this.options.logger?.error(
            `projector: a rebuild swap began while a batch was being written (${error.message}); some of its documents ` +
              'may be in the rebuilt models as the models before the rebuild had them: if the rebuild was run for a ' +
              'changed projection, run npm run projections:rebuild again',
          );
        } else {
          this.options.logger?.log?.(`projector: a rebuild swap began during a write (${error.message})`);
        }
      }
    }
    this.advance(events[events.length - 1].position);
  }

  /**
   * A rebuild (`projections:rebuild`, maybe in another process) swapped in read models replayed
   * only through the position it last read; what this projector applied after that went into the
   * models it replaced. Re-apply that stretch from the log (the position guard skips what the new
   * models already have), then record the generation as healed. Checked before every batch (two
   * checkpoint reads) and, while idle, every second. While a swap is under way (announced, not
   * done: some collections may be new, some old) nothing is written: it throws
   * `RebuildSwapInProgressError` for the caller to wait.
   */
  private async healAfterRebuild(until: bigint = this.applied): Promise<void> {
    // Runs to the end also while stopping: a write after a swap must follow a heal, and a heal
    // only ends in success, a swap under way, or an error.
    for (;;) {
      const { promoting, generation, swapping } = await rebuildSwapState(this.store);
      if (swapping) {
        // No write of this projector is under way here (one at a time): tell the swap to go on.
        if (this.pausedFor !== promoting) {
          await this.store.commit({
            documents: [],
            checkpoint: { name: REBUILD_PAUSED, position: promoting },
          });
          this.pausedFor = promoting;
        }
        throw new RebuildSwapInProgressError(promoting);
      }
      // Generations only grow: one lower than healed means models replaced under the projector
      // (restored from a backup?); wait for a rebuild or a restart rather than write into them.
      if (generation < this.generation) throw new RebuildSwapInProgressError(generation);
      this.waitingSince = undefined;
      if (generation === this.generation) {
        this.promoting = promoting;
        return;
      }
      // Models a rebuild swapped in record the versions that built them: a projector of an older
      // release (still running through an upgrade) is about to write into them, as at a start.
      await markOlderWriters(this.store, this.projections);
      let after = await this.store.checkpoint(REBUILT_THROUGH);
      let reapplied = 0;
      try {
        while (after < until) {
          // Not healed yet, so no write may follow: the next start heals again.
          if (this.stopped) throw new ProjectorStoppedError();
          const page = await this.events.readAll({ after, limit: this.batchSize });
          if (page.length === 0) break;
          after = page[page.length - 1].position;
          const wanted = page.filter((e) => e.position <= until && isProjected(e));
          if (wanted.length === 0) continue;
          reapplied += await applyBatch(
            this.store,
            this.projections,
            wanted,
            PROJECTOR_CHECKPOINT,
            this.swapGuard(promoting),
          );
        }
        await this.store.commit({
          documents: [],
          checkpoint: { name: REBUILD_HEALED, position: generation },
          expect: this.swapGuard(promoting),
        });
      } catch (error) {
        if (error instanceof CheckpointMovedError) continue; // swapped again: heal from the newer one
        throw error;
      }
      this.generation = generation;
      this.promoting = promoting;
      this.options.logger?.log?.(
        `projector: rebuilt read models swapped in; re-applied ${reapplied} later events`,
      );
      return;
    }
  }

  /** A swap takes moments; one still under way after SWAP_WAIT_LOG_MS is worth an error. */
  private logWaiting(error: RebuildSwapInProgressError) {
    const now = Date.now();
    if (this.waitingSince === undefined) {
      this.waitingSince = now;
      this.lastWaitLog = now;
      this.options.logger?.log?.(`projector: waiting for the swap of rebuild generation ${error.generation}`);
      return;
    }
    if (now - this.lastWaitLog < SWAP_WAIT_LOG_MS) return;
    this.lastWaitLog = now;
    this.options.logger?.error(
      `projector: the swap of rebuild generation ${error.generation} has not finished after ` +
        `${Math.round((now - this.waitingSince) / 1000)} s; nothing is projected meanwhile. If ` +
        '`projections:rebuild` failed while swapping, run it again',
    );
  }

  private advance(position: bigint) {
    this.applied = position;
    this.options.onAdvance?.(position);
    this.waiters.reached(position);
  }

  /** Resolves true once the read models include `position`, false after `timeoutMs`. */
  waitFor(position: bigint, timeoutMs: number): Promise<boolean> {
    if (position <= this.applied) return Promise.resolve(true);
    // stopping or stopped: it will not get there (a wait begun now would outlast cancelAll)
    if (this.stopped) return Promise.resolve(false);
    const reached = this.waiters.wait(position, timeoutMs);
    this.hurry(position, timeoutMs);
    return reached;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.rebuildCheck);
    this.wakeFromPause?.();
    this.wakeFromHold?.(); // the held batch is written before the loop ends
    await this.subscription?.close();
    await this.starting?.catch(() => undefined); // its caller hears how it ended
    await this.loop;
    await this.lock; // a rebuild check under way
    // Beating until the last write is done: a swap announced meanwhile must wait for it, not
    // take this projector for gone after a few silent seconds and move collections under it.
    clearInterval(this.heartbeat);
    this.waiters.cancelAll();
  }
}

export interface RebuildProgress {
  readonly events: number;
  readonly position: bigint;
  readonly head: bigint;
  /** The position the replay started after (a catch-up starts at the read models' checkpoint). */
  readonly from?: bigint;
}

export interface ReplayOptions {
  readonly batchSize?: number;
  readonly onProgress?: (progress: RebuildProgress) => void;
  readonly until?: bigint;
  /**
   * Keep up to this many documents in memory between batches and write each when it leaves
   * (least recently changed first) or at the end, with the checkpoint last: a document whose
   * events are spread over many batches is read and written once instead of once per batch.
   * The checkpoint moves only at the end, so an interrupted replay starts again from the
   * start; what it wrote is skipped by the position guard.
   */
  readonly keepInMemory?: number;
  /**
   * Each write only if this checkpoint still holds this value (see CommitBatch.expect): a
   * catch-up of the live models (not a rebuild's shadow) passes `liveSwapGuard`, so that none of
   * its writes lands in models a rebuild swapped in meanwhile (CheckpointMovedError instead).
   */
  readonly expect?: CommitBatch['expect'];
}

/**
 * Which rebuild generation the live models hold, and the one being swapped in: `swapping` while
 * a swap is announced and not done (MongoDB's is not one step). Both only grow.
 */
export const rebuildSwapState = async (store: ReadModelStore) => {
  const promoting = await store.checkpoint(REBUILD_PROMOTING);
  const generation = await store.checkpoint(REBUILD_GENERATION);
  return { promoting, generation, swapping: promoting > generation };
};

/**
 * What a write into the live models expects: no rebuild swap announced or done since this was
 * read. A swap under way (announced, not done) is waited for, up to `waitMs` (`onWait` is told
 * once when the wait begins), then RebuildSwapNotFinishedError.
 */
export const liveSwapGuard = async (
  live: ReadModelStore,
  waitMs = 60_000,
  onWait?: () => void,
): Promise<NonNullable<CommitBatch['expect']>> => {
  const started = Date.now();
  for (let waiting = false; ; waiting = true) {
    const { promoting, swapping } = await rebuildSwapState(live);
    if (!swapping) return { name: REBUILD_PROMOTING, position: promoting };
    if (Date.now() - started >= waitMs)
      throw new RebuildSwapNotFinishedError(promoting, Date.now() - started);
    if (!waiting) onWait?.();
    await new Promise((resolve) => setTimeout(resolve, SWAP_WAIT_MS));
  }
};

/**
 * Brings the live read models up to the head of the log from this process (a report that
 * must not wait for a projector that may not run), as a live projector would write: guarded
 * against a rebuild's swap. When one comes in between, it catches up on the new models.
 */
export const catchUpLive = async (
  events: EventStore,
  live: ReadModelStore,
  projections: readonly Projection[],
  options: Pick<ReplayOptions, 'onProgress'> & {
    /** How long a swap under way is waited for (liveSwapGuard): 60 s unless given. */
    readonly swapWaitMs?: number;
    readonly onSwapWait?: () => void;
  } = {},
): Promise<number> => {
  // As a projector refuses to start on them: a report from models of another log would be wrong.
  const applied = await live.checkpoint(PROJECTOR_CHECKPOINT);
  const head = await events.headPosition();
  if (applied > head) throw new ReadModelsAheadOfLogError(applied, head);
  for (let attempt = 1; ; attempt++) {
    try {
      const expect = await liveSwapGuard(live, options.swapWaitMs, options.onSwapWait);
      return await replayInto(events, live, projections, { onProgress: options.onProgress, expect });
    } catch (error) {
      if (!(error instanceof CheckpointMovedError) || attempt >= 5) throw error;
    }
  }
};

/**
 * Replays the log from `target`'s checkpoint into `target` in batches, reading ahead while the
 * previous batch is applied. Returns the number of events applied.
 */
export const replayInto = async (
  events: EventStore,
  target: ReadModelStore,
  projections: readonly Projection[],
  options: ReplayOptions = {},
): Promise<number> => {
  // 2,000 events per read and per write transaction: measured fastest at 100,000 changes
  // (5,000 and 20,000 were 5–15 % slower: bigger batches keep more garbage alive per collection).
  const batchSize = options.batchSize ?? 2000;
  if (options.expect && options.keepInMemory) {
    throw new TypeError('replayInto: `expect` guards batch writes; keepInMemory writes otherwise');
  }
  await target.init(projections.map((p) => p.collection));
  const head = options.until ?? (await events.headPosition());
  let after = await target.checkpoint(PROJECTOR_CHECKPOINT);
  const from = after;
  await settleProjectionVersions(target, projections, after);
  const memory = options.keepInMemory
    ? new WriteBehind(target, projections, options.keepInMemory)
    : undefined;
  let applied = 0;
  let last: bigint | undefined;
  let page = events.readAll({ after, limit: batchSize });
  for (;;) {
    const batch = await page;
    if (batch.length === 0) break;
    after = batch[batch.length - 1].position;
    page = events.readAll({ after, limit: batchSize });
    const projected = batch.filter(isProjected);
    if (projected.length > 0) {
      applied += memory
        ? await memory.apply(projected)
        : await applyBatch(target, projections, projected, PROJECTOR_CHECKPOINT, options.expect);
      last = projected[projected.length - 1].position;
    }
    options.onProgress?.({ events: applied, position: after, head, from });
    if (batch.length < batchSize) break;
  }
  await page.catch(() => undefined);
  if (memory && last !== undefined) await memory.flush({ name: PROJECTOR_CHECKPOINT, position: last });
  return applied;
};

/** One projection's document of an id, as a replay holds it. */
interface HeldDocument {
  /** undefined: the document does not exist (yet). */
  document: ReadModelDocument | undefined;
  position: bigint;
  dirty: boolean;
}

/**
 * The documents of a replay kept in memory, in order of their last change (oldest first).
 * With `owns`, only the documents it accepts (one shard of a parallel rebuild; see rebuild-shards).
 * Held by document id, one slot per projection: every event asks about one id in every
 * projection, and a key per (projection, id) pair cost a string per pair and event.
 */
export class WriteBehind {
  private readonly held = new Map<string, (HeldDocument | undefined)[]>();
  /** Documents (slots) held. */
  private size = 0;
  /** Documents written so far. */
  written = 0;

  constructor(
    private readonly store: Pick<ReadModelStore, 'getMany' | 'commit'>,
    private readonly projections: readonly Projection[],
    private readonly capacity: number,
    private readonly owns?: (documentId: string) => boolean,
  ) {}

  async apply(events: readonly RecordedEvent[]): Promise<number> {
    const { projections, held, owns } = this;
    const width = projections.length;
    const ids = documentIds(projections, events);
    if (owns) {
      for (let i = 0; i < ids.length; i++) if (ids[i] !== undefined && !owns(ids[i]!)) ids[i] = undefined;
    }
    const missing = projections.map(() => new Set<string>());
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id !== undefined && held.get(id)?.[i % width] === undefined) missing[i % width].add(id);
    }
    const loaded = await loadDocuments(this.store, projections, missing);
    missing.forEach((looked, p) => {
      for (const id of looked) {
        let slots = held.get(id);
        if (!slots) held.set(id, (slots = new Array<HeldDocument | undefined>(width).fill(undefined)));
        const document = loaded[p].get(id);
        slots[p] = { document, position: document ? BigInt(document._position) : -1n, dirty: false };
        this.size += 1;
      }
    });
    for (let e = 0; e < events.length; e++) {
      const event = events[e];
      let moved: string | undefined;
      for (let p = 0; p < width; p++) {
        const id = ids[e * width + p];
        if (id === undefined) continue;
        const slots = held.get(id)!;
        const current = slots[p]!;
        if (current.position >= event.position) continue;
        const next = projections[p].evolve(current.document, event);
        if (!next) continue;
        current.document = next as ReadModelDocument;
        current.position = event.position;
        current.dirty = true;
        if (id !== moved) {
          held.delete(id); // to the end of the order: changed most recently
          held.set(id, slots);
          moved = id;
        }
      }
    }
    if (this.size > this.capacity) await this.write(this.size - this.capacity);
    return events.length;
  }

  /** Writes everything still held, then the checkpoint. */
  async flush(checkpoint: CheckpointMark): Promise<void> {
    await this.drain();
    await this.store.commit({ documents: [], checkpoint });
  }

  /** Writes everything still held (no checkpoint). */
  async drain(): Promise<void> {
    await this.write(this.size);
  }

  /** Writes (and lets go of) at least `count` documents, those of the least recently changed ids. */
  private async write(count: number) {
    const documents: ReturnType<typeof toWrite>[] = [];
    let released = 0;
    for (const [id, slots] of this.held) {
      if (released >= count) break;
      this.held.delete(id);
      slots.forEach((slot, p) => {
        if (!slot) return;
        released += 1;
        if (slot.dirty) documents.push(toWrite(this.projections[p], slot.document!, slot.position));
      });
    }
    this.size -= released;
    this.written += documents.length;
    // No checkpoint moves here (position 0 never moves one): only `flush` sets it.
    for (let i = 0; i < documents.length; i += 2000) {
      await this.store.commit({
        documents: documents.slice(i, i + 2000),
        checkpoint: { name: PROJECTOR_CHECKPOINT, position: 0n },
      });
    }
  }
}

/**
 * The pause before starting live projection again after its `failures`-th failure in a row (a
 * subscription that failed for good, a projector thread that died): 1 s, doubling up to 30 s.
 */
export const restartPause = (failures: number): number => Math.min(30_000, 1_000 * 2 ** (failures - 1));

/** Waits `ms`, or until the function it hands to `onWake` is called. */
const sleepUnlessWoken = (ms: number, onWake: (wake: () => void) => void) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    onWake(() => {
      clearTimeout(timer);
      resolve();
    });
  });

const IDLE = Symbol('idle');
const nextTurn = () => new Promise<typeof IDLE>((resolve) => setImmediate(() => resolve(IDLE)));

/** Read models replayed into a shadow of the live ones, not yet serving. */
export interface PreparedRebuild {
  /** Events applied, and the log position the replay went through. */
  readonly events: number;
  readonly head: bigint;
  /** The rebuild generation the swap brings (`REBUILD_GENERATION`). */
  readonly generation: bigint;
  /** Swaps the rebuilt models in, in one step; a live projector re-applies what they lack. */
  promote(): Promise<void>;
  discard(): Promise<void>;
}

/**
 * Replays the whole log into a shadow of `live` while `live` keeps serving, and marks it with a
 * new rebuild generation and the position it went through, for live projectors to heal from.
 */
export const prepareRebuild = async (
  events: EventStore,
  live: ReadModelStore,
  projections: readonly Projection[],
  onProgress?: (progress: RebuildProgress) => void,
  parallel?: ParallelReplay,
): Promise<PreparedRebuild> => {
  await live.init(projections.map((p) => p.collection));
  const shadow = await live.createShadow();
  const head = await events.headPosition();
  try {
    const files = shardableFiles(parallel, events, live);
    const applied =
      parallel && files
        ? await replayInShards(shadow, projections, parallel, files, head, {
            onProgress,
            keepInMemory: REBUILD_DOCUMENTS_IN_MEMORY,
          })
        : await replayInto(events, shadow, projections, {
            until: head,
            onProgress,
            keepInMemory: REBUILD_DOCUMENTS_IN_MEMORY,
          });
    // Built by these projections from the first event: no read model of the swap is stale.
    await recordProjectionVersions(shadow, projections);
    // Tell a live projector (maybe in another process) which stretch of the log to re-apply.
    const through = await shadow.checkpoint(PROJECTOR_CHECKPOINT);
    // Generations only grow (a live projector waits while one lower than it healed shows), also
    // when this machine's clock is behind the one that made the last; and above the one the
    // projector last paused for (a withdrawn swap's: its mark stays), or this swap's wait for the
    // pause would pass at once, while a live batch may still be writing.
    const generation = [
      BigInt(Date.now()) * 1000n + BigInt(Math.floor(Math.random() * 1000)),
      (await live.checkpoint(REBUILD_GENERATION)) + 1n,
      (await live.checkpoint(REBUILD_PROMOTING)) + 1n,
      (await live.checkpoint(REBUILD_PAUSED)) + 1n,
    ].reduce((a, b) => (a > b ? a : b));
    for (const [name, position] of [
      [REBUILT_THROUGH, through],
      [REBUILD_PROMOTING, generation],
      [REBUILD_GENERATION, generation],
    ] as const) {
      await shadow.commit({ documents: [], checkpoint: { name, position } });
    }
    return {
      events: applied,
      head,
      generation,
      promote: async () => {
        // (An announcement of this very generation is a promote tried again.)
        const newer =
          (await live.checkpoint(REBUILD_GENERATION)) >= generation ||
          (await live.checkpoint(REBUILD_PROMOTING)) > generation;
        if (newer) {
          throw new Error(
            'another rebuild was swapped in since this one began: run projections:rebuild again',
          );
        }
        await shadow.promote({
          announce: { name: REBUILD_PROMOTING, position: generation },
          acknowledged: () => waitForPause(live, generation),
          lowerFirst: [PROJECTOR_CHECKPOINT],
        });
      },
      discard: () => shadow.discard(),
    };
  } catch (error) {
    await shadow.discard();
    throw error;
  }
};

/**
 * Until the live projector has paused for this swap (it does so between two writes, within a
 * second when idle). While its heartbeat moves it is running, however long its write takes; when
 * the heartbeat has not moved for NO_PROJECTOR_AFTER_MS (five beats), none runs. (Heartbeats are compared with
 * each other, not with this machine's clock.)
 */
const waitForPause = async (live: ReadModelStore, generation: bigint) => {
  let beat = await live.checkpoint(PROJECTOR_ALIVE);
  let beatSeenAt = performance.now(); // a monotonic clock: a stepped wall clock ends no wait
  while ((await live.checkpoint(REBUILD_PAUSED)) < generation) {
    const latest = await live.checkpoint(PROJECTOR_ALIVE);
    if (latest !== beat) [beat, beatSeenAt] = [latest, performance.now()];
    else if (performance.now() - beatSeenAt > NO_PROJECTOR_AFTER_MS) return;
    await new Promise((resolve) => setTimeout(resolve, SWAP_WAIT_MS));
  }
};

/**
 * `projections:rebuild`: replays the whole log into a shadow of `live` while `live` keeps
 * serving, then promotes the shadow. A failure before the swap leaves `live` untouched (on
 * MongoDB, one after the announcement leaves it announced: the next rebuild completes it).
 */
export const rebuildReadModels = async (
  events: EventStore,
  live: ReadModelStore,
  projections: readonly Projection[],
  onProgress?: (progress: RebuildProgress) => void,
  parallel?: ParallelReplay,
  /** Called once the replay is done, as the swap begins (the CLI then finishes it on Ctrl-C). */
  onSwap?: () => void,
): Promise<{ events: number; head: bigint }> => {
  const prepared = await prepareRebuild(events, live, projections, onProgress, parallel);
  onSwap?.();
  try {
    await prepared.promote();
  } catch (error) {
    await prepared.discard();
    throw error;
  }
  return { events: prepared.events, head: prepared.head };
};
