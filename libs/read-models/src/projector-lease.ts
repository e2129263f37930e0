import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { type LiveProjector, PROJECTOR_CHECKPOINT } from './projector';
import type { ReadModelStore } from './read-model-store.port';

/** How long a projector's lease lasts unless renewed; it is renewed every third of that. */
export const PROJECTOR_LEASE_MS = 15_000;

/** What a claim of the projector lease found: who holds it now, and until when (ms since the epoch). */
export interface ProjectorLeaseState {
  readonly held: boolean;
  readonly owner: string;
  readonly until: number;
}

/**
 * The lease that makes one projector of several on the same read models the active one (a store
 * that several processes share: MongoDB). One holder at a time; a lease not renewed runs out.
 */
export interface ProjectorLeaseStore {
  /**
   * Takes the lease for `owner` if nobody holds it or it has run out, or extends it if `owner`
   * holds it: until `now + ttlMs`. `held` says whether `owner` holds it afterwards.
   */
  claimProjectorLease(owner: string, ttlMs: number, now?: number): Promise<ProjectorLeaseState>;
  /** Gives the lease up if `owner` holds it (a successor need not wait for it to run out). */
  releaseProjectorLease(owner: string): Promise<void>;
}

export const isProjectorLeaseStore = (store: unknown): store is ProjectorLeaseStore =>
  typeof (store as Partial<ProjectorLeaseStore> | null)?.claimProjectorLease === 'function';

