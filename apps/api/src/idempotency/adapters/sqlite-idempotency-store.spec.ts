import { IDEMPOTENCY_IN_FLIGHT_LEASE_MS, IDEMPOTENCY_TTL_MS } from '../idempotency-store.port';
import { SqliteIdempotencyStore } from './sqlite-idempotency-store';

describe('SqliteIdempotencyStore (a real SQLite database in memory)', () => {
  const t0 = new Date('2026-11-27T00:00:00.000Z');
  const later = (ms: number) => new Date(t0.getTime() + ms);
  const claimedAt = (ms: number) => t0.getTime() + ms;
  let store: SqliteIdempotencyStore;
  beforeEach(() => {
    store = new SqliteIdempotencyStore(':memory:');
  });
  afterEach(() => store.close());

  it('claims once; the same request waits while in flight, then replays the answer; another request is a mismatch', async () => {
    expect(await store.claim('u\u0000k', 'f1', t0)).toEqual({ kind: 'claimed', claimedAt: claimedAt(0) });
    expect(await store.claim('u\u0000k', 'f1', later(10))).toEqual({
      kind: 'in-flight',
      since: claimedAt(0),
    });
    await store.complete('u\u0000k', claimedAt(0), { statusCode: 201, body: { id: 'CHG-001' } });
    expect(await store.claim('u\u0000k', 'f1', later(20))).toEqual({
      kind: 'replay',
      response: { statusCode: 201, body: { id: 'CHG-001' } },
      claimedAt: claimedAt(0),
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
    expect((await store.claim('u\u0000k', 'f2', later(IDEMPOTENCY_TTL_MS))).kind).toBe('claimed');
  });

  it('a claim left in flight by a process that died is taken over after the lease, only where the caller allows it', async () => {
    await store.claim('u\u0000k', 'f1', t0);
    const reclaim = { reclaimAbandoned: true };
    expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS - 1), reclaim)).toEqual({
      kind: 'in-flight',
      since: claimedAt(0),
    });
    // a creation: nothing can tell whether the first one landed, so the key stays claimed
    expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS))).toEqual({
      kind: 'in-flight',
      since: claimedAt(0),
    });
    expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), reclaim)).toEqual({
      kind: 'claimed',
      claimedAt: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
    });
  });

  it('the first claimant, slow rather than dead, can neither answer for nor free the claim that replaced it', async () => {
    await store.claim('u\u0000k', 'f1', t0);
    await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), { reclaimAbandoned: true });
    await store.release('u\u0000k', claimedAt(0));
    await store.complete('u\u0000k', claimedAt(0), { statusCode: 200, body: 'stale' });
    expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 1))).toEqual({
      kind: 'in-flight',
      since: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
    });
    await store.complete('u\u0000k', claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS), {
      statusCode: 200,
      body: 'new',
    });
    expect(await store.claim('u\u0000k', 'f1', later(IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 2))).toEqual({
      kind: 'replay',
      response: { statusCode: 200, body: 'new' },
      claimedAt: claimedAt(IDEMPOTENCY_IN_FLIGHT_LEASE_MS),
    });
  });

  it('a released claim (the request failed) can be claimed again at once', async () => {
    await store.claim('u\u0000k', 'f1', t0);
    await store.release('u\u0000k', claimedAt(0));
    expect((await store.claim('u\u0000k', 'f1', later(1))).kind).toBe('claimed');
  });
});
