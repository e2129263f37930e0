import {
  IDEMPOTENCY_IN_FLIGHT_LEASE_MS,
  IDEMPOTENCY_TTL_MS,
  type IdempotencyStore,
} from '../../apps/api/src/idempotency/idempotency-store.port';

/** Stores over one shared backing (a file, a database): each `open` is another API instance's. */
export interface IdempotencyStoreFixture {
  open(): Promise<IdempotencyStore>;
  /** Closes what was opened and removes the backing. */
  cleanup(): Promise<void>;
}

/**
 * The IdempotencyStore contract: every adapter passes it (test/contract/*-idempotency-store.spec.ts).
 * Times are given, not read from a clock: the store decides by the `now` it is handed.
 */
export const idempotencyStoreContract = (name: string, fixture: () => IdempotencyStoreFixture) => {
  describe(`IdempotencyStore contract: ${name}`, () => {
    const t0 = new Date('2026-11-27T00:00:00.000Z');
    const later = (ms: number) => new Date(t0.getTime() + ms);
    const claimedAt = (ms: number) => t0.getTime() + ms;
    let fx: IdempotencyStoreFixture;
    let store: IdempotencyStore;
    beforeEach(async () => {
      fx = fixture();
      store = await fx.open();
    });
    afterEach(() => fx.cleanup());

    it('claims once; the same request waits while in flight, then replays the answer; another request is a mismatch', async () => {
      expect(await store.claim('u\u0000k', 'f1', t0)).toEqual({ kind: 'claimed', claimedAt: claimedAt(0) });
      expect(await store.claim('u\u0000k', 'f1', later(10))).toEqual({
        kind: 'in-flight',
        since: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      await store.complete('u\u0000k', claimedAt(0), { statusCode: 201, body: { id: 'CHG-001' } });
      expect(await store.claim('u\u0000k', 'f1', later(20))).toEqual({
        kind: 'replay',
        response: { statusCode: 201, body: { id: 'CHG-001' } },
        claimedAt: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      // settle replaces a stored refusal, only the one its claim stored, never a pending claim,
      // never a success
      const unknown = { statusCode: 409, body: { code: 'IDEMPOTENCY_OUTCOME_UNKNOWN' } };
      await store.claim('u\u0000s', 'f1', t0);
      await store.complete('u\u0000s', claimedAt(0), unknown);
      await store.settle('u\u0000s', claimedAt(1), { statusCode: 201, body: 'other claim' });
      expect(await store.claim('u\u0000s', 'f1', later(20))).toMatchObject({ response: unknown });
      await store.claim('u\u0000p', 'f1', t0);
      await store.settle('u\u0000p', claimedAt(0), { statusCode: 201, body: 'not yet answered' });
      expect(await store.claim('u\u0000p', 'f1', later(20))).toEqual({
        kind: 'in-flight',
        since: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      await store.settle('u\u0000s', claimedAt(0), { statusCode: 201, body: { id: 'CHG-002' } });
      await store.settle('u\u0000s', claimedAt(0), unknown); // a "not found" that lost the race
      expect(await store.claim('u\u0000s', 'f1', later(21))).toMatchObject({
        response: { statusCode: 201, body: { id: 'CHG-002' } },
      });
      await store.settle('u\u0000k', claimedAt(0), { statusCode: 200, body: 'over a success' });
      expect(await store.claim('u\u0000k', 'f1', later(22))).toMatchObject({
        response: { statusCode: 201, body: { id: 'CHG-001' } },
      });
      expect(await store.claim('u\u0000k', 'f2', later(30))).toEqual({ kind: 'mismatch' });
      expect(await store.claim('u\u0000k', 'f2', later(IDEMPOTENCY_TTL_MS))).toEqual({
        kind: 'claimed',
        claimedAt: claimedAt(IDEMPOTENCY_TTL_MS),
      });
    });

    it('a claim left in flight by a process that died is taken over after the lease, only where the caller allows it', async () => {
      await store.claim('u\u0000k', 'f1', t0);
      const reclaim = { reclaimAbandoned: true };
      expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS - 1), reclaim)).toEqual(
        {
          kind: 'in-flight',
          since: claimedAt(0),
          aliveAt: claimedAt(0),
        },
      );
      // a creation: nothing can tell whether the first one landed, so the key stays claimed
      expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS))).toEqual({
        kind: 'in-flight',
        since: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      // another request with the key (a command on the change the crashed creation made) may
      // not take it over: the creation's retry would then find the key free and create again
      expect(await store.claim('u\u0000k', 'f2', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), reclaim)).toEqual({
        kind: 'mismatch',
      });
      expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), reclaim)).toEqual({
        kind: 'claimed',
        claimedAt: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
      });
    });

    it('a claim renewed while its command runs counts as alive for a lease after its last renewal', async () => {
      const reclaim = { reclaimAbandoned: true };
      await store.claim('u\u0000k', 'f1', t0);
      await store.renew('u\u0000k', claimedAt(0), later(50_000));
      await store.renew('u\u0000k', claimedAt(0), later(40_000)); // a slow one landing late: never back
      await store.renew('u\u0000k', claimedAt(1), later(55_000)); // not this claim: changes nothing
      // past a lease from the claim, within one from the renewal: still in flight, for a creation too
      for (const options of [reclaim, {}]) {
        expect(
          await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 1), options),
        ).toEqual({
          kind: 'in-flight',
          since: claimedAt(0),
          aliveAt: claimedAt(50_000),
        });
      }
      // a lease after the renewal it is abandoned, and the new claim starts without one
      const takenAt = 50_000 + IDEMPOTENCY_IN_FLIGHT_LEASE_MS;
      expect(await store.claim('u\u0000k', 'f1', later(takenAt), reclaim)).toEqual({
        kind: 'claimed',
        claimedAt: claimedAt(takenAt),
      });
      expect(await store.claim('u\u0000k', 'f1', later(takenAt + 1))).toEqual({
        kind: 'in-flight',
        since: claimedAt(takenAt),
        aliveAt: claimedAt(takenAt),
      });
      // a done claim is not renewed
      await store.complete('u\u0000k', claimedAt(takenAt), { statusCode: 200, body: 'ok' });
      await store.renew('u\u0000k', claimedAt(takenAt), later(takenAt + 5));
      expect(await store.claim('u\u0000k', 'f1', later(takenAt + 10))).toMatchObject({ kind: 'replay' });
    });

    it('the first claimant, slow rather than dead, can neither answer for nor free the claim that replaced it', async () => {
      await store.claim('u\u0000k', 'f1', t0);
      await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), { reclaimAbandoned: true });
      await store.release('u\u0000k', claimedAt(0));
      await store.complete('u\u0000k', claimedAt(0), { statusCode: 200, body: 'stale' });
      expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 1))).toEqual({
        kind: 'in-flight',
        since: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
        aliveAt: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
      });
      await store.complete('u\u0000k', claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), {
        statusCode: 200,
        body: 'new',
      });
      expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 2))).toEqual({
        kind: 'replay',
        response: { statusCode: 200, body: 'new' },
        claimedAt: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
        aliveAt: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
      });
    });

    it('a released claim (the request failed) can be claimed again at once', async () => {
      await store.claim('u\u0000k', 'f1', t0);
      await store.release('u\u0000k', claimedAt(0));
      expect((await store.claim('u\u0000k', 'f1', later(1))).kind).toBe('claimed');
    });

    it('keeps answers of any shape as they were given', async () => {
      const body = {
        $where: 'not an operator',
        'dotted.key': [1, null, { nested: true }],
        text: 'Zürich ✓ \u0000 "quoted"',
        big: 2 ** 53 - 1,
      };
      await store.claim('u\u0000k', 'f1', t0);
      await store.complete('u\u0000k', claimedAt(0), { statusCode: 422, body });
      expect(await store.claim('u\u0000k', 'f1', later(1))).toEqual({
        kind: 'replay',
        response: { statusCode: 422, body },
        claimedAt: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      await store.claim('u\u0000n', 'f1', t0);
      await store.complete('u\u0000n', claimedAt(0), { statusCode: 204, body: undefined });
      expect(await store.claim('u\u0000n', 'f1', later(1))).toMatchObject({
        response: { statusCode: 204, body: null },
      });
    });

    it('keys are per scope: the same key of another user is another key', async () => {
      expect((await store.claim('alice\u0000k', 'f1', t0)).kind).toBe('claimed');
      expect((await store.claim('bob\u0000k', 'f2', t0)).kind).toBe('claimed');
      expect(await store.claim('alice\u0000k', 'f2', later(1))).toEqual({ kind: 'mismatch' });
    });

    it('purges keys claimed 24 h or more ago, and only those', async () => {
      await store.claim('u\u0000old', 'f1', t0);
      await store.complete('u\u0000old', claimedAt(0), { statusCode: 201, body: 'old' });
      await store.claim('u\u0000pending', 'f1', later(1));
      await store.claim('u\u0000recent', 'f1', later(60 * 60 * 1000));
      await store.complete('u\u0000recent', claimedAt(60 * 60 * 1000), { statusCode: 201, body: 'recent' });
      expect(await store.purgeExpired(later(IDEMPOTENCY_TTL_MS))).toBe(1);
      expect(await store.purgeExpired(later(IDEMPOTENCY_TTL_MS))).toBe(0);
      expect(await store.claim('u\u0000recent', 'f1', later(IDEMPOTENCY_TTL_MS))).toMatchObject({
        kind: 'replay',
        response: { body: 'recent' },
      });
      expect(await store.claim('u\u0000pending', 'f2', later(IDEMPOTENCY_TTL_MS))).toEqual({
        kind: 'mismatch',
      });
      expect(await store.purgeExpired(later(IDEMPOTENCY_TTL_MS + 1))).toBe(1);
    });

    it('instances on one backing share their keys: a repeat reaching another instance gets the first answer', async () => {
      const other = await fx.open();
      await store.claim('u\u0000k', 'f1', t0);
      expect(await other.claim('u\u0000k', 'f1', later(1))).toEqual({
        kind: 'in-flight',
        since: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      await store.complete('u\u0000k', claimedAt(0), { statusCode: 201, body: { id: 'CHG-001' } });
      expect(await other.claim('u\u0000k', 'f1', later(2))).toEqual({
        kind: 'replay',
        response: { statusCode: 201, body: { id: 'CHG-001' } },
        claimedAt: claimedAt(0),
        aliveAt: claimedAt(0),
      });
      expect(await other.claim('u\u0000k', 'f2', later(3))).toEqual({ kind: 'mismatch' });
    });

    it('of many instances claiming one new key at once, exactly one gets it', async () => {
      const instances = [store, ...(await Promise.all(Array.from({ length: 3 }, () => fx.open())))];
      const claims = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          instances[i % instances.length]!.claim('u\u0000race', 'f1', later(i)),
        ),
      );
      const kinds = claims.map((c) => c.kind);
      expect(kinds.filter((k) => k === 'claimed')).toHaveLength(1);
      expect(kinds.filter((k) => k === 'in-flight')).toHaveLength(23);
      const winner = claims.find((c) => c.kind === 'claimed') as { claimedAt: number };
      expect(claims.filter((c) => c.kind === 'in-flight')).toEqual(
        Array.from({ length: 23 }, () => ({
          kind: 'in-flight',
          since: winner.claimedAt,
          aliveAt: winner.claimedAt,
        })),
      );
    });
  });
};
