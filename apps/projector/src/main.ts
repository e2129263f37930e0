import { allProjections, Projector } from '@changeledger/read-models';
import { ignoredSettings, loadConfig, openEventStore, openReadModelStore } from '@changeledger/platform';

/**
 * The projector as its own process (READ_MODEL_STORE=mongodb, API instances with
 * RUN_PROJECTOR=false). Run exactly one per read-model store.
 */
const main = async () => {
  const config = loadConfig();
  for (const warning of ignoredSettings(config)) console.warn(`[projector] ${warning}`);
  const events = await openEventStore(config);
  const readModels = await openReadModelStore(config);
  const projector = new Projector(events, readModels, allProjections(), {
    logger: { error: (message) => console.error(`[projector] ${message}`) },
    // Off unless set: this process is not told of the API's minPosition reads (see the setting).
    batchWindowMs: config.projectorBatchWindowMs ?? 0,
  });
  await projector.start();
  console.log(
    `[projector] running from position ${projector.position} (read models: ${config.readModelStore})`,
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`[projector] ${signal}: finishing the current batch`);
    await projector.stop();
    await readModels.close();
    await events.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
};

main().catch((error: unknown) => {
  console.error(`[projector] failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
