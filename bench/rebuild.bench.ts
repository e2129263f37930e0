import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import {
  type Actor,
  type ChangeRequestCommand,
  changeRequestDecider,
  type ChangeRequestState,
  evolveChangeRequest,
  formatChangeId,
  initialChangeRequestState,
  REVIEW_CRITERIA,
  type ReviewKind,
} from '@changeledger/domain';
import { type NewEvent, SqliteEventStore } from '@changeledger/event-store';
import { MongoClient } from 'mongodb';
import {
  allProjections,
  MongoReadModelStore,
  type ReadModelDocument,
  type ReadModelStore,
  rebuildReadModels,
  SqliteReadModelStore,
} from '@changeledger/read-models';
import { loadConfig, signToken } from '@changeledger/platform';
import { collectGarbage, flushPageCache, percentile, progress, round } from './bench-util';
import { SECRET, startServer, stopServer } from './http-lifecycles.bench';

const who = (id: string, roles: Actor['roles']): Actor => ({ id, name: `Bench ${id}`, roles });
const A = {
  requester: who('req', ['requester']),
  lead: who('lead', ['infrastructure-lead']),
  implementer: who('impl', ['implementer']),
  manager: who('mgmt', ['management']),
};
const review = (kind: ReviewKind): [ChangeRequestCommand, Actor] => [
  {
    type: 'RecordReview',
    kind,
    verdict: 'approve',
    notes: 'ok',
    criteria: Object.fromEntries(REVIEW_CRITERIA[kind].map((k) => [k, 'ok'])),
  },
  who(kind, [`${kind}-reviewer`]),
];
const FIELDS = {
  title: 'Move storage network to VLAN 20',
  description: 'Re-tag the Ceph network',
  reason: 'Separate storage traffic',
  priority: 'medium' as const,
  systemsAffected: ['pve1', 'pve2'],
  expectedImpact: 'Short flaps',
  implementationPlan: ['Drain', 'Re-tag', 'Verify'],
  rollbackPlan: 'Restore interfaces',
  testingPlan: 'ceph -s',
  risk: { level: 'low' as const, potentialImpact: 'outage', mitigation: 'one node at a time' },
  timeline: { proposedStart: '2026-12-01T22:00:00.000Z', estimatedDurationMinutes: 60 },
};
const IMPLEMENT: [ChangeRequestCommand, Actor][] = [
  [{ type: 'RecordImplementationStep', description: 'done' }, A.implementer],
  [
    { type: 'RecordVerification', functionalityTested: true, systemHealthVerified: true, logsChecked: true },
    A.implementer,
  ],
  [{ type: 'CompleteImplementation', outcome: 'successful' }, A.implementer],
  [
    {
      type: 'RecordPostImplementationReview',
      documentationUpdated: true,
      lessonsLearned: 'l',
      improvements: [],
    },
    A.implementer,
  ],
];
const NORMAL: [ChangeRequestCommand, Actor][] = [
  review('technical'),
  review('business'),
  review('security'),
  [{ type: 'ApproveChange' }, A.lead],
  [
    {
      type: 'ScheduleChange',
      plannedStart: '2026-12-01T22:00:00.000Z',
      plannedEnd: '2026-12-01T23:00:00.000Z',
      maintenanceWindow: false,
    },
    A.implementer,
  ],
  [{ type: 'CompleteChecklistItem', item: 'backups-verified' }, A.implementer],
  [{ type: 'CompleteChecklistItem', item: 'rollback-plan-prepared' }, A.implementer],
  [{ type: 'CompleteChecklistItem', item: 'stakeholders-notified' }, A.implementer],
  [{ type: 'StartImplementation' }, A.implementer],
  ...IMPLEMENT,
  [{ type: 'CloseChange' }, A.lead],
];

/** Events of one change: most run the whole normal process; some stop early (open work). */
const lifecycle = (n: number, at: string): { type: string; data: unknown; actor: Actor }[] => {
  const id = formatChangeId(n);
  const stopAfter = n % 10 === 0 ? 3 : n % 10 === 1 ? 5 : NORMAL.length;
  let state: ChangeRequestState = initialChangeRequestState();
  const out: { type: string; data: unknown; actor: Actor }[] = [];
  const run = (command: ChangeRequestCommand, actor: Actor) => {
    const events = changeRequestDecider.decide(command, state, { actor, now: at });
    for (const e of events) {
      state = evolveChangeRequest(state, e);
      out.push({ type: e.type, data: e.data, actor });
    }
  };
  run({ type: 'SubmitChange', changeId: id, changeType: 'normal', fields: FIELDS }, A.requester);
  for (const [command, actor] of NORMAL.slice(0, stopAfter)) run(command, actor);
  return out;
};

