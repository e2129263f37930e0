import { Inject, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENT_STORE, type EventStore, type SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  isProjectorLeaseStore,
  LeasedProjector,
  type LiveProjector,
  Projector,
  PROJECTOR_CHECKPOINT,
  projectorThreadFiles,
  READ_MODEL_STORE,
  type ReadModelStore,
  REBUILD_GENERATION,
  SqliteReadModelStore,
  STALL_GRACE_MS,
  storedStall,
  ThreadedProjector,
} from '@changeledger/read-models';
import { APP_CONFIG, type AppConfig, DEFAULT_PROJECTOR_BATCH_WINDOW_MS } from '@changeledger/platform';
import { ProjectionLaggingError } from '../application/application-errors';

export const MIN_POSITION_WAIT_MS = 5000;

/** The file the projector thread runs (see AppModuleOptions.projectorWorkerFile). */
export const PROJECTOR_WORKER = Symbol('PROJECTOR_WORKER');

/** The longest a main-thread projector's write holds the API's thread waiting for the file. */
const MAIN_THREAD_LOCK_WAIT_MS = 250;

/**
 * Where the read models are projected, as health and metrics report it (see `ProjectorService.mode`):
 * `standby` is a leased projector here that does not project: another process holds the lease, or
 * this one's projector is still starting.
 */
export const PROJECTOR_MODES = ['main-thread', 'thread', 'standby', 'elsewhere', 'down'] as const;
export type ProjectorMode = (typeof PROJECTOR_MODES)[number];

/**
 * The projector inside the API process (embedded mode, or RUN_PROJECTOR=true): on the embedded
 * stores in a worker thread of its own (PROJECTOR_THREAD), otherwise on the main thread.
 */
@Injectable()
export class ProjectorService implements OnApplicationBootstrap {
  readonly projector?: LiveProjector;
  private readonly projections;

  constructor(
    @Inject(EVENT_STORE) events: EventStore,
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(PROJECTOR_WORKER) workerFile: string,
  ) {
    this.projections = allProjections();
    if (!config.runProjector) return;
    const logger = new Logger('Projector');
    const files = config.projectorThread ? projectorThreadFiles(events, store, workerFile) : undefined;
    const batchWindowMs = config.projectorBatchWindowMs ?? DEFAULT_PROJECTOR_BATCH_WINDOW_MS;
    if (files) {
      this.projector = new ThreadedProjector(
        events as SqliteEventStore,
        { ...files, batchWindowMs },
        logger,
        workerFile,
      );
      return;
    }
    // On this thread, a held read-model file must not freeze the requests (see the method).
    if (store instanceof SqliteReadModelStore) store.waitForLocksAtMost(MAIN_THREAD_LOCK_WAIT_MS);
    const projector = () => new Projector(events, store, this.projections, { logger, batchWindowMs });
    // Read models that several instances share (MongoDB): one of their projectors projects, the
    // others stand by (see LeasedProjector).
    this.projector = isProjectorLeaseStore(store)
      ? new LeasedProjector(projector, store, store, { logger, eventLog: events })
      : projector();
  }

  async onApplicationBootstrap() {
    // The SQLite adapter answers lists from the collections' settings that `init` records; the
    // queries' handle needs them when no projector on this handle calls it (a projector thread,
    // or RUN_PROJECTOR=false). Not on MongoDB: there `init` changes the schema, which is the
    // projector's job, not every API instance's.
    if (this.store instanceof SqliteReadModelStore && !(this.projector instanceof Projector)) {
      await this.store.init(this.projections.map((p) => p.collection));
    }
    await this.projector?.start();
  }

  /** Where this process projects: for health. */
  get mode(): ProjectorMode {
    if (!this.projector) return 'elsewhere';
    if (!this.projector.running) return 'down';
    if (this.projector instanceof LeasedProjector && this.projector.standingBy) return 'standby';
    return this.projector instanceof ThreadedProjector ? 'thread' : 'main-thread';
  }

  /**
   * The projector that projects in this process now: none elsewhere, nor while a leased one
   * stands by, starts or stops (reads then go by the checkpoint stored with the read models).
   */
  get projecting(): LiveProjector | undefined {
    return this.projector instanceof LeasedProjector && !this.projector.leading ? undefined : this.projector;
  }

