import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SqliteEventStore } from '@changeledger/event-store';
import { SqliteReadModelStore } from './adapters/sqlite/sqlite-read-model-store';
import { allProjections, type ProjectionSettings } from './projections';
import { type LiveProjector, Projector } from './projector';

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
  readonly settings: ProjectionSettings;
  /** How often the thread looks for appends it was not told about (another process's). */
  readonly pollIntervalMs?: number;
}

/** Main thread → projector thread. */
export type ToProjectorThread = { readonly kind: 'appended' } | { readonly kind: 'stop' };

/** Projector thread → main thread. */
export type FromProjectorThread =
  | { readonly kind: 'started'; readonly position: bigint }
  | { readonly kind: 'position'; readonly position: bigint }
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
    const projector = new Projector(log, store, allProjections(request.settings), {
      logger: {
        error: (message) => send({ kind: 'log', level: 'error', message }),
        log: (message) => send({ kind: 'log', level: 'log', message }),
      },
      onAdvance: (position) => send({ kind: 'position', position }),
    });
    port.on('message', (message) => {
      if (message.kind === 'appended') log.notifyAppended();
      else if (message.kind === 'stop') {
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
): { eventStoreFile: string; readModelFile: string } | undefined =>
  existsSync(file) &&
  events instanceof SqliteEventStore &&
  store instanceof SqliteReadModelStore &&
  events.file !== ':memory:' &&
  store.file !== ':memory:'
    ? { eventStoreFile: events.file, readModelFile: store.file }
    : undefined;

interface Waiter {
  readonly position: bigint;
  readonly resolve: (reached: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

/** The main thread's handle on a projector thread. */
export class ThreadedProjector implements LiveProjector {
  private applied = 0n;
  private waiters: Waiter[] = [];
  private worker?: Worker;
  private unsubscribe?: () => void;
  private stopping?: Promise<void>;
  private exited = false;

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
    const worker = new Worker(this.file, { workerData: this.request });
    this.worker = worker;
    return new Promise<void>((resolve, rejectStart) => {
      let started = false;
      const reject = (error: Error) => {
        rejectStart(error);
        void worker.terminate();
      };
      worker.on('message', (message: FromProjectorThread) => {
        switch (message.kind) {
          case 'started':
            started = true;
            this.advance(message.position);
            // Woken after every append of this process, not at the thread's next poll.
            this.unsubscribe = this.events.onAppended(() =>
              worker.postMessage({ kind: 'appended' } satisfies ToProjectorThread),
            );
            resolve();
            return;
          case 'position':
            this.advance(message.position);
            return;
          case 'log':
            if (message.level === 'error') this.logger.error(message.message);
            else this.logger.log(message.message);
            return;
          case 'failed': {
            const error = new Error(`projector thread: ${message.message}`);
            if (message.stack) error.stack = message.stack;
            if (started) this.logger.error(error.stack ?? error.message);
            else reject(error);
            return;
          }
          case 'stopped':
            return; // (stop waits for the thread's exit)
        }
      });
      worker.on('error', (error) => {
        if (!started) reject(error);
        else this.logger.error(`projector thread died: ${error.stack ?? error.message}`);
      });
      worker.on('exit', (code) => {
        this.exited = true;
        if (!started) reject(new Error(`projector thread exited (${code}) before it started`));
        else if (!this.stopping) {
          // Nothing is projected from here on: reads with minPosition answer 503 and health
          // shows the lag grow. A bug, not a condition to retry blindly.
          this.logger.error(`projector thread exited (${code}); read models are no longer updated`);
        }
      });
    });
  }

  waitFor(position: bigint, timeoutMs: number): Promise<boolean> {
    if (position <= this.applied) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        position,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Lets the thread finish its batch and close its stores, then ends it. */
  stop(): Promise<void> {
    this.stopping ??= this.stopThread();
    return this.stopping;
  }

  private async stopThread() {
    this.unsubscribe?.();
    const worker = this.worker;
    if (worker && !this.exited) {
      const exited = new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.on('message', (message: FromProjectorThread) => {
          if (message.kind === 'stopped' || message.kind === 'failed') void worker.terminate();
        });
      });
      worker.postMessage({ kind: 'stop' } satisfies ToProjectorThread);
      await exited;
    }
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.waiters = [];
  }

  private advance(position: bigint) {
    if (position <= this.applied) return;
    this.applied = position;
    const reached = this.waiters.filter((w) => w.position <= position);
    if (reached.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.position > position);
    for (const waiter of reached) {
      clearTimeout(waiter.timer);
      waiter.resolve(true);
    }
  }
}
