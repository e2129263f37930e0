import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UnavailableError } from '@eventstore/db-client';
import { EventStoreDbEventStore, SqliteEventStore } from '@changeledger/event-store';
import { InMemoryEventStoreDbClient } from '../../libs/event-store/src/adapters/eventstoredb/testing/in-memory-eventstoredb-client';
import {
  allProjections,
  LeasedProjector,
  MongoReadModelStore,
  Projector,
  PROJECTOR_CHECKPOINT,
  replayInto,
  SqliteReadModelStore,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { readModelSnapshot } from '../support/read-model-snapshot';
import { mongoAddress, startTcpProxy } from '../support/tcp-proxy';

const url = process.env.MONGODB_URL;
if (!url) console.log('projector lease on MongoDB skipped: MONGODB_URL is not set');
const onMongo = url ? describe : describe.skip;
const projections = allProjections();
const until = async (condition: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

onMongo('the projector lease on MongoDB read models', () => {
  const databases: string[] = [];
  const stores: MongoReadModelStore[] = [];
  let dir = '';
  const open = async (db: string, through = url!) => {
    const store = await MongoReadModelStore.connect(through, db);
    stores.push(store);
    return store;
  };
  const freshDatabase = () => {
    const db = `lease_${process.pid}_${Date.now()}_${databases.length}`;
    databases.push(db);
    return db;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-lease-'));
  });
  afterAll(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
    const { MongoClient } = await import('mongodb');
    const client = await MongoClient.connect(url!);
    for (const db of databases) await client.db(db).dropDatabase();
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one holder at a time: renewed by its holder, taken over once it runs out, given up by release', async () => {
    const db = freshDatabase();
    const [a, b] = [await open(db), await open(db)];
    const t = 1_800_000_000_000;
    expect(await a.claimProjectorLease('a', 1000, t)).toEqual({ held: true, owner: 'a', until: t + 1000 });
    expect(await b.claimProjectorLease('b', 1000, t + 10)).toEqual({
      held: false,
      owner: 'a',
      until: t + 1000,
    });
    // renewed by its holder, also through the other handle's store
    expect(await a.claimProjectorLease('a', 1000, t + 900)).toMatchObject({ held: true, until: t + 1900 });
    expect(await b.claimProjectorLease('b', 1000, t + 1899)).toMatchObject({ held: false, owner: 'a' });
    // a's renewals stopped: it ran out, b takes it, and a cannot renew it any more
    expect(await b.claimProjectorLease('b', 1000, t + 1901)).toEqual({
      held: true,
      owner: 'b',
      until: t + 2901,
    });
    expect(await a.claimProjectorLease('a', 1000, t + 1902)).toMatchObject({ held: false, owner: 'b' });
    // a release by one who does not hold it changes nothing; by its holder, frees it at once
    await a.releaseProjectorLease('a');
    expect(await a.claimProjectorLease('a', 1000, t + 1903)).toMatchObject({ held: false, owner: 'b' });
    await b.releaseProjectorLease('b');
    expect(await a.claimProjectorLease('a', 1000, t + 1904)).toEqual({
      held: true,
      owner: 'a',
      until: t + 2904,
    });
  });

  it('of two leased projectors one projects and the other stands by; when the first stops, the other takes over and projects what comes next', async () => {
    const events = new SqliteEventStore(join(dir, 'events.sqlite'));
    try {
      await writeRandomLifecycles(events, { seed: 7, count: 30 });
      const db = freshDatabase();
      const [storeA, storeB] = [await open(db), await open(db)];
      // Long enough that a renewal answered late (FerretDB serialises writes, and a is writing
      // batches; the VM stalls) does not trip a's watchdog, which would stop its projector and
      // answer the wait below false; short enough to tell a release from a lease run out. (Each
      // lease test allows a renewal a few hundred ms or more: 600 ms leases, 200 ms, failed CI.)
      const leaseMs = 4_500;
      const errors: string[] = [];
      const leased = (store: MongoReadModelStore, owner: string) =>
        new LeasedProjector(
          () => new Projector(events, store, projections, { batchSize: 50 }),
          store,
          store,
          { owner, leaseMs, logger: { error: (m) => errors.push(m) } },
        );
      const a = leased(storeA, 'a');
      const b = leased(storeB, 'b');
      await a.start();
      await b.start();
      expect([a.leading, b.leading, b.standingBy]).toEqual([true, false, true]);
      expect(await a.waitFor(await events.headPosition(), 30_000)).toBe(true);
      // standing by, it projects nothing: its waits are answered false at once (callers read the
      // stored checkpoint), and it keeps standing by while a renews (for more than a lease)
      expect(await b.waitFor(1n, 5000)).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, leaseMs + 500));
      expect([a.leading, b.standingBy]).toEqual([true, true]);
      expect(errors).toEqual([]); // no stand-down, no failed claim
      expect(b.position).toBe(await storeB.checkpoint(PROJECTOR_CHECKPOINT));

      // a stops (gives the lease up): b takes over within a lease period, and projects the rest
      const stoppedAt = Date.now();
      await a.stop();
      await until(() => b.leading);
      // b claims at its next renewal, within a third of a lease (1.5 s); a lease left to run out
      // instead would hold b off for at least the two thirds a's last renewal had left (3 s)
      expect(Date.now() - stoppedAt).toBeLessThan((leaseMs * 2) / 3);
      await writeRandomLifecycles(events, { seed: 8, count: 20, idOffset: 30 });
      const head = await events.headPosition();
      expect(await b.waitFor(head, 30_000)).toBe(true);
      await b.stop();
      expect(await storeA.checkpoint(PROJECTOR_CHECKPOINT)).toBe(head);

      const replayed = SqliteReadModelStore.open(join(dir, 'replayed.sqlite'));
      await replayInto(events, replayed, projections);
      const expected = await readModelSnapshot(replayed, projections);
      expect(expected.change_requests).toHaveLength(50);
      expect(await readModelSnapshot(storeA, projections)).toEqual(expected);
      await replayed.close();
    } finally {
      await events.close();
    }
  }, 120_000);

  it('a projector that fails to start keeps the lease, says it is not running, and is started again at each renewal', async () => {
    const events = new SqliteEventStore(join(dir, 'events-closed.sqlite'));
    await events.close(); // its subscription cannot open: the projector's start fails
    const store = await open(freshDatabase());
    const errors: string[] = [];
    let made = 0;
    const failing = new LeasedProjector(
      () => (made++, new Projector(events, store, projections)),
      store,
      store,
      { owner: 'failing', leaseMs: 3_000, logger: { error: (m) => errors.push(m) } },
    );
    await failing.start();
    await until(() => errors.some((e) => e.includes('failed to start: the event store is closed')));
    expect([failing.leading, failing.running]).toEqual([false, false]); // health: projector down
    await until(() => made >= 3);
    expect(await store.claimProjectorLease('other', 600)).toMatchObject({ held: false, owner: 'failing' });
    await failing.stop();
    expect(await store.claimProjectorLease('other', 600)).toMatchObject({ held: true }); // given up
  }, 60_000);

  it('a lease its claim wins while stop() waits for that claim is given up, not kept until it runs out', async () => {
    const events = new SqliteEventStore(join(dir, 'events-stop-race.sqlite'));
    try {
      const store = await open(freshDatabase());
      let onClaim: (() => void) | undefined;
      const slow = {
        claimProjectorLease: async (owner: string, ttlMs: number, now?: number) => {
          onClaim?.();
          await new Promise((resolve) => setTimeout(resolve, 150)); // on its way to the store
          return store.claimProjectorLease(owner, ttlMs, now);
        },
        releaseProjectorLease: (owner: string) => store.releaseProjectorLease(owner),
      };
      expect(await store.claimProjectorLease('other', 60_000)).toMatchObject({ held: true });
      const late = new LeasedProjector(() => new Projector(events, store, projections), slow, store, {
        owner: 'late',
        leaseMs: 600,
      });
      await late.start();
      expect(late.standingBy).toBe(true);
      await store.releaseProjectorLease('other');
      // the next claim is on its way (and will win the freed lease) when stop() comes
      await new Promise<void>((resolve) => (onClaim = resolve));
      onClaim = undefined;
      await late.stop();
      expect(late.leading).toBe(false);
      expect(await store.claimProjectorLease('next', 600)).toMatchObject({ held: true, owner: 'next' });
    } finally {
      await events.close();
    }
  }, 60_000);

  it('renewals a third of a lease apart from send to send: a slow store (claims taking 2/9 of the lease) keeps its holder projecting', async () => {
    const events = new SqliteEventStore(join(dir, 'events-slow.sqlite'));
    try {
      const store = await open(freshDatabase());
      const slow = {
        claimProjectorLease: async (owner: string, ttlMs: number, now?: number) => {
          const claimed = await store.claimProjectorLease(owner, ttlMs, now);
          await new Promise((resolve) => setTimeout(resolve, 1_000)); // the answer's way back
          return claimed;
        },
        releaseProjectorLease: (owner: string) => store.releaseProjectorLease(owner),
      };
      const errors: string[] = [];
      const projector = new LeasedProjector(() => new Projector(events, store, projections), slow, store, {
        owner: 'slow',
        // 4.5 s: sent every 1.5 s and answered 1 s later, each renewal lands 0.5 s before the
        // watchdog (2/3 of the lease after the last send); scheduled from the answer instead,
        // it would land 0.5 s after it
        leaseMs: 4_500,
        logger: { error: (m) => errors.push(m) },
      });
      await projector.start();
      let stoodDown = false;
      const deadline = Date.now() + 9_000; // two leases: six renewals
      while (Date.now() < deadline) {
        stoodDown ||= !projector.leading;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await projector.stop();
      expect(stoodDown).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await events.close();
    }
  }, 60_000);

  it('a projector whose lease renewals fail (its store cut off) stops projecting before the lease could run out, and projects again once it answers, never two projectors at once', async () => {
    const events = new SqliteEventStore(join(dir, 'events-outage.sqlite'));
    const proxy = await startTcpProxy(mongoAddress(url!));
    try {
      const store = await open(
        freshDatabase(),
        `mongodb://127.0.0.1:${proxy.port}/?directConnection=true&serverSelectionTimeoutMS=5000`,
      );
      const errors: string[] = [];
      // each projector it makes, with when its start began and when its stop ended
      const made: { startedAt?: number; stoppedAt?: number }[] = [];
      const makeProjector = () => {
        const projector = new Projector(events, store, projections);
        const times: { startedAt?: number; stoppedAt?: number } = {};
        made.push(times);
        const [start, stop] = [projector.start.bind(projector), projector.stop.bind(projector)];
        projector.start = () => ((times.startedAt = Date.now()), start());
        projector.stop = async () => {
          await stop();
          times.stoppedAt = Date.now();
        };
        return projector;
      };
      const projector = new LeasedProjector(makeProjector, store, store, {
        owner: 'cut-off',
        leaseMs: 3_000,
        logger: { error: (m) => errors.push(m) },
      });
      await projector.start();
      expect(projector.leading).toBe(true);
      await proxy.cut();
      const cutAt = Date.now();
      await until(() => !projector.leading);
      // the claims hang (5 s to find no server): stood down by the clock, within 2/3 of the
      // 3 s lease after the last renewal, which came before the cut
      expect(Date.now() - cutAt).toBeLessThan(3_000);
      expect(errors.some((e) => e.includes('could not be renewed in time'))).toBe(true);
      await proxy.restore();
      await until(() => projector.leading); // it holds it again once the store answers
      await projector.stop();
      // (more than two when a renewal just after the restore was late too, on a slow machine)
      expect(made.length).toBeGreaterThanOrEqual(2);
      // each had stopped (its last write done) before the next began
      for (let i = 1; i < made.length; i++) {
        expect(made[i - 1].stoppedAt).toBeLessThanOrEqual(made[i].startedAt!);
      }
      expect(made.at(-1)!.stoppedAt).toBeDefined();
    } finally {
      await events.close();
      await proxy.close();
    }
  }, 60_000);

  describe('a projector that cannot reach the event store', () => {
    // EventStoreDB's client is outside the system: an in-memory double of its server, on which
    // one process's connection can be cut off (a network partition between it and the server).
    const quiet = { error: () => undefined, warn: () => undefined, log: () => undefined };
    const unavailable = () => new UnavailableError(undefined, 'connection lost');
    const server = new InMemoryEventStoreDbClient();
    const handles: EventStoreDbEventStore[] = [];
    const connect = () => {
      const client = server.connection();
      // gives a subscription up at its first drop, as after a long outage
      const events = new EventStoreDbEventStore(client, {
        subscriptionRetry: { maxAttempts: 1 },
        pingTimeoutMs: 100,
        logger: quiet,
      });
      handles.push(events);
      return { client, events };
    };
    const writer = connect().events;
    afterAll(async () => {
      for (const events of handles) await events.close().catch(() => undefined);
    });
    const leased = (
      events: EventStoreDbEventStore,
      store: MongoReadModelStore,
      owner: string,
      leaseMs: number,
    ) => {
      const logs: string[] = [];
      const projector = new LeasedProjector(
        () => new Projector(events, store, projections, { batchSize: 50, logger: quiet }),
        store,
        store,
        {
          owner,
          leaseMs,
          eventLog: events,
          logger: { error: (m) => logs.push(m), log: (m) => logs.push(m) },
        },
      );
      return { projector, logs };
    };

    it('claims no lease while it cannot reach it; as the holder, gives the lease up after a lease without it, and a standby that reaches it takes over and projects', async () => {
      await writeRandomLifecycles(writer, { seed: 21, count: 10 });
      const db = freshDatabase();
      const [storeA, storeB] = [await open(db), await open(db)];
      const linkA = connect();
      const linkB = connect();
      // 3 s: a renewal answered late (FerretDB, a stalled VM) must not trip a's watchdog while a
      // projects (its wait below would answer false)
      const leaseMs = 3_000;
      const a = leased(linkA.events, storeA, 'a', leaseMs);
      const b = leased(linkB.events, storeB, 'b', leaseMs);

      // b, cut off from the start, stands by and leaves the free lease alone for more than a lease
      server.partition(linkB.client, unavailable);
      await b.projector.start();
      expect([b.projector.leading, b.projector.standingBy, b.projector.waitingForEventStore]).toEqual([
        false,
        true,
        true,
      ]);
      await new Promise((resolve) => setTimeout(resolve, 1.5 * leaseMs));
      expect(b.projector.leading).toBe(false);
      await a.projector.start();
      expect(a.projector.leading).toBe(true); // the lease was free
      server.heal(linkB.client);
      await until(() => !b.projector.waitingForEventStore);
      expect(b.projector.standingBy).toBe(true); // a holds it
      expect(await a.projector.waitFor(await writer.headPosition(), 30_000)).toBe(true);

      // a is cut off: it gives the lease up after a lease without the log, and b takes over
      server.partition(linkA.client, unavailable);
      const cutAt = Date.now();
      await until(() => b.projector.leading);
      // a whole lease without the log, then b's next claim: about 4 s here (the README's "about
      // 25 s" for a 15 s lease); the upper bound leaves room for a loaded CI machine
      const tookOver = Date.now() - cutAt;
      expect(tookOver).toBeGreaterThanOrEqual(leaseMs);
      expect(tookOver).toBeLessThan(2.5 * leaseMs);
      expect(a.projector.leading).toBe(false);
      expect(a.logs.join('\n')).toMatch(
        /a cannot reach the event store .*gives the projector lease up unless/,
      );
      expect(a.logs.join('\n')).toMatch(
        /a stopped projecting: it has not reached the event store for \d+ ms/,
      );
      expect(a.logs).toContain('projector: a gave up the projector lease');
      expect(a.projector.waitingForEventStore).toBe(true);

      // what is written meanwhile b projects, and the models are those of one replay of the log
      await writeRandomLifecycles(writer, { seed: 22, count: 10, idOffset: 10 });
      const head = await writer.headPosition();
      expect(await b.projector.waitFor(head, 30_000)).toBe(true);
      server.heal(linkA.client);
      await until(() => !a.projector.waitingForEventStore);
      expect([a.projector.standingBy, b.projector.leading]).toEqual([true, true]); // b keeps it
      await b.projector.stop();
      await a.projector.stop();
      const replayed = SqliteReadModelStore.open(join(dir, 'replayed-partition.sqlite'));
      await replayInto(writer, replayed, projections);
      const expected = await readModelSnapshot(replayed, projections);
      expect(expected.change_requests).toHaveLength(20);
      expect(await readModelSnapshot(storeA, projections)).toEqual(expected);
      await replayed.close();
    }, 120_000);

    it('keeps the lease through an outage shorter than a lease, and projects what was written meanwhile', async () => {
      const store = await open(freshDatabase());
      const link = connect();
      const { projector, logs } = leased(link.events, store, 'brief', 3_000);
      await projector.start();
      expect(projector.leading).toBe(true);
      server.partition(link.client, unavailable);
      await until(() => logs.some((m) => m.includes('brief cannot reach the event store')));
      await writeRandomLifecycles(writer, { seed: 23, count: 5, idOffset: 40 });
      server.heal(link.client);
      await until(() => logs.includes('projector: brief reaches the event store again'));
      expect(await projector.waitFor(await writer.headPosition(), 30_000)).toBe(true);
      expect(projector.leading).toBe(true);
      expect(logs.join('\n')).not.toMatch(/stopped projecting|gave up/);
      expect(await store.claimProjectorLease('other', 1500)).toMatchObject({ held: false, owner: 'brief' });
      await projector.stop();
    }, 60_000);
  });
});