  /**
   * Since when (ms) the projector has been stalled: failing to write the same events for
   * STALL_GRACE_MS or more. This process's projector knows; one in another process
   * (RUN_PROJECTOR=false) stores it in the read models' checkpoints once the grace is over.
   */
  async stalledSince(): Promise<number | undefined> {
    if (!this.projecting) return storedStall(this.store);
    const since = this.projecting.stalledSince;
    return since !== undefined && Date.now() - since >= STALL_GRACE_MS ? since : undefined;
  }

  /** At shutdown, after the HTTP server closed and before the stores do (see StoreLifecycle). */
  async stop() {
    await this.projector?.stop();
  }
}

/** Read-your-writes: waits until the read models include a position, or answers 503. */
@Injectable()
export class ReadPosition {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    @Optional() private readonly projectorService?: ProjectorService,
  ) {}

  async applied(): Promise<bigint> {
    return this.projectorService?.projecting?.position ?? (await this.store.checkpoint(PROJECTOR_CHECKPOINT));
  }

  /**
   * Runs `query` once the read models include `minPosition` (see `await`), and again when a
   * rebuild's swap came in between the wait and the end of the query: the swapped-in models may
   * not include the position yet (the projector re-applies what they lack). SQLite swaps in one
   * step, with a new generation; MongoDB first lowers the checkpoint below to where the rebuilt
   * models reach, then moves the collections one by one and marks the generation last. A query
   * that met any moved collection sees either. All within the one wait (5 s).
   */
  async read<T>(
    minPosition: bigint | undefined,
    query: () => Promise<T>,
    waitMs = MIN_POSITION_WAIT_MS,
  ): Promise<T> {
    if (minPosition === undefined) return query();
    const deadline = Date.now() + waitMs;
    for (;;) {
      const generation = await this.store.checkpoint(REBUILD_GENERATION);
      await this.await(minPosition, deadline);
      const result = await query();
      // The checkpoint before the generation: a swap lowers the checkpoint before it moves
      // anything and writes the generation last, and the projector raises the checkpoint again
      // only after that. Read the other way round, a query that met a moved collection could
      // read the old generation, then a checkpoint raised since, and pass.
      if (
        (await this.store.checkpoint(PROJECTOR_CHECKPOINT)) >= minPosition &&
        (await this.store.checkpoint(REBUILD_GENERATION)) === generation
      ) {
        return result;
      }
      if (Date.now() >= deadline) throw this.lagging(minPosition);
    }
  }

  /** Waits until the read models include `minPosition`, by `deadline` (default: 5 s from now). */
  async await(minPosition: bigint | undefined, deadline = Date.now() + MIN_POSITION_WAIT_MS): Promise<void> {
    if (minPosition === undefined) return;
    const projector = this.projectorService?.projecting;
    // This process's projector first (woken as it applies, no polling); false when it timed out
    // or stopped (this process shutting down: answered now, or a client's idle keep-alive
    // connection would hold the server's close). A leased one that stood down meanwhile leaves
    // the rest of the wait to the checkpoint, which another process now keeps.
    const reached = projector
      ? await projector.waitFor(minPosition, Math.max(0, deadline - Date.now()))
      : false;
    if (projector && !reached && this.projectorService?.mode !== 'standby') throw this.lagging(minPosition);
    // ...then the checkpoint stored with the models, which is what a read sees: a rebuild
    // swapped in brings its own, lower one, and until the projector notices the swap (within a
    // second) and applies the rest again, its position runs ahead of the models. Without a
    // projector here (another process projects), this is the only measure.
    // Polled at 20 ms, then less often (up to every 200 ms): about 30 reads of the checkpoint for
    // a position never reached, not 250, since any client can ask for one. After a local
    // projector reached it (waiting out a swap: a second at most) it stays at 20 ms.
    const longestPause = reached ? 20 : 200;
    for (let pause = 20; ; pause = Math.min(pause * 1.5, longestPause)) {
      if ((await this.store.checkpoint(PROJECTOR_CHECKPOINT)) >= minPosition) return;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(pause, left));
    }
    throw this.lagging(minPosition);
  }

  private lagging(minPosition: bigint) {
    return new ProjectionLaggingError(
      `the read models have not reached position ${minPosition} within ${MIN_POSITION_WAIT_MS / 1000} s; retry shortly`,
    );
  }
}
