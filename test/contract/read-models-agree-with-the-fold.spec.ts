/**
 * What the read models serve agrees with the domain's own fold of each change's events, the way
 * `GET /changes/:id/as-of` computes it: the whole view of every change (through each store's
 * round trip: SQLite's JSON, MongoDB's encoding of field names and absent values), and which
 * lists a change is on. Random lifecycles, replayed into fresh read models.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  type ChangeRequestEvent,
  changeRequestDecider,
  type ChangeRequestState,
  fold,
  missingRequestFields,
  toChangeView,
} from '@changeledger/domain';
import { type EventStore, SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  type ChangeRequestDocument,
  type PendingApprovalDocument,
  type ReadModelStore,
  type RetrospectiveDocument,
  replayInto,
  SqliteReadModelStore,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';

const projections = allProjections();

interface Backing {
  readonly name: string;
  /** Changes in its log: FerretDB writes far slower than SQLite. */
  readonly changes: number;
  open(label: string): Promise<ReadModelStore>;
  cleanup(): Promise<void>;
}

let dir = '';
const backings: Backing[] = [
  {
    name: 'sqlite',
    changes: 300,
    open: async (label) => SqliteReadModelStore.open(join(dir, `${label}.sqlite`)),
    cleanup: async () => undefined,
  },
];
if (!process.env.MONGODB_URL)
  console.log('read models against the fold on MongoDB skipped: MONGODB_URL is not set');
if (process.env.MONGODB_URL) {
  const databases: string[] = [];
  backings.push({
    name: 'mongodb',
    // (enough that a batch moves more than one bulk of documents in a collection: see writeGuarded)
    changes: 80,
    open: async (label) => {
      const { MongoReadModelStore } = await import('@changeledger/read-models');
      const db = `fold_${label}_${process.pid}_${Date.now()}`;
      databases.push(db);
      return MongoReadModelStore.connect(process.env.MONGODB_URL!, db);
    },
    cleanup: async () => {
      const { MongoClient } = await import('mongodb');
      const client = await MongoClient.connect(process.env.MONGODB_URL!);
      try {
        for (const db of databases.splice(0)) await client.db(db).dropDatabase();
      } finally {
        await client.close();
      }
    },
  });
}

/** As JSON carries it: what an HTTP client compares. */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

/** Each change's state, folded by the domain from its stream's events. */
const foldAll = async (events: EventStore) => {
  const byStream = new Map<string, ChangeRequestEvent[]>();
  for (const event of await events.readAll({ after: 0n, limit: 1_000_000 })) {
    if (!event.streamId.startsWith('changeRequest-')) continue;
    const list = byStream.get(event.streamId) ?? [];
    list.push({ type: event.type, data: event.data } as unknown as ChangeRequestEvent);
    byStream.set(event.streamId, list);
  }
  const folded = new Map<string, ChangeRequestState>();
  for (const [streamId, list] of byStream) {
    folded.set(
      streamId.slice('changeRequest-'.length),
      fold(changeRequestDecider.evolve, changeRequestDecider.initialState(), list),
    );
  }
  return folded;
};

/**
 * A log of random lifecycles, and a copy of its first 60 %: the lifecycles run side by side,
 * so in the copy dozens of changes stop half-way (in review, awaiting approval, in progress…).
 */
const logsOf = async (changes: number, label: string) => {
  const full = new SqliteEventStore(join(dir, `${label}-events.sqlite`));
  await writeRandomLifecycles(full, { seed: 20261128, count: changes });
  const cut = ((await full.headPosition()) * 6n) / 10n;
  const prefix = new SqliteEventStore(join(dir, `${label}-prefix-events.sqlite`));
  for (const event of await full.readAll({ after: 0n, limit: 1_000_000 })) {
    if (event.position > cut) break;
    await prefix.append(
      event.streamId,
      [{ eventId: event.eventId, type: event.type, data: event.data, metadata: event.metadata }],
      'any',
    );
  }
  return { full, prefix };
};

describe('the read models against the fold of each change’s events', () => {
  const opened: EventStore[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-fold-'));
  });

  afterAll(async () => {
    await Promise.all(opened.map((store) => store.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(backings.map((b) => [b.name, b] as const))(
    '%s: every change’s view, and the approval and retrospective lists it is on, half-way and at the end',
    async (name, backing) => {
      const { full, prefix } = await logsOf(backing.changes, name);
      opened.push(full, prefix);
      const statuses = new Set<string>();
      try {
        for (const [label, events] of [
          ['prefix', prefix],
          ['full', full],
        ] as const) {
          const folded = await foldAll(events);
          expect(folded.size).toBeGreaterThan(backing.changes / 2);
          const store = await backing.open(`${name}-${label}`);
          try {
            // batches of 500 events (a live projector's): documents written in one batch are
            // replaced in later ones
            await replayInto(events, store, projections, { batchSize: 500 });
            const ids = [...folded.keys()];
            const documents = await store.getMany<ChangeRequestDocument>('change_requests', ids);
            const pending = await store.getMany<PendingApprovalDocument>('pending_approvals', ids);
            const queue = await store.getMany<RetrospectiveDocument>('retrospective_queue', ids);
            expect(documents.size).toBe(folded.size);
            for (const [id, state] of folded) {
              const view = toChangeView(state);
              statuses.add(view.status);
              // the whole view, as GET /changes/:id and /as-of answer it
              const served = asJson(toChangeView(documents.get(id)!.state));
              expect({ id, view: served }).toEqual({
                id,
                view: asJson(view),
              });
              // awaiting approval ⇔ on the pending list, at the level the reviews required
              const approval = pending.get(id);
              expect({ id, pending: approval?.pending ?? false }).toEqual({
                id,
                pending: state.status === 'awaiting-approval',
              });
              if (state.status === 'awaiting-approval') {
                expect({ id, level: approval!.requiredApproval }).toEqual({
                  id,
                  level: state.requiredApproval,
                });
              }
              // an emergency until it is closed ⇔ in the open retrospective queue, missing what it misses
              const queued = queue.get(id);
              expect({ id, open: queued?.open ?? false }).toEqual({
                id,
                open: state.type === 'emergency' && state.status !== 'closed',
              });
              if (queued?.open) {
                expect({ id, missing: [...queued.missingFields].sort() }).toEqual({
                  id,
                  missing: [...missingRequestFields(state.request)].sort(),
                });
              }
            }
          } finally {
            await store.close();
          }
        }
        // half-way and at the end, the changes were in most statuses (else this says little)
        expect(statuses.size).toBeGreaterThanOrEqual(backing.changes >= 100 ? 9 : 6);
      } finally {
        await backing.cleanup();
      }
    },
    600_000,
  );
});
