import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SqliteEventStore } from '@changeledger/event-store';
import { SqliteReadModelStore } from './adapters/sqlite/sqlite-read-model-store';
import { type EmbeddedFiles, embeddedFiles } from './embedded-files';
import { allProjections, type Projection } from './projections';
import { isProjected, PROJECTOR_CHECKPOINT, type RebuildProgress, WriteBehind } from './projector';
import type { ReadModelStore } from './read-model-store.port';

/**
 * A rebuild replayed by several worker threads at once, for the embedded stores (an SQLite
 * event store and SQLite read models; others replay on one thread). Each shard owns the
 * documents whose id hashes to it (all read models of one change land in the same shard),
 * reads the whole log, parses only the events of documents it owns (`readAllDeferred`), and
 * writes its documents into the rebuild's shadow tables over its own connection. So every
 * document is folded by exactly one shard, from all its events, in log order, as a
 * single-threaded replay folds it; the shards share nothing but SQLite's write lock.
 */
export interface ParallelReplay {
  /** Shards (worker threads); below 2 the replay runs on the calling thread. */
  readonly workers: number;
  /** How a shard starts: a worker thread (tests also run shards on their own thread). */
  readonly spawn?: (request: ShardRequest) => ShardHandle;
}

/** What a shard is given (structured-cloned into its worker). */
export interface ShardRequest {
  readonly eventStoreFile: string;
  readonly readModelFile: string;
  readonly shard: number;
  readonly shards: number;
  /** The log position the rebuild replays through (the head when it began). */
  readonly until: bigint;
  readonly batchSize: number;
  readonly keepInMemory: number;
  /** The rebuild's shadow mark: a shard stops writing once another rebuild took the tables. */
  readonly shadowMark?: string;
}

/** Shard → main thread. */
export type ShardMessage =
  | { readonly kind: 'progress'; readonly events: number; readonly position: bigint }
  | {
      readonly kind: 'done';
      readonly events: number;
      readonly last: bigint | undefined;
      /** Document writes. */
      readonly documents: number;
    }
  | { readonly kind: 'failed'; readonly message: string; readonly stack?: string };

/** A shard's end of its channel: a worker's `parentPort`, or a MessagePort in tests. */
export interface ShardPort {
  postMessage(message: ShardMessage): void;
}

/** A started shard, as the main thread sees it. */
export interface ShardHandle {
  onMessage(listener: (message: ShardMessage) => void): void;
  /** Called with an error when the shard dies without saying why (a worker's crash or exit). */
  onCrash(listener: (error: Error) => void): void;
  terminate(): Promise<unknown>;
}

