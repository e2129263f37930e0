import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { constants } from 'node:os';
import type { INestApplication } from '@nestjs/common';
import { ignoredSettings, loadConfig, onStopSignals } from '@changeledger/platform';
import { createApp } from './create-app';

/**
 * SIGTERM or Ctrl-C: stop accepting, finish the requests in flight (within SHUTDOWN_DRAIN_MS),
 * then stop the projector and webhooks and close the stores (StoreLifecycle); then end by the
 * same signal. A second signal meanwhile ends the process at once: nothing acknowledged is lost
 * (every answered write is committed), and an operator must not be left with a process that
 * ignores Ctrl-C (one Ctrl-C under `npm start` may arrive twice: see onStopSignals).
 */
const stopOnSignals = (app: INestApplication) => {
  const removeListeners = onStopSignals({
    first: (signal) => {
      console.log(`changeledger: ${signal}: shutting down (${signal} again to exit at once)`);
      app.close().then(
        () => {
          removeListeners();
          process.kill(process.pid, signal); // ends as the signal would have (a supervisor sees it)
          // As PID 1 (a container without an init) the kernel ignores a signal the process does not
          // handle: exit with the code a shell gives for it instead of waiting on whatever is left.
          setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 1000);
        },
        (error: unknown) => {
          console.error(
            `changeledger: the shutdown failed: ${error instanceof Error ? error.message : String(error)}`,
          );
          process.exit(1);
        },
      );
    },
    again: (signal) => {
      console.error(`changeledger: ${signal} again: exiting now, without finishing the shutdown`);
      process.exit(1);
    },
  });
};

const bootstrap = async () => {
  const config = loadConfig();
  for (const warning of ignoredSettings(config)) console.warn(`changeledger: ${warning}`);
  const app = await createApp(config);
  stopOnSignals(app);
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
