import { parentPort, workerData } from 'node:worker_threads';
import { type ProjectorThreadRequest, runProjectorThread } from './projector-thread';

// The API's projector in a worker thread (see projector-thread.ts); the main thread ends it.
void runProjectorThread(parentPort!, workerData as ProjectorThreadRequest);
