import { join } from 'node:path';
import { type EventStore, SqliteEventStore } from '@changeledger/event-store';
import { type ReadModelStore, SqliteReadModelStore } from '@changeledger/read-models';
import type { AppConfig } from './app-config';

/** The event store the configuration names (EVENT_STORE). */
export const openEventStore = async (config: AppConfig): Promise<EventStore> => {
  if (config.eventStore === 'eventstoredb') {
    const { EventStoreDbEventStore } = await import('@changeledger/event-store');
    return EventStoreDbEventStore.connect(config.eventStoreConnectionString!);
  }
  return new SqliteEventStore(join(config.dataDir, 'events.sqlite'));
};

/** The read-model store the configuration names (READ_MODEL_STORE). */
export const openReadModelStore = async (config: AppConfig): Promise<ReadModelStore> => {
  if (config.readModelStore === 'mongodb') {
    const { MongoReadModelStore } = await import('@changeledger/read-models');
    return MongoReadModelStore.connect(config.mongodbUrl!, config.mongodbDb);
  }
  return SqliteReadModelStore.open(join(config.dataDir, 'read-models.sqlite'));
};
