import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type EventStore, SqliteEventStore } from '@changeledger/event-store';
import { type ReadModelStore, SqliteReadModelStore } from '@changeledger/read-models';
import type { AppConfig } from './app-config';

/**
 * The event store the configuration names (EVENT_STORE). `readOnly`, for tools that only read the
 * log: an embedded store that is not there is an error, not a new empty one (a tool run with the
 * wrong DATA_DIR would otherwise verify or report an empty log and succeed), and the file is
 * opened for reading only, so that checking a copy does not change it.
 */
export const openEventStore = async (
  config: AppConfig,
  options: { readOnly?: boolean } = {},
): Promise<EventStore> => {
  if (config.eventStore === 'eventstoredb') {
    const { EventStoreDbEventStore } = await import('@changeledger/event-store');
    return EventStoreDbEventStore.connect(config.eventStoreConnectionString!);
  }
  const file = join(config.dataDir, 'events.sqlite');
  if (options.readOnly && !existsSync(file)) {
    throw new Error(
      `no event store at ${resolve(file)}: DATA_DIR (${config.dataDir}) holds none; set DATA_DIR to the service's`,
    );
  }
  return new SqliteEventStore(file, { readOnly: options.readOnly });
};

/** The read-model store the configuration names (READ_MODEL_STORE). */
export const openReadModelStore = async (config: AppConfig): Promise<ReadModelStore> => {
  if (config.readModelStore === 'mongodb') {
    const { MongoReadModelStore } = await import('@changeledger/read-models');
    return MongoReadModelStore.connect(config.mongodbUrl!, config.mongodbDb);
  }
  return SqliteReadModelStore.open(join(config.dataDir, 'read-models.sqlite'));
};
