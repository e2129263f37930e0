import { machine, progress } from './bench-util';
import { benchHttpLifecycles } from './http-lifecycles.bench';
import { benchRebuild } from './rebuild.bench';
import { benchStoreAppends } from './store-appends.bench';
import { benchWebhookDelivery } from './webhook-delivery.bench';

/** `npm run bench`: every figure next to a baseline measured in the same run; JSON on stdout. */
const main = async () => {
  const only = process.argv[2];
  const summary: Record<string, unknown> = { machine: machine(), startedAt: new Date().toISOString() };
  if (!only || only === 'store') {
    const appends = await benchStoreAppends();
    summary.storeAppends = {
      figures: appends,
      target: 'store appends >= 0.5x plain better-sqlite3 inserts',
      met: appends.every((f) => f.ratio >= 0.5),
      // the target is judged on `ratio`; this one is for judging the target (see the figures)
      alsoMeasured: "ratioToIndexedBaseline: the baseline with the store's unique (stream, revision) index",
    };
  }
  if (!only || only === 'http') {
    const http = await benchHttpLifecycles();
    summary.httpLifecycles = {
      ...http,
      targets: { commandsPerSecond: 2000, ratioToHealth: 0.3, p99Ms: 25 },
      met:
        http.commandsPerSecond >= 2000 &&
        http.ratioToHealth >= 0.3 &&
        http.commandLatencyMs.p99 <= 25 &&
        http.errors === 0,
    };
  }
  if (!only || only === 'webhooks') {
    summary.webhookDelivery = {
      ...(await benchWebhookDelivery()),
      // no target was set: what the dispatcher costs beyond the POSTs themselves
      baseline: 'the same bodies, made before the timer, POSTed one after another with undici request',
    };
  }
  if (!only || only === 'rebuild') {
    const rebuild = await benchRebuild();
    const worstQuery = Math.max(...Object.values(rebuild.queryLatencyMs).map((q) => q.p99));
    summary.readModels = {
      ...rebuild,
      targets: { ratio: 0.3, rebuildSeconds: 60, queryP99Ms: 20, liveLagP99Ms: 50 },
      met:
        rebuild.ratio >= 0.3 &&
        rebuild.rebuildSeconds < 60 &&
        worstQuery <= 20 &&
        rebuild.liveLagMs.p99 <= 50,
    };
  }
  // FerretDB is far slower than SQLite: a smaller log by default (BENCH_REBUILD_CHANGES_MONGODB).
  if ((!only && process.env.MONGODB_URL) || only === 'rebuild-mongodb') {
    const rebuild = await benchRebuild(
      Number(process.env.BENCH_REBUILD_CHANGES_MONGODB ?? 10_000),
      'mongodb',
    );
    const worstQuery = Math.max(...Object.values(rebuild.queryLatencyMs).map((q) => q.p99));
    summary.readModelsMongodb = {
      ...rebuild,
      server: 'MONGODB_URL (FerretDB 1.24, SQLite handler, in CI)',
      targets: { ratio: 0.3, queryP99Ms: 20, liveLagP99Ms: 50 },
      met: rebuild.ratio >= 0.3 && worstQuery <= 20 && rebuild.liveLagMs.p99 <= 50,
    };
  }
  progress('done');
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
};

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