export interface RebuildFigures {
  changes: number;
  events: number;
  generateSeconds: number;
  rebuildSeconds: number;
  rebuildWorkers: number;
  rebuildEventsPerSecond: number;
  documents: number;
  baselineSeconds: number;
  baselineDocumentsPerSecond: number;
  /** baselineSeconds / rebuildSeconds: how close a rebuild comes to just inserting its result. */
  ratio: number;
  /** The queries the p99 target names: `GET /changes` with a status filter, `GET /change-log`. */
  queryLatencyMs: Record<string, { p50: number; p99: number }>;
  /** Other queries, measured the same way, without a target. */
  otherQueryLatencyMs: Record<string, { p50: number; p99: number }>;
  liveLagMs: { p50: number; p99: number };
  /** Reads that were still not served after the server's 5 s minPosition wait. */
  liveLagTimeouts: number;
}

/**
 * `target` `mongodb` (with MONGODB_URL): the read models in MongoDB (FerretDB in CI), the
 * baseline plain `insertMany` of the same documents into the same server.
 */
export const benchRebuild = async (
  changes = Number(process.env.BENCH_REBUILD_CHANGES ?? 100_000),
  target: 'sqlite' | 'mongodb' = 'sqlite',
): Promise<RebuildFigures> => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-bench-rebuild-'));
  const mongoUrl = process.env.MONGODB_URL ?? '';
  const mongoDb = `bench_${process.pid}_${Date.now()}`;
  if (target === 'mongodb' && !mongoUrl) throw new Error('the MongoDB rebuild bench needs MONGODB_URL');
  try {
    progress(`rebuild: writing ${changes} change requests into the event store`);
    const events = new SqliteEventStore(join(dir, 'events.sqlite'));
    const genStarted = process.hrtime.bigint();
    let written = 0;
    const base = Date.parse('2026-10-01T08:00:00.000Z');
    for (let first = 1; first <= changes; first += 1000) {
      const writes: Promise<unknown>[] = [];
      for (let k = first; k < Math.min(first + 1000, changes + 1); k++) {
        // Through the id sequence, as the API allocates: CHG numbers stay in step with it.
        const build = (n: number) => {
          const at = new Date(base + n * 60_000).toISOString();
          const batch: NewEvent[] = lifecycle(n, at).map((e) => ({
            eventId: randomUUID(),
            type: e.type,
            data: e.data as Record<string, unknown>,
            metadata: {
              actor: { id: e.actor.id, name: e.actor.name, roles: [...e.actor.roles] },
              occurredAt: at,
              correlationId: randomUUID(),
              causationId: null,
              schemaVersion: 1,
            },
          }));
          written += batch.length;
          return { streamId: `changeRequest-${formatChangeId(n)}`, events: batch };
        };
        writes.push(events.appendWithSequence({ sequence: 'changeRequest', build }));
      }
      await Promise.all(writes);
      if (first % 20_000 === 1)
        progress(`rebuild: ${first - 1 + writes.length} changes, ${written} events written`);
    }
    const generateSeconds = Number(process.hrtime.bigint() - genStarted) / 1e9;

    progress(`rebuild: replaying ${written} events into fresh ${target} read models`);
    const projections = allProjections();
    const readModels: ReadModelStore =
      target === 'mongodb'
        ? await MongoReadModelStore.connect(mongoUrl, mongoDb)
        : SqliteReadModelStore.open(join(dir, 'read-models.sqlite'));
    // What `npm run projections:rebuild` runs: replay into a shadow, build its indexes, swap it in.
    flushPageCache();
    collectGarbage();
    const started = process.hrtime.bigint();
    // With as many worker threads as the CLI would use (REBUILD_WORKERS) on this machine.
    const rebuildWorkers = loadConfig({ REBUILD_WORKERS: process.env.REBUILD_WORKERS }).rebuildWorkers;
    const { events: applied } = await rebuildReadModels(events, readModels, projections, undefined, {
      workers: rebuildWorkers,
    });
    const rebuildSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    progress('rebuild: baseline, plain inserts of the same documents');
    const documents: { collection: string; doc: ReadModelDocument }[] = [];
    for (const p of projections) {
      for (const doc of await readModels.find(p.collection.name, {
        where: [],
        orderBy: { field: 'id', direction: 'asc' },
        limit: 10_000_000,
      })) {
        documents.push({ collection: p.collection.name, doc });
      }
    }
    let baselineSeconds: number;
    if (target === 'mongodb') {
      const client = await MongoClient.connect(mongoUrl);
      const db = client.db(`${mongoDb}_baseline`);
      for (const p of projections) await db.createCollection(p.collection.name);
      collectGarbage(); // as before the timed rebuild
      const baselineStarted = process.hrtime.bigint();
      for (const p of projections) {
        const docs = documents
          .filter((d) => d.collection === p.collection.name)
          .map((d) => ({ ...d.doc, _id: d.doc.id }));
        for (let i = 0; i < docs.length; i += 1000) {
          await db
            .collection(p.collection.name)
            .insertMany(docs.slice(i, i + 1000) as never[], { ordered: false });
        }
      }
      baselineSeconds = Number(process.hrtime.bigint() - baselineStarted) / 1e9;
      await db.dropDatabase();
      await client.close();
    } else {
      const plain = new Database(join(dir, 'baseline.sqlite'));
      plain.pragma('journal_mode = WAL');
      plain.pragma('synchronous = NORMAL');
      for (const p of projections)
        plain.exec(`CREATE TABLE ${p.collection.name} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)`);
      const inserts = new Map(
        projections.map((p) => [
          p.collection.name,
          plain.prepare(`INSERT INTO ${p.collection.name} (id, doc) VALUES (?, ?)`),
        ]),
      );
      flushPageCache();
      collectGarbage();
      const baselineStarted = process.hrtime.bigint();
      const insertAll = plain.transaction(() => {
        for (const { collection, doc } of documents)
          inserts.get(collection)!.run(doc.id, JSON.stringify(doc));
      });
      insertAll();
      baselineSeconds = Number(process.hrtime.bigint() - baselineStarted) / 1e9;
      plain.close();
    }
    await readModels.close();
    await events.close();
    // Let the 400,000 documents go before timing HTTP: this (client) process collecting them
    // would show up as server latency.
    const documentCount = documents.length;
    documents.length = 0;

    progress('rebuild: query latency and live lag through HTTP at that size');
    const port = 40_000 + Math.floor(Math.random() * 1000);
    const server = await startServer(
      dir,
      port,
      target === 'mongodb'
        ? { READ_MODEL_STORE: 'mongodb', MONGODB_URL: mongoUrl, MONGODB_DB: mongoDb, RUN_PROJECTOR: 'true' }
        : {},
    );
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 8 });
    const token = await signToken({ sub: 'bench', name: 'Bench', roles: ['requester', 'auditor'] }, SECRET);
    const headers = { authorization: `Bearer ${token}` };
    const time = async (path: string, init: { method?: 'GET' | 'POST'; body?: string } = {}) => {
      const t = process.hrtime.bigint();
      const r = await pool.request({
        path,
        method: init.method ?? 'GET',
        headers: { ...headers, ...(init.body ? { 'content-type': 'application/json' } : {}) },
        body: init.body,
      });
      const text = await r.body.text();
      if (r.statusCode >= 400) throw new Error(`${path}: ${r.statusCode} ${text}`);
      return { ms: Number(process.hrtime.bigint() - t) / 1e6, text };
    };
    const queryLatencyMs: RebuildFigures['queryLatencyMs'] = {};
    const otherQueryLatencyMs: RebuildFigures['otherQueryLatencyMs'] = {};
    // FerretDB answers these queries by scanning: fewer samples there, or the bench runs for hours.
    const perClient = target === 'mongodb' ? 10 : 100;
    const lagSamples = target === 'mongodb' ? 20 : 300;
    try {
      for (const path of [
        '/api/v1/changes?status=closed&limit=50',
        '/api/v1/changes?status=in-review&limit=50',
        '/api/v1/change-log?limit=50',
        // a system no change names: the worst case, every change's systems searched
        '/api/v1/changes?system=vm-404&limit=50',
        // words no change holds: every change's id, title and description searched
        '/api/v1/changes?q=firmware&limit=50',
      ]) {
        const into = /[?&](system|q)=/.test(path) ? otherQueryLatencyMs : queryLatencyMs;
        const samples: number[] = [];
        for (let i = 0; i < perClient / 5; i++) await time(path); // warm-up
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            for (let i = 0; i < perClient; i++) samples.push((await time(path)).ms);
          }),
        );
        samples.sort((a, b) => a - b);
        into[path.replace('/api/v1', 'GET ')] = {
          p50: round(percentile(samples, 50)),
          p99: round(percentile(samples, 99)),
        };
      }
      const lags: number[] = [];
      let lagTimeouts = 0;
      const submission = JSON.stringify({ type: 'normal', ...FIELDS });
      for (let i = 0; i < lagSamples; i++) {
        const created = JSON.parse(
          (await time('/api/v1/changes', { method: 'POST', body: submission })).text,
        ) as { id: string; position: string };
        try {
          lags.push((await time(`/api/v1/changes/${created.id}?minPosition=${created.position}`)).ms);
        } catch {
          // 503 PROJECTION_LAGGING: not visible within the server's 5 s wait. Counted, not fatal.
          lagTimeouts += 1;
          lags.push(Infinity);
        }
      }
      lags.sort((a, b) => a - b);
      return {
        changes,
        events: applied,
        generateSeconds: round(generateSeconds, 1),
        rebuildSeconds: round(rebuildSeconds, 1),
        // worker threads of the replay (SQLite only; the baseline is one thread)
        rebuildWorkers: target === 'sqlite' ? rebuildWorkers : 1,
        rebuildEventsPerSecond: round(applied / rebuildSeconds, 0),
        documents: documentCount,
        baselineSeconds: round(baselineSeconds, 2),
        baselineDocumentsPerSecond: round(documentCount / baselineSeconds, 0),
        ratio: round(baselineSeconds / rebuildSeconds),
        queryLatencyMs,
        otherQueryLatencyMs,
        liveLagMs: { p50: round(percentile(lags, 50)), p99: round(percentile(lags, 99)) },
        liveLagTimeouts: lagTimeouts,
      };
    } finally {
      await pool.close();
      await stopServer(server);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (target === 'mongodb') {
      const client = await MongoClient.connect(mongoUrl);
      await client.db(mongoDb).dropDatabase();
      await client.close();
    }
  }
};
