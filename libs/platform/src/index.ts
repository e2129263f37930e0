export * from './app-config';
export * from './jwt-secret';
export * from './clock';
export * from './token-signer';
export * from './open-stores';
export * from './stop-signals';
