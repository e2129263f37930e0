import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { ignoredSettings, loadConfig } from '@changeledger/platform';
import { createApp } from './create-app';

const bootstrap = async () => {
  const config = loadConfig();
  for (const warning of ignoredSettings(config)) console.warn(`changeledger: ${warning}`);
  const app = await createApp(config);
  await app.listen({ port: config.port, host: config.host });
  // The bound port: PORT=0 lets the system choose one.
  const { port } = app.getHttpServer().address() as AddressInfo;
  console.log(
    `changeledger listening on http://${config.host}:${port}/api/v1 (event store: ${config.eventStore}, read models: ${config.readModelStore}, data: ${config.dataDir})`,
  );
};

bootstrap().catch((error: unknown) => {
  // A clear line for the operator, not a stack of framework frames.
  console.error(`changeledger failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
