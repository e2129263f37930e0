import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { AppendOutcomeUnknownError, EventStoreUnavailableError } from '@changeledger/event-store';
import {
  forbidden,
  invalidState,
  notFound,
  ruleViolation,
  segregationOfDuties,
  validationFailed,
} from '@changeledger/domain';
import {
  ConcurrencyConflictError,
  IdempotencyKeyInProgressError,
  IdempotencyKeyReusedError,
  IdempotencyOutcomeUnknownError,
  PreconditionFailedError,
  ProjectionLaggingError,
  RequestValidationError,
} from '../application/application-errors';
import { toProblem } from '../http/problem-details.filter';
import { SqliteIdempotencyStore } from './adapters/sqlite-idempotency-store';
import { IDEMPOTENCY_IN_FLIGHT_LEASE_MS } from './idempotency-store.port';
import { commandCallOf } from '../http/command-call.decorator';
import { IdempotentCommands } from './idempotent-commands';

/** Over a real store; Nest's request context is a stand-in (the framework's, not ours). */
describe('IdempotentCommands', () => {
  let dir: string;
  let store: SqliteIdempotencyStore;
  const clock = { now: () => new Date('2026-11-27T01:00:00.000Z') };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-idem-'));
    store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The status the last request was answered with, when a replay set one, and its headers. */
  let answeredStatus: number | undefined;
  let answeredHeaders: Record<string, string> = {};
  const context = (
    body: unknown,
    route = '/api/v1/changes',
    url = route,
    {
      method = 'POST',
      key = 'create-once' as string | null,
      httpCode = undefined as number | undefined,
    } = {},
  ) => {
    const request = {
      method,
      url,
      routeOptions: { url: route },
      headers: key === null ? {} : { 'idempotency-key': key },
      body,
      actor: { id: 'u-1', name: 'Ada', roles: ['requester'] },
    };
    const handler = () => undefined;
    if (httpCode !== undefined) Reflect.defineMetadata(HTTP_CODE_METADATA, httpCode, handler);
    const reply = {
      header: (name: string, value: string) => {
        answeredHeaders[name] = value;
        return reply;
      },
      status: (code: number) => {
        answeredStatus = code;
        return reply;
      },
    };
    return {
      switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
      getHandler: () => handler,
    } as unknown as ExecutionContext;
  };
  const run = (body: unknown, command: () => Promise<unknown>, route?: string, url?: string) => {
    answeredStatus = undefined;
    answeredHeaders = {};
    const call = commandCallOf(undefined, context(body, route, url));
    return new IdempotentCommands(store, clock).run(call.idempotency, command);
  };

  it('a repeat gets the first answer with the status the route answers with, marked as a replay; another body is refused', async () => {
    let runs = 0;
    const approve = (body: unknown) => {
      answeredStatus = undefined;
      answeredHeaders = {};
      const route = '/api/v1/changes/:id/approve';
      const call = commandCallOf(
        undefined,
        context(body, route, '/api/v1/changes/CHG-001/approve', { httpCode: 200 }),
      );
      return new IdempotentCommands(store, clock).run(call.idempotency, async () => ({
        version: (runs += 1),
      }));
    };
    expect(await approve({ notes: 'ok' })).toEqual({ version: 1 });
    expect(answeredStatus).toBeUndefined(); // a first answer is Nest's to send, with the route's code
    expect(await approve({ notes: 'ok' })).toEqual({ version: 1 });
    expect(answeredStatus).toBe(200);
    expect(answeredHeaders).toEqual({ 'Idempotent-Replayed': 'true' });
    await expect(approve({ notes: 'other' })).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    expect(runs).toBe(1);
  });

  it('without a key, or on a method other than POST, nothing is claimed; the key still goes into the events', async () => {
    const plain = commandCallOf(undefined, context({ title: 'x' }, undefined, undefined, { key: null }));
    expect(plain.idempotency).toBeUndefined();
    expect(plain.options).not.toHaveProperty('idempotencyKey');
    const patch = commandCallOf(
      undefined,
      context({ title: 'x' }, '/api/v1/changes/:id', '/api/v1/changes/CHG-001', { method: 'PATCH' }),
    );
    expect(patch.idempotency).toBeUndefined();
    expect(patch.options).toMatchObject({
      idempotencyKey: 'create-once',
      requestFingerprint: expect.any(String),
    });
    const post = commandCallOf(undefined, context({ title: 'x' }));
    expect(post.idempotency).toMatchObject({
      scope: 'u-1\u0000create-once',
      statusCode: 201,
      reclaimAbandoned: false,
    });
    let runs = 0;
    for (let i = 0; i < 2; i++)
      await new IdempotentCommands(store, clock).run(undefined, async () => (runs += 1));
    expect(runs).toBe(2);
  });

  it('a command that was stored answers its client even when its answer cannot be kept, and its key is not freed for a second creation', async () => {
    let created = 0;
    const command = async () => {
      created += 1;
      // the command is stored; then the key store fails (here: it is closed under the request)
      void store.close();
      return { id: 'CHG-001' };
    };
    await expect(run({ title: 'x' }, command)).resolves.toEqual({ id: 'CHG-001' });
    // reopened: the same request finds its key still claimed (in flight, not freed and not
    // answered), so a retry is refused (after the lease: outcome unknown) instead of creating the
    // change again; even long after, as a creation's claim is never taken over
    store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
    const { fingerprint } = commandCallOf(undefined, context({ title: 'x' })).idempotency!;
    const later = new Date(clock.now().getTime() + IDEMPOTENCY_IN_FLIGHT_LEASE_MS * 2);
    expect(await store.claim('u-1\u0000create-once', fingerprint, later)).toMatchObject({
      kind: 'in-flight',
    });
    expect(created).toBe(1);
  });

  it('a repeat while the first request still runs waits for its answer, and past the wait is told to come back (IDEMPOTENCY_KEY_IN_PROGRESS), not that nothing was stored', async () => {
    let finish!: (value: { id: string }) => void;
    let created = 0;
    const first = run({ title: 'x' }, () => {
      created += 1;
      return new Promise<{ id: string }>((resolve) => (finish = resolve));
    });
    const commands = new IdempotentCommands(store, clock);
    commands.inFlightWaitMs = 100;
    const repeat = () => {
      const call = commandCallOf(undefined, context({ title: 'x' }));
      return commands.run(call.idempotency, async () => {
        created += 1;
        return { id: 'CHG-002' };
      });
    };
    const early = await repeat().catch((error: unknown) => toProblem(error));
    expect(early).toMatchObject({ status: 409, code: 'IDEMPOTENCY_KEY_IN_PROGRESS' });
    expect((early as { detail: string }).detail).toMatch(
      /still being processed .*send the same request with the same key again/,
    );
    // one that comes while the first finishes gets its answer
    const waiting = repeat();
    finish({ id: 'CHG-001' });
    await expect(first).resolves.toEqual({ id: 'CHG-001' });
    await expect(waiting).resolves.toEqual({ id: 'CHG-001' });
    expect(created).toBe(1);
  });

  it('a creation still running past the lease (a slow event store) keeps its claim alive: a repeat is told to come back, not that the outcome is unknown', async () => {
    let now = clock.now().getTime();
    const movingClock = { now: () => new Date(now) };
    const commands = () => {
      const made = new IdempotentCommands(store, movingClock);
      made.renewEveryMs = 10;
      made.inFlightWaitMs = 50;
      return made;
    };
    let finish!: (value: { id: string }) => void;
    const call = () => commandCallOf(undefined, context({ title: 'x' })).idempotency!;
    const first = commands().run(call(), () => new Promise<{ id: string }>((resolve) => (finish = resolve)));
    // 50 s on, still running (it renews its claim), then 70 s on a repeat comes: past a lease
    // from the claim, within one from its last renewal
    now += 50_000;
    await new Promise((resolve) => setTimeout(resolve, 50));
    now += 20_000;
    let looked = 0;
    const repeat = commands().run(
      {
        ...call(),
        findAbandonedCreation: async () => {
          looked += 1;
          return undefined; // not created yet: it still runs
        },
      },
      async () => ({ id: 'never' }),
    );
    await expect(repeat).rejects.toBeInstanceOf(IdempotencyKeyInProgressError);
    expect(looked).toBe(0);
    finish({ id: 'CHG-001' });
    await expect(first).resolves.toEqual({ id: 'CHG-001' });
    await expect(commands().run(call(), async () => ({ id: 'never' }))).resolves.toEqual({ id: 'CHG-001' });
  });

  it("a creation's claim left pending past the lease (its process died) answers IDEMPOTENCY_OUTCOME_UNKNOWN at once, and creates nothing", async () => {
    const { fingerprint } = commandCallOf(undefined, context({ title: 'x' })).idempotency!;
    // what a process that died between claiming and answering leaves behind
    await store.claim('u-1\u0000create-once', fingerprint, clock.now());
    let created = 0;
    const command = async () => ({ id: `CHG-00${(created += 1)}` });
    // within the lease it may still be running: a repeat polls its claim (for 5 s) for an answer
    const claims = jest.spyOn(store, 'claim'); // calls through: counts the polls
    const leaseOver = IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 1;
    const after = new IdempotentCommands(store, { now: () => new Date(clock.now().getTime() + leaseOver) });
    const answer = after.run(commandCallOf(undefined, context({ title: 'x' })).idempotency, command);
    await expect(answer).rejects.toBeInstanceOf(IdempotencyOutcomeUnknownError);
    await expect(answer).rejects.toThrow(/has had no recorded answer for over a minute/);
    expect(toProblem(await answer.catch((e: unknown) => e))).toMatchObject({
      status: 409,
      code: 'IDEMPOTENCY_OUTCOME_UNKNOWN',
    });
    expect(claims).toHaveBeenCalledTimes(1); // answered at once, without waiting for an answer
    claims.mockRestore();
    expect(created).toBe(0);

    // a look that fails (read models lagging) is that failure: the same key may be sent again
    const lagging = new ProjectionLaggingError('the read models are behind');
    const request = {
      ...commandCallOf(undefined, context({ title: 'x' })).idempotency!,
      findAbandonedCreation: () => Promise.reject(lagging),
    };
    await expect(after.run(request, command)).rejects.toBe(lagging);
    // found: its answer, kept for the next repeat, which needs no look
    let looks = 0;
    const found = { ...request, findAbandonedCreation: async () => ({ id: 'CHG-007', looks: ++looks }) };
    await expect(after.run(found, command)).resolves.toEqual({ id: 'CHG-007', looks: 1 });
    await expect(after.run(found, command)).resolves.toEqual({ id: 'CHG-007', looks: 1 });
    expect([looks, created]).toEqual([1, 0]);
  });

  it('a request refused as malformed frees its key: the client may correct it and send it again', async () => {
    for (const malformed of [
      new RequestValidationError('refused'),
      validationFailed('criteria missing: feasibility', 'review-criteria'),
    ]) {
      await expect(run({ title: 'x' }, () => Promise.reject(malformed))).rejects.toBe(malformed);
    }
    await expect(run({ title: 'y' }, async () => ({ id: 'CHG-002' }))).resolves.toEqual({
      id: 'CHG-002',
    });
  });

  it('a decided refusal is the first answer: a repeat gets it again, marked as a replay, and runs nothing', async () => {
    const route = '/api/v1/changes/:id/approve';
    const url = '/api/v1/changes/CHG-001/approve';
    for (const refusal of [
      invalidState('change CHG-001 is in-review'),
      forbidden('approving needs the role infrastructure-lead'),
      segregationOfDuties('nobody approves a change they requested', 'requester-not-approver'),
      notFound('change CHG-001 does not exist'),
      ruleViolation('the checklist is incomplete', 'checklist-complete'),
    ]) {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
      await expect(run({}, () => Promise.reject(refusal), route, url)).rejects.toBe(refusal);
      let ran = 0;
      const repeat = await run({}, async () => ((ran += 1), { id: 'CHG-001', version: 5 }), route, url);
      expect(ran).toBe(0);
      expect(repeat).toEqual(toProblem(refusal));
      expect(answeredStatus).toBe(toProblem(refusal).status);
      expect(answeredHeaders).toMatchObject({
        'Idempotent-Replayed': 'true',
        'Content-Type': 'application/problem+json',
      });
      // and the key is spent: another request under it is refused, not run
      await expect(
        run({ comment: 'now' }, async () => ({ id: 'CHG-001' }), route, url),
      ).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    }
  });

  it('a refusal or a failure reaches its client even when the key store fails under it', async () => {
    for (const failure of [
      invalidState('change CHG-001 is in-review'),
      new ConcurrencyConflictError('another command won, three times'),
    ]) {
      const command = () => {
        void store.close(); // the key store fails after the claim: neither complete nor release work
        return Promise.reject(failure);
      };
      await expect(run({}, command)).rejects.toBe(failure);
      rmSync(dir, { recursive: true, force: true }); // a fresh key store for the next case
      store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
    }
  });

  it('a conflict or a failed precondition decides nothing: the key is freed for the same request', async () => {
    const route = '/api/v1/changes/:id/approve';
    const url = '/api/v1/changes/CHG-001/approve';
    for (const failure of [
      new ConcurrencyConflictError('another command won, three times'),
      new PreconditionFailedError([5], 6),
    ]) {
      await expect(run({}, () => Promise.reject(failure), route, url)).rejects.toBe(failure);
    }
    expect(await run({}, async () => ({ id: 'CHG-001', version: 6 }), route, url)).toEqual({
      id: 'CHG-001',
      version: 6,
    });
  });

  it('a creation whose append has an unknown outcome keeps its key: a retry is told so, not created twice', async () => {
    const unknown = new AppendOutcomeUnknownError('changeRequest-CHG-007', {
      cause: new EventStoreUnavailableError('EventStoreDB unreachable'),
    });
    await expect(run({ title: 'x' }, () => Promise.reject(unknown))).rejects.toBe(unknown);
    let created = 0;
    const retry = await run({ title: 'x' }, async () => ((created += 1), { id: 'CHG-008' }));
    expect(created).toBe(0);
    expect(answeredStatus).toBe(409);
    expect(retry).toMatchObject({ status: 409, code: 'IDEMPOTENCY_OUTCOME_UNKNOWN' });

    const request = commandCallOf(undefined, context({ title: 'x' })).idempotency!;
    // within the lease no look is made
    const early = { ...request, findAbandonedCreation: () => Promise.reject(new Error('looked too early')) };
    await expect(
      new IdempotentCommands(store, clock).run(early, async () => ({ id: 'never' })),
    ).resolves.toMatchObject({
      code: 'IDEMPOTENCY_OUTCOME_UNKNOWN',
    });
    // after the lease the creation is looked for, once: a failed look keeps nothing (503, the
    // same key may come again); found, its answer replaces the stored one (the append had
    // landed after all) and is replayed with the creation's status
    const leaseOver = new IdempotentCommands(store, {
      now: () => new Date(clock.now().getTime() + IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 1),
    });
    const lagging = new ProjectionLaggingError('the read models are behind');
    await expect(
      leaseOver.run({ ...request, findAbandonedCreation: () => Promise.reject(lagging) }, async () => ({})),
    ).rejects.toBe(lagging);
    let looks = 0;
    const found = { ...request, findAbandonedCreation: async () => ((looks += 1), { id: 'CHG-007' }) };
    answeredStatus = undefined;
    await expect(leaseOver.run(found, async () => ({ id: 'never' }))).resolves.toEqual({ id: 'CHG-007' });
    expect(answeredStatus).toBe(201);
    await expect(leaseOver.run(found, async () => ({ id: 'never' }))).resolves.toEqual({ id: 'CHG-007' });
    expect([looks, created]).toEqual([1, 0]); // settled: the next repeat replays it without looking
  });

  it('a stored "outcome unknown" whose creation a look does not find is kept as looked for: never looked for again', async () => {
    const unknown = new AppendOutcomeUnknownError('changeRequest-CHG-008');
    await expect(run({ title: 'n' }, () => Promise.reject(unknown))).rejects.toBe(unknown);
    const request = commandCallOf(undefined, context({ title: 'n' })).idempotency!;
    const leaseOver = new IdempotentCommands(store, {
      now: () => new Date(clock.now().getTime() + IDEMPOTENCY_IN_FLIGHT_LEASE_MS + 1),
    });
    let looks = 0;
    const notFound = { ...request, findAbandonedCreation: async () => ((looks += 1), undefined) };
    const answer = await leaseOver.run(notFound, async () => ({ id: 'never' }));
    expect(answer).toMatchObject({
      status: 409,
      code: 'IDEMPOTENCY_OUTCOME_UNKNOWN',
      lookedFor: expect.any(String),
    });
    expect(answeredStatus).toBe(409);
    // a later look would find it? It is not asked again: the answer stands
    const wouldFind = { ...request, findAbandonedCreation: async () => ((looks += 1), { id: 'CHG-008' }) };
    await expect(leaseOver.run(wouldFind, async () => ({ id: 'never' }))).resolves.toEqual(answer);
    expect(looks).toBe(1);
  });

  it('a creation that failed with nothing stored (the store busy or unreachable before writing) frees its key', async () => {
    for (const failure of [
      new Error('SQLITE_BUSY: database is locked'),
      new EventStoreUnavailableError('EventStoreDB unreachable while reading the counter'),
    ]) {
      await expect(run({ title: 'y' }, () => Promise.reject(failure))).rejects.toBe(failure);
    }
    expect(await run({ title: 'y' }, async () => ({ id: 'CHG-009' }))).toEqual({ id: 'CHG-009' });
  });

  it('a command on an existing change frees its key after any failure (its stream tells a retry whether it landed)', async () => {
    const route = '/api/v1/changes/:id/approve';
    const url = '/api/v1/changes/CHG-001/approve';
    await expect(
      run({}, () => Promise.reject(new EventStoreUnavailableError('unreachable')), route, url),
    ).rejects.toBeInstanceOf(EventStoreUnavailableError);
    expect(await run({}, async () => ({ id: 'CHG-001', version: 5 }), route, url)).toEqual({
      id: 'CHG-001',
      version: 5,
    });
  });
});
