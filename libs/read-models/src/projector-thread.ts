import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SqliteEventStore } from '@changeledger/event-store';
import { SqliteReadModelStore } from './adapters/sqlite/sqlite-read-model-store';
import { type EmbeddedFiles, embeddedFiles } from './embedded-files';
import { allProjections } from './projections';
import { PositionWaiters } from './position-waiters';
import { type LiveProjector, Projector, restartPause } from './projector';

/**
 * The projector of the embedded default in a worker thread of the API process: folding events
 * and writing read models (about a third of a command's CPU on the main thread) moves to another
 * core. The thread opens both SQLite files itself and runs the ordinary `Projector`, exactly as
 * `npm run start:projector` runs it in a process of its own; the main thread wakes it after each
 * append and hears each position it reaches, for `minPosition` reads and health.
 */
export interface ProjectorThreadRequest {
  readonly eventStoreFile: string;
  readonly readModelFile: string;
  /** How often the thread looks for appends it was not told about (another process's). */
  readonly pollIntervalMs?: number;
  /**
   * Shared with the main thread: 1 while an `appended` message is on its way. The main thread
   * posts one only when it is 0 (a postMessage cost ~0.2 ms of the API thread, and group
   * commits come every few milliseconds); the thread sets it to 0 before it reads, so an append
   * after that posts again and one before it is in what it reads.
   */
  readonly woken?: Int32Array;
  /** The projector's `batchWindowMs`. */
  readonly batchWindowMs?: number;
}

/** Main thread → projector thread. */
export type ToProjectorThread =
  | { readonly kind: 'appended' }
  /** A reader on the main thread waits for `position`: see `Projector.hurry`. */
  | { readonly kind: 'hurry'; readonly position: bigint; readonly timeoutMs: number }
  | { readonly kind: 'stop' };

/** Projector thread → main thread. */
export type FromProjectorThread =
  | { readonly kind: 'started'; readonly position: bigint }
  | { readonly kind: 'position'; readonly position: bigint }
  | { readonly kind: 'stall'; readonly since: number | undefined }
  /** Its subscription to the log failed (false) or was opened again (true). */
  | { readonly kind: 'following'; readonly following: boolean }
  | { readonly kind: 'log'; readonly level: 'error' | 'log'; readonly message: string }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'failed'; readonly message: string; readonly stack?: string };

export interface ProjectorThreadPort {
  postMessage(message: FromProjectorThread): void;
  on(event: 'message', listener: (message: ToProjectorThread) => void): unknown;
}

/** The thread's side: runs a Projector until told to stop. */
export const runProjectorThread = async (
  port: ProjectorThreadPort,
  request: ProjectorThreadRequest,
): Promise<void> => {
  const send = (message: FromProjectorThread) => port.postMessage(message);
  let events: SqliteEventStore | undefined;
  let store: SqliteReadModelStore | undefined;
  const close = async () => {
    await store?.close();
    await events?.close();
  };
  try {
    events = new SqliteEventStore(request.eventStoreFile, { pollIntervalMs: request.pollIntervalMs });
    store = SqliteReadModelStore.open(request.readModelFile);
    const log = events;
    const projector = new Projector(log, store, allProjections(), {
      logger: {
        error: (message) => send({ kind: 'log', level: 'error', message }),
        log: (message) => send({ kind: 'log', level: 'log', message }),
      },
      onAdvance: (position) => send({ kind: 'position', position }),
      onStall: (since) => send({ kind: 'stall', since }),
      onFollowing: (following) => send({ kind: 'following', following }),
      batchWindowMs: request.batchWindowMs,
    });
    port.on('message', (message) => {
      if (message.kind === 'appended') {
        if (request.woken) Atomics.store(request.woken, 0, 0);
        log.notifyAppended();
      } else if (message.kind === 'hurry') {
        projector.hurry(message.position, message.timeoutMs);
      } else if (message.kind === 'stop') {
        void projector
          .stop()
          .then(close)
          .then(
            () => send({ kind: 'stopped' }),
            (error: Error) => send({ kind: 'failed', message: error.message, stack: error.stack }),
          );
      }
    });
    await projector.start();
    send({ kind: 'started', position: projector.position });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    await close().catch(() => undefined);
    send({ kind: 'failed', message: e.message, stack: e.stack });
  }
};

/** The compiled thread entry (next to this file in dist/); absent when running from sources. */
export const PROJECTOR_WORKER_FILE = join(__dirname, 'projector.worker.js');

/**
 * Whether the projector for these stores can run in a thread: both embedded (SQLite files) and
 * the code built (from TypeScript sources it runs in the main thread; the result is the same).
 */
export const projectorThreadFiles = (
  events: unknown,
  store: unknown,
  file = PROJECTOR_WORKER_FILE,
): EmbeddedFiles | undefined => (existsSync(file) ? embeddedFiles(events, store) : undefined);

/** How long `stop` lets the thread finish its batch before it ends the thread. */
const STOP_DEADLINE_MS = 20_000;

/**
 * The main thread's handle on a projector thread. A thread that dies (a bug: the projector
 * retries store errors itself) is logged and started again, from its checkpoint (idempotent);
 * meanwhile `running` is false and `minPosition` reads wait or answer 503.
 */
export class ThreadedProjector implements LiveProjector {
  private applied = 0n;
  /** The highest position the thread was asked to hurry to, and until when (see `waitFor`). */
  private hurried = 0n;
  private hurriedUntil = 0;
  private readonly waiters = new PositionWaiters();
  private worker?: Worker;
  private unsubscribe?: () => void;
  private starting?: Promise<void>;
  private stopping?: Promise<void>;
  /** Deaths since the thread last started: a thread that died is started again after `restartPause`. */
  private restarts = 0;
  private restartTimer?: NodeJS.Timeout;
  private readonly exited = new WeakSet<Worker>();
  /** Whether a thread is up (started, not exited). */
  private threadUp = false;
  /** Whether the thread's projector follows the log: false while its subscription fails. */
  private following = true;