/** FNV-1a of the document id: which shard owns the document (the same in every read model). */
export const shardOf = (documentId: string, shards: number): number => {
  let hash = 0x811c9dc5;
  for (let i = 0; i < documentId.length; i++) {
    hash ^= documentId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
};

/**
 * The files a parallel rebuild of `target` from `events` needs, or undefined when it replays on
 * one thread: fewer than 2 workers, stores other than the embedded ones (or in memory), or no
 * compiled worker to start (running from TypeScript sources: the result is the same, only slower).
 */
export const shardableFiles = (
  parallel: ParallelReplay | undefined,
  events: unknown,
  target: unknown,
): EmbeddedFiles | undefined =>
  parallel && parallel.workers > 1 && (parallel.spawn !== undefined || existsSync(SHARD_WORKER_FILE))
    ? embeddedFiles(events, target)
    : undefined;

/**
 * One shard's replay (in a worker thread; tests run it on this thread): reads the log through
 * `request.until`, folds the documents it owns into the shadow tables, and says `done`.
 * `stopped` is asked between pages (a worker thread is terminated instead).
 */
export const runShard = async (
  port: ShardPort,
  request: ShardRequest,
  stopped: () => boolean = () => false,
): Promise<void> => {
  let events: SqliteEventStore | undefined;
  let store: SqliteReadModelStore | undefined;
  try {
    // read-only, as the CLI's own handle: a rebuild from a copy leaves the copy as it was
    events = new SqliteEventStore(request.eventStoreFile, { readOnly: true });
    const projections = allProjections();
    store = await SqliteReadModelStore.openShadow(
      request.readModelFile,
      projections.map((p) => p.collection),
      request.shadowMark,
    );
    let lastId: string | undefined;
    let lastOwned = false;
    const owns = (id: string) => {
      // the read models of an event mostly ask about the same id in a row
      if (id !== lastId) [lastId, lastOwned] = [id, shardOf(id, request.shards) === request.shard];
      return lastOwned;
    };
    const memory = new WriteBehind(store, projections, request.keepInMemory, owns);
    const log = events;
    const read = (after: bigint) => log.readAllDeferred({ after, limit: request.batchSize });
    let applied = 0;
    let last: bigint | undefined;
    let after = 0n;
    for (;;) {
      if (stopped()) return;
      const batch = await read(after);
      if (batch.length === 0) break;
      after = batch[batch.length - 1].position;
      const projected = batch.filter((e) => e.position <= request.until && isProjected(e));
      if (projected.length > 0) {
        applied += await memory.apply(projected);
        last = projected[projected.length - 1].position;
      }
      const through = after < request.until ? after : request.until;
      port.postMessage({ kind: 'progress', events: applied, position: through });
      if (batch.length < request.batchSize || after >= request.until) break;
    }
    await memory.drain();
    port.postMessage({ kind: 'done', events: applied, last, documents: memory.written });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    port.postMessage({ kind: 'failed', message: e.message, stack: e.stack });
  } finally {
    await store?.close();
    await events?.close();
  }
};

/** The compiled worker entry (next to this file in dist/); absent when running from sources. */
export const SHARD_WORKER_FILE = join(__dirname, 'rebuild-shard.worker.js');

export const spawnShardWorker = (request: ShardRequest, file = SHARD_WORKER_FILE): ShardHandle => {
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: a parallel rebuild runs from the built code`);
  }
  const worker = new Worker(file, { workerData: request });
  return {
    onMessage: (listener) => worker.on('message', listener),
    onCrash: (listener) => {
      worker.on('error', listener);
      worker.on('exit', (code) => listener(new Error(`rebuild shard ${request.shard} exited (${code})`)));
    },
    terminate: () => worker.terminate(),
  };
};

/**
 * Replays the log through `until` into `target`, a rebuild's shadow over `files.readModelFile`,
 * with `parallel.workers` shards, then sets its checkpoint as `replayInto` does. Returns the
 * number of events replayed.
 */
export const replayInShards = async (
  target: ReadModelStore,
  projections: readonly Projection[],
  parallel: ParallelReplay,
  files: EmbeddedFiles,
  until: bigint,
  options: {
    readonly batchSize?: number;
    readonly keepInMemory: number;
    readonly onProgress?: (progress: RebuildProgress) => void;
    /** The documents each shard wrote (a document evicted and changed again counts twice). */
    readonly onDocuments?: (perShard: readonly number[]) => void;
  },
): Promise<number> => {
  const names = (ps: readonly Projection[]) => ps.map((p) => p.collection.name).join(',');
  if (names(projections) !== names(allProjections())) {
    throw new Error('a parallel rebuild replays allProjections(): the projections differ');
  }
  await target.init(projections.map((p) => p.collection));
  const spawn = parallel.spawn ?? ((request: ShardRequest) => spawnShardWorker(request));
  const shards = Math.max(1, Math.floor(parallel.workers));
  const progress = Array.from({ length: shards }, () => ({ events: 0, position: 0n }));
  const finished: { events: number; last: bigint | undefined; documents: number }[] = [];
  const handles: ShardHandle[] = [];
  let settled = false;
  let settle!: (error?: Error) => void;
  const outcome = new Promise<void>((resolve, reject) => {
    // The first word counts: shards stopped after a failure (or after all are done) report
    // their exits too, and those must neither win nor reject a promise nobody awaits.
    settle = (error) => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve();
    };
  });
  const onMessage = (shard: number, message: ShardMessage) => {
    switch (message.kind) {
      case 'progress':
        progress[shard] = { events: message.events, position: message.position };
        try {
          options.onProgress?.({
            events: Math.min(...progress.map((p) => p.events)),
            position: progress.reduce((a, p) => (p.position < a ? p.position : a), until),
            head: until,
          });
        } catch (error) {
          settle(error instanceof Error ? error : new Error(String(error)));
        }
        return;
      case 'done':
        finished[shard] = { events: message.events, last: message.last, documents: message.documents };
        if (finished.filter(Boolean).length === shards) settle();
        return;
      case 'failed': {
        const error = new Error(`rebuild shard ${shard}: ${message.message}`);
        if (message.stack) error.stack = message.stack;
        settle(error);
      }
    }
  };
  try {
    for (let shard = 0; shard < shards; shard++) {
      const handle = spawn({
        ...files,
        shard,
        shards,
        until,
        batchSize: options.batchSize ?? 2000,
        keepInMemory: Math.max(1, Math.floor(options.keepInMemory / shards)),
        shadowMark: target instanceof SqliteReadModelStore ? target.shadowMark : undefined,
      });
      handles.push(handle);
      handle.onMessage((message) => onMessage(shard, message));
      handle.onCrash((error) => finished[shard] === undefined && settle(error));
    }
  } catch (error) {
    // a shard that could not start: the ones started are stopped below
    settle(error instanceof Error ? error : new Error(String(error)));
  }
  try {
    await outcome;
  } finally {
    settle(new Error('stopped')); // (no-op when settled) later exits are not failures
    await Promise.all(handles.map((h) => h.terminate().catch(() => undefined)));
  }
  // Every shard read the same events through the same position: anything else is a bug that
  // would leave documents short of what the checkpoint claims.
  const [first] = finished;
  if (finished.some((f) => f.events !== first.events || f.last !== first.last)) {
    throw new Error(
      `rebuild shards disagree on what they replayed: ${finished.map((f) => `${f.events} events through ${f.last}`).join('; ')}`,
    );
  }
  if (first.last !== undefined) {
    await target.commit({ documents: [], checkpoint: { name: PROJECTOR_CHECKPOINT, position: first.last } });
  }
  options.onDocuments?.(finished.map((f) => f.documents));
  return first.events;
};
