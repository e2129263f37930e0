export * from './read-model-store.port';
export * from './position';
export * from './projections';
export * from './projector';
export * from './adapters/sqlite/sqlite-read-model-store';
export * from './adapters/mongodb/mongodb-read-model-store';
export * from './reports';
export * from './rebuild-shards';
