export * from './event-store.port';
export * from './event-store.errors';
export * from './event-hash';
export * from './adapters/sqlite/sqlite-event-store';
export * from './adapters/sqlite/sqlite-backup';
export * from './adapters/eventstoredb/eventstoredb-event-store';
export {
  DEFAULT_CATEGORIES,
  SEQUENCE_STREAM_PREFIX,
  sequenceStreamId,
  redactConnectionString,
} from './adapters/eventstoredb/eventstoredb-mapping';
export * from './audit/audit-event';
export * from './audit/verify-chain';
