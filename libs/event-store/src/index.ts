export * from './event-store.port';
export * from './event-store.errors';
export * from './event-hash';
export * from './adapters/sqlite/sqlite-event-store';