/** A lease holder's name that says where it runs (for logs and the lease document). */
export const projectorLeaseOwner = (): string => `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

export interface LeasedProjectorOptions {
  readonly owner?: string;
  readonly leaseMs?: number;
  /**
   * The event store the projector reads, pinged before each claim: a process that cannot reach
   * it claims no lease, and a holder that has not reached it for a whole lease gives the lease up,
   * so that a standby that can reach it takes over (its projector could only wait meanwhile).
   */
  readonly eventLog?: { ping(): Promise<void> };
  readonly logger?: { error(message: string): void; log?(message: string): void };
}

/**
 * A projector that projects only while it holds the projector lease, and otherwise stands by:
 * several API instances with RUN_PROJECTOR=true, or a new projector process started before the
 * old one stopped (a rolling deploy), then project once between them, not once each, and a
 * standby takes over within the lease's time when the active one stops or dies.
 *
 * The lease is not a fence: an active projector held up for longer than its lease (a partition,
 * a long pause) may still write a batch after another took over. On MongoDB that is harmless, as
 * any overlap is (each document is replaced only by one folded further, atomically); the lease is
 * what keeps the overlap rare and short. Expiry is judged by each process's clock: keep them in
 * step (NTP).
 */
export class LeasedProjector implements LiveProjector {
  readonly owner: string;
  private readonly leaseMs: number;
  /** The projector of this process while it holds the lease (also while it starts). */
  private active?: LiveProjector;
  /** `active` once its start() resolved: until then readers go by the stored checkpoint. */
  private ready?: LiveProjector;
  private started = false;
  /** Whether the last claim found this process holding the lease (stop() gives it up). */
  private holding = false;
  /** The last projector it started failed to start (tried again at each renewal meanwhile). */
  private startFailed = false;
  private timer?: NodeJS.Timeout;
  /** The tick under way: ticks never overlap, and stop() waits for one. */
  private ticking: Promise<void> = Promise.resolve();
  /**
   * Stands the active projector down 2/3 of a lease after its last renewal was sent, unless
   * renewed again: a claim that hangs (a store that does not answer) must not keep it projecting
   * once another may have taken the lease.
   */
  private watchdog?: NodeJS.Timeout;
  /** The last stand-down (a new projector starts, and stop() returns, only after it). */
  private standingDown: Promise<void> = Promise.resolve();
  /** The read models' checkpoint as last read while standing by. */
  private checkpoint = 0n;
  /** Resolves once the projector being started has started (or failed to). */
  private whenReady: Promise<void> = Promise.resolve();
  /** Since when (ms since the epoch) pings of the event log have failed, none having answered since. */
  private logLostAt?: number;

  constructor(
    /** A new projector each time this one becomes the active one (a stopped projector stays stopped). */
    private readonly makeProjector: () => LiveProjector,
    private readonly lease: ProjectorLeaseStore,
    private readonly store: Pick<ReadModelStore, 'checkpoint'>,
    private readonly options: LeasedProjectorOptions = {},
  ) {
    this.owner = options.owner ?? projectorLeaseOwner();
    this.leaseMs = options.leaseMs ?? PROJECTOR_LEASE_MS;
  }

  /** Holds the lease and its projector has started: it projects. */
  get leading(): boolean {
    return this.ready !== undefined;
  }

  /** Started and not projecting: another process holds the lease, or this one's projector starts. */
  get standingBy(): boolean {
    return this.started && this.ready === undefined;
  }

  get position(): bigint {
    return this.ready?.position ?? this.checkpoint;
  }

  /**
   * Running, or standing by (it will project when the active one goes away); not while it holds
   * the lease and its projector fails to start, which nobody else can then take over.
   */
  get running(): boolean {
    return this.started && !(this.holding && this.startFailed) && (this.ready?.running ?? true);
  }

  get stalledSince(): number | undefined {
    return this.ready?.stalledSince;
  }

  /** Standing by because it cannot reach the event store (it claims the lease once it can). */
  get waitingForEventStore(): boolean {
    return this.started && !this.holding && this.logLostAt !== undefined;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.tick();
    await this.whenReady; // as a projector's start: projecting once it resolves, if it holds the lease
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.ready = undefined; // from now on readers go by the stored checkpoint
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    await this.ticking;
    if (this.active) await this.standDown();
    await this.standingDown;
    // after the last batch: a successor must not start before this one has written it
    if (this.holding) {
      this.holding = false;
      await this.lease.releaseProjectorLease(this.owner).catch(() => undefined); // else it runs out
      this.options.logger?.log?.(`projector: ${this.owner} gave up the projector lease`);
    }
  }

  /**
   * While projecting, as the projector says. Otherwise false at once: the caller reads the
   * checkpoint stored with the read models, which the projecting one keeps.
   */
  async waitFor(position: bigint, timeoutMs: number): Promise<boolean> {
    return this.ready ? this.ready.waitFor(position, timeoutMs) : false;
  }

  private tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.claimOrRenew());
    return this.ticking;
  }

  private async claimOrRenew(): Promise<void> {
    if (!this.started) return;
    const tickAt = Date.now();
    try {
      if (!(await this.reachesLog(tickAt)) && this.started) {
        // A standby claims no lease it could not use. A holder keeps it through a short outage
        // (its projector subscribes again), and gives it up once a whole lease has passed without
        // the log, or at once if it is not projecting.
        const lostFor = tickAt - this.logLostAt!;
        if (this.holding && (!this.active || lostFor >= this.leaseMs)) {
          await this.giveUp(`it has not reached the event store for ${lostFor} ms`);
        }
        if (!this.holding) {
          this.checkpoint = await this.store.checkpoint(PROJECTOR_CHECKPOINT);
          return;
        }
      }
      if (!this.started) return;
      const sentAt = Date.now();
      const state = await this.lease.claimProjectorLease(this.owner, this.leaseMs, sentAt);
      this.holding = state.held;
      if (state.held) {
        this.armWatchdog(sentAt);
        if (!this.active && this.started) {
          await this.standingDown; // never two projectors of this process at once
          // a slow stand-down may have outlasted this claim's watchdog: the next claim decides
          if (this.started && Date.now() < sentAt + (this.leaseMs * 2) / 3) this.becomeActive();
        }
      } else {
        if (this.active) void this.standDown(`${state.owner} holds the projector lease now`);
        this.checkpoint = await this.store.checkpoint(PROJECTOR_CHECKPOINT);
      }
    } catch (error) {
      // the store does not answer: tried again next tick; the watchdog stops projecting in time
      this.options.logger?.error(
        `projector: the projector lease: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      if (this.started) {
        // ticks a third of a lease apart from start to start, however long a ping or claim takes
        const next = Math.max(10, tickAt + Math.floor(this.leaseMs / 3) - Date.now());
        this.timer = setTimeout(() => void this.tick(), next);
        this.timer.unref();
      }
    }
  }

  /**
   * Whether the event log answers a ping within a sixth of a lease (so that renewals stay well
   * inside the watchdog's time). Logs when it is lost and when it answers again.
   */
  private async reachesLog(now: number): Promise<boolean> {
    const log = this.options.eventLog;
    if (!log) return true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        log.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${Math.floor(this.leaseMs / 6)} ms`)),
            Math.floor(this.leaseMs / 6),
          );
        }),
      ]);
      if (this.logLostAt !== undefined) {
        this.options.logger?.log?.(`projector: ${this.owner} reaches the event store again`);
      }
      this.logLostAt = undefined;
      return true;
    } catch (error) {
      if (this.logLostAt === undefined) {
        this.logLostAt = now;
        this.options.logger?.error(
          `projector: ${this.owner} cannot reach the event store (${error instanceof Error ? error.message : String(error)}): ` +
            (this.holding
              ? `it gives the projector lease up unless it does again within ${this.leaseMs} ms`
              : 'it claims no projector lease until it does'),
        );
      }
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops projecting, then releases the lease (after the last batch, as stop() does). */
  private async giveUp(reason: string): Promise<void> {
    clearTimeout(this.watchdog);
    await this.standDown(reason);
    this.holding = false;
    await this.lease.releaseProjectorLease(this.owner).catch(() => undefined); // else it runs out
    this.options.logger?.log?.(`projector: ${this.owner} gave up the projector lease`);
  }

  private armWatchdog(sentAt: number) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(
      () => {
        if (this.active) void this.standDown('the projector lease could not be renewed in time');
      },
      Math.max(0, sentAt + (this.leaseMs * 2) / 3 - Date.now()),
    );
    this.watchdog.unref();
  }

  /** Not awaited by the tick: a start that heals a rebuild may take longer than the lease. */
  private becomeActive(): void {
    const projector = this.makeProjector();
    this.active = projector;
    this.options.logger?.log?.(`projector: ${this.owner} holds the projector lease: projecting`);
    this.whenReady = projector.start().then(
      () => {
        this.startFailed = false;
        if (this.active === projector && this.started) this.ready = projector;
      },
      (error: unknown) => {
        // a start cut short by a stand-down (a heal stopped) is not a failed one
        if (this.active !== projector) return;
        this.startFailed = true;
        // not awaited: the stand-down waits for this very start to end; the next renewal
        // (holding the lease still) starts a new projector
        void this.standDown(`it failed to start: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
  }

  /**
   * Stops the active projector: stop() first, which also cuts short a start still healing a
   * rebuild (it writes at most the page under way), then waits for that start to end.
   */
  private standDown(reason?: string): Promise<void> {
    const active = this.active;
    if (!active) return this.standingDown;
    this.active = undefined;
    this.ready = undefined;
    if (reason) this.options.logger?.error(`projector: ${this.owner} stopped projecting: ${reason}`);
    const starting = this.whenReady;
    this.standingDown = this.standingDown
      .then(() => active.stop())
      .then(() => starting)
      .catch(() => undefined);
    return this.standingDown;
  }
}
