export * from './webhook-payload';
export * from './webhook-checkpoints';
export * from './webhook-dispatcher';
export * from './webhook-subjects';
