import { parentPort, workerData } from 'node:worker_threads';
import { runShard, type ShardRequest } from './rebuild-shards';

// One shard of a parallel rebuild (see rebuild-shards.ts); it ends when its replay does.
void runShard(parentPort!, workerData as ShardRequest);
