import { SqliteEventStore } from '@changeledger/event-store';
import { SqliteReadModelStore } from './adapters/sqlite/sqlite-read-model-store';

export interface EmbeddedFiles {
  readonly eventStoreFile: string;
  readonly readModelFile: string;
}

/**
 * The files of the embedded stores, which a worker thread can open itself (a projector thread,
 * rebuild shards); undefined for any other store, or one in memory.
 */
export const embeddedFiles = (events: unknown, readModels: unknown): EmbeddedFiles | undefined =>
  events instanceof SqliteEventStore &&
  readModels instanceof SqliteReadModelStore &&
  events.file !== ':memory:' &&
  readModels.file !== ':memory:'
    ? { eventStoreFile: events.file, readModelFile: readModels.file }
    : undefined;
