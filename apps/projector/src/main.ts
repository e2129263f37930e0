import { allProjections, isProjectorLeaseStore, LeasedProjector, Projector } from '@changeledger/read-models';
import {
  ignoredSettings,
  loadConfig,
  onStopSignals,
  openEventStore,
  openReadModelStore,
} from '@changeledger/platform';

/**
 * The projector as its own process (READ_MODEL_STORE=mongodb, API instances with
 * RUN_PROJECTOR=false). On MongoDB one process of several projects, holding the projector lease;
 * the others stand by and take over within the lease's time when it stops or dies.
 */
const main = async () => {
  const config = loadConfig();
  for (const warning of ignoredSettings(config)) console.warn(`[projector] ${warning}`);
  const events = await openEventStore(config);
  const readModels = await openReadModelStore(config);
  const logger = {
    error: (message: string) => console.error(`[projector] ${message}`),
    log: (message: string) => console.log(`[projector] ${message}`),
  };
  const project = () =>
    new Projector(events, readModels, allProjections(), {
      logger,
      // Off unless set: this process is not told of the API's minPosition reads (see the setting).
      batchWindowMs: config.projectorBatchWindowMs ?? 0,
    });
  const projector = isProjectorLeaseStore(readModels)
    ? new LeasedProjector(project, readModels, readModels, { logger, eventLog: events })
    : project();
  await projector.start();
  console.log(
    projector instanceof LeasedProjector && projector.standingBy
      ? projector.waitingForEventStore
        ? `[projector] standing by: the event store cannot be reached; the projector lease is claimed once it can (read models: ${config.readModelStore})`
        : `[projector] standing by: another projector holds the projector lease (read models: ${config.readModelStore})`
      : `[projector] running from position ${projector.position} (read models: ${config.readModelStore})`,
  );
  onStopSignals({
    first: (signal) => {
      console.log(`[projector] ${signal}: finishing the current batch (${signal} again to exit at once)`);
      void (async () => {
        await projector.stop();
        await readModels.close();
        await events.close();
        process.exit(0);
      })();
    },
    again: (signal) => {
      // its writes are transactions with their checkpoint: the next start goes on from there
      console.error(`[projector] ${signal} again: exiting now, without finishing the batch`);
      process.exit(1);
    },
  });
};

main().catch((error: unknown) => {
  console.error(`[projector] failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
