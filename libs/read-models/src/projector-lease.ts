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
  readonly logger?: { error(message: string): void; log?(message: string): void };
}

/**
 * A projector that projects only while it holds the projector lease, and otherwise stands by:
 * several API instances with RUN_PROJECTOR=true, or a new projector process started before the
 * old one stopped (a rolling deploy), then project once between them, not once each, and a
 * standby takes over within the lease's time when the active one stops or dies.
 *
 * The lease is not a fence: an active projector that stalls for longer than its lease (a
 * partition, a long pause) may still write a batch after another took over. On MongoDB that is
 * harmless, as any overlap is (each document is replaced only by one folded further, atomically);
 * the lease is what keeps the overlap rare and short.
 */
export class LeasedProjector implements LiveProjector {
  readonly owner: string;
  private readonly leaseMs: number;
  private active?: LiveProjector;
  private started = false;
  private timer?: NodeJS.Timeout;
  /** The tick under way: ticks never overlap, and stop() waits for one. */
  private ticking: Promise<void> = Promise.resolve();
  /**
   * Stands the active projector down 2/3 of a lease after its last renewal was sent, unless
   * renewed again: a claim that hangs (a store that does not answer) must not keep it projecting
   * once another may have taken the lease.
   */
  private watchdog?: NodeJS.Timeout;
  /** The read models' checkpoint as last read while standing by. */
  private checkpoint = 0n;
  /** The active projector's start (stop() waits for it). */
  private starting: Promise<void> = Promise.resolve();

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

  /** Projecting now: it holds the lease and its projector runs. */
  get leading(): boolean {
    return this.active !== undefined;
  }

  /** Started and waiting for the lease (another process projects meanwhile). */
  get standingBy(): boolean {
    return this.started && this.active === undefined;
  }

  get position(): bigint {
    return this.active?.position ?? this.checkpoint;
  }

  /** Running or standing by: it will project when the active one goes away. */
  get running(): boolean {
    return this.started && (this.active?.running ?? true);
  }

  get stalledSince(): number | undefined {
    return this.active?.stalledSince;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.tick();
    await this.starting; // as a projector's start: projecting once it resolves, if it holds the lease
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    await this.ticking;
    await this.starting;
    const active = this.active;
    if (!active) return;
    this.active = undefined;
    await active.stop();
    // after the last batch: a successor must not start before this one has written it
    await this.lease.releaseProjectorLease(this.owner).catch(() => undefined); // else it runs out
    this.options.logger?.log?.(`projector: ${this.owner} gave up the projector lease`);
  }

  /**
   * While active, as the projector says. Standing by, false at once: the caller reads the
   * checkpoint stored with the read models, which the active projector keeps.
   */
  async waitFor(position: bigint, timeoutMs: number): Promise<boolean> {
    return this.active ? this.active.waitFor(position, timeoutMs) : false;
  }

  private tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.claimOrRenew());
    return this.ticking;
  }

  private async claimOrRenew(): Promise<void> {
    if (!this.started) return;
    const now = Date.now();
    try {
      const state = await this.lease.claimProjectorLease(this.owner, this.leaseMs, now);
      if (state.held) {
        this.armWatchdog(now);
        if (!this.active && this.started) this.becomeActive();
      } else {
        if (this.active) await this.standDown(`${state.owner} holds the projector lease now`);
        this.checkpoint = await this.store.checkpoint(PROJECTOR_CHECKPOINT);
      }
    } catch (error) {
      // the store does not answer: tried again next tick; the watchdog stops projecting in time
      this.options.logger?.error(
        `projector: the projector lease: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      if (this.started) {
        this.timer = setTimeout(() => void this.tick(), Math.max(10, Math.floor(this.leaseMs / 3)));
        this.timer.unref();
      }
    }
  }

  private armWatchdog(renewedAt: number) {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(
      () => {
        if (this.active) void this.standDown('the projector lease could not be renewed in time');
      },
      Math.max(0, renewedAt + (this.leaseMs * 2) / 3 - Date.now()),
    );
    this.watchdog.unref();
  }

  /** Not awaited by the tick: a start that heals a rebuild may take longer than the lease. */
  private becomeActive(): void {
    const projector = this.makeProjector();
    this.active = projector;
    this.options.logger?.log?.(`projector: ${this.owner} holds the projector lease: projecting`);
    this.starting = projector.start().catch(async (error: unknown) => {
      this.options.logger?.error(
        `projector: failed to start: ${error instanceof Error ? error.message : String(error)}`,
      );
      if (this.active !== projector) return;
      this.active = undefined;
      await projector.stop().catch(() => undefined);
      await this.lease.releaseProjectorLease(this.owner).catch(() => undefined);
    });
  }

  private async standDown(reason: string) {
    const active = this.active!;
    this.active = undefined;
    this.options.logger?.error(`projector: ${this.owner} stopped projecting: ${reason}`);
    await this.starting;
    await active.stop();
  }
}