  /** Whether a thread is up and projecting (health: `down` otherwise). */
  get running(): boolean {
    return this.threadUp && this.following;
  }
  /** As the thread's projector reports it (see LiveProjector). */
  stalledSince: number | undefined = undefined;

  constructor(
    /** The main thread's handle on the event store: its appends wake the thread. */
    private readonly events: SqliteEventStore,
    private readonly request: ProjectorThreadRequest,
    private readonly logger: { error(message: string): void; log(message: string): void },
    private readonly file = PROJECTOR_WORKER_FILE,
  ) {}

  get position(): bigint {
    return this.applied;
  }

  start(): Promise<void> {
    this.starting ??= this.startThread();
    return this.starting;
  }

  private startThread(): Promise<void> {
    const woken = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
    this.hurried = 0n; // a thread started again has been asked nothing
    this.hurriedUntil = 0;
    const worker = new Worker(this.file, { workerData: { ...this.request, woken } });
    this.worker = worker;
    // Subscribed before the thread reads anything: an append while it starts still wakes it
    // (messages wait in its port until it listens).
    this.unsubscribe?.();
    this.unsubscribe = this.events.onAppended(() => {
      if (Atomics.exchange(woken, 0, 1) === 0) {
        worker.postMessage({ kind: 'appended' } satisfies ToProjectorThread);
      }
    });
    return new Promise<void>((resolve, rejectStart) => {
      let started = false;
      let failure: Error | undefined;
      worker.on('message', (message: FromProjectorThread) => {
        switch (message.kind) {
          case 'started':
            started = true;
            this.threadUp = true;
            this.restarts = 0;
            this.advance(message.position);
            resolve();
            return;
          case 'position':
            this.advance(message.position);
            return;
          case 'stall':
            this.stalledSince = message.since;
            return;
          case 'following':
            this.following = message.following;
            return;
          case 'log':
            if (message.level === 'error') this.logger.error(message.message);
            else this.logger.log(message.message);
            return;
          case 'failed': {
            failure = new Error(`projector thread: ${message.message}`);
            if (message.stack) failure.stack = message.stack;
            if (started) this.logger.error(failure.stack ?? failure.message);
            else void worker.terminate();
            return;
          }
          case 'stopped':
            return; // (stop waits for the thread's exit)
        }
      });
      worker.on('error', (error) => (failure ??= error));
      worker.on('exit', (code) => {
        this.threadUp = false;
        this.following = true; // a thread started again subscribes afresh
        this.stalledSince = undefined; // a thread started again starts with a clean slate
        this.exited.add(worker);
        if (this.worker === worker) this.unsubscribe?.();
        if (!started) {
          rejectStart(failure ?? new Error(`projector thread exited (${code}) before it started`));
          return;
        }
        if (!this.stopping) this.restartLater(failure?.stack ?? `exit code ${code}`);
      });
    });
  }

  private restartLater(reason: string) {
    this.restarts += 1;
    const delay = restartPause(this.restarts);
    this.logger.error(`projector thread died (${reason}); starting it again in ${delay / 1000} s`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.startThread().catch((error: Error) => {
        if (!this.stopping) this.restartLater(error.message);
      });
    }, delay);
  }

  waitFor(position: bigint, timeoutMs: number): Promise<boolean> {
    if (position <= this.applied) return Promise.resolve(true);
    // stopping or stopped: it will not get there (a wait begun now would outlast cancelAll)
    if (this.stopping) return Promise.resolve(false);
    const reached = this.waiters.wait(position, timeoutMs);
    // Past what the thread was last asked for, or when half the time it was asked for is over:
    // a burst of reads asks once.
    const now = performance.now();
    const fresh = now < this.hurriedUntil - timeoutMs / 2;
    if ((this.request.batchWindowMs ?? 0) > 0 && (position > this.hurried || !fresh)) {
      this.hurried = position > this.hurried || now >= this.hurriedUntil ? position : this.hurried;
      this.hurriedUntil = now + timeoutMs;
      this.worker?.postMessage({ kind: 'hurry', position, timeoutMs } satisfies ToProjectorThread);
    }
    return reached;
  }

  /**
   * Lets the thread finish its batch and close its stores, then ends it; ends it anyway after
   * STOP_DEADLINE_MS (its writes are transactions, and the next start goes on from the checkpoint).
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopThread();
    return this.stopping;
  }

  private async stopThread() {
    clearTimeout(this.restartTimer);
    this.unsubscribe?.();
    await this.starting?.catch(() => undefined);
    const worker = this.worker;
    if (worker && !this.exited.has(worker)) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.on('message', (message: FromProjectorThread) => {
        if (message.kind === 'stopped' || message.kind === 'failed') void worker.terminate();
      });
      const deadline = setTimeout(() => {
        this.logger.error(`projector thread did not stop within ${STOP_DEADLINE_MS / 1000} s; ended it`);
        void worker.terminate();
      }, STOP_DEADLINE_MS);
      worker.postMessage({ kind: 'stop' } satisfies ToProjectorThread);
      await exited;
      clearTimeout(deadline);
    }
    this.threadUp = false;
    this.waiters.cancelAll();
  }

  private advance(position: bigint) {
    if (position <= this.applied) return;
    this.applied = position;
    this.waiters.reached(position);
  }
}
