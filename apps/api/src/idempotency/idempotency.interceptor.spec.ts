import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { lastValueFrom, of, throwError } from 'rxjs';
import { AppendOutcomeUnknownError, EventStoreUnavailableError } from '@changeledger/event-store';
import { RequestValidationError } from '../application/application-errors';
import { SqliteIdempotencyStore } from './adapters/sqlite-idempotency-store';
import { IDEMPOTENCY_IN_FLIGHT_LEASE_MS } from './idempotency-store.port';
import { IdempotencyInterceptor, requestFingerprint } from './idempotency.interceptor';
import type { AuthenticatedRequest } from '../auth/auth.guard';

/** The interceptor over a real store; Nest's request context is a stand-in (the framework's, not ours). */
describe('IdempotencyInterceptor', () => {
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

  /** The status the last request was answered with, when the interceptor set one. */
  let answeredStatus: number | undefined;
  const context = (body: unknown, route = '/api/v1/changes', url = route) => {
    const request = {
      method: 'POST',
      url,
      routeOptions: { url: route },
      headers: { 'idempotency-key': 'create-once' },
      body,
      actor: { id: 'u-1', name: 'Ada', roles: ['requester'] },
    };
    const reply = {
      header: () => reply,
      status: (code: number) => {
        answeredStatus = code;
        return reply;
      },
    };
    return {
      switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
      getHandler: () => () => undefined,
    } as unknown as ExecutionContext;
  };
  const interceptor = () => new IdempotencyInterceptor(store, clock, new Reflector());
  const run = (body: unknown, handler: CallHandler, route?: string, url?: string) => {
    answeredStatus = undefined;
    return lastValueFrom(interceptor().intercept(context(body, route, url), handler));
  };

  it('a command that was stored answers its client even when its answer cannot be kept, and its key is not freed for a second creation', async () => {
    let created = 0;
    const handler: CallHandler = {
      handle: () => {
        created += 1;
        // the command is stored; then the key store fails (here: it is closed under the request)
        void store.close();
        return of({ id: 'CHG-001' });
      },
    };
    await expect(run({ title: 'x' }, handler)).resolves.toEqual({ id: 'CHG-001' });
    // reopened: the same request finds its key still claimed (in flight, not freed and not
    // answered), so a retry waits and is refused instead of creating the change again; even
    // long after, as a creation's claim is never taken over
    store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
    const request = context({ title: 'x' }).switchToHttp().getRequest<AuthenticatedRequest>();
    const later = new Date(clock.now().getTime() + IDEMPOTENCY_IN_FLIGHT_LEASE_MS * 2);
    expect(await store.claim('u-1\u0000create-once', requestFingerprint(request), later)).toEqual({
      kind: 'in-flight',
    });
    expect(created).toBe(1);
  });

  it('a command that was refused frees its key: the client may correct it and send it again', async () => {
    await expect(
      run({ title: 'x' }, { handle: () => throwError(() => new RequestValidationError('refused')) }),
    ).rejects.toThrow('refused');
    await expect(run({ title: 'y' }, { handle: () => of({ id: 'CHG-002' }) })).resolves.toEqual({
      id: 'CHG-002',
    });
  });

  it('a creation whose append has an unknown outcome keeps its key: a retry is told so, not created twice', async () => {
    const unknown = new AppendOutcomeUnknownError('changeRequest-CHG-007', {
      cause: new EventStoreUnavailableError('EventStoreDB unreachable'),
    });
    await expect(run({ title: 'x' }, { handle: () => throwError(() => unknown) })).rejects.toBe(unknown);
    let created = 0;
    const retry = await run({ title: 'x' }, { handle: () => ((created += 1), of({ id: 'CHG-008' })) });
    expect(created).toBe(0);
    expect(answeredStatus).toBe(409);
    expect(retry).toMatchObject({ status: 409, code: 'IDEMPOTENCY_OUTCOME_UNKNOWN' });
  });

  it('a creation that failed with nothing stored (the store busy or unreachable before writing) frees its key', async () => {
    for (const failure of [
      new Error('SQLITE_BUSY: database is locked'),
      new EventStoreUnavailableError('EventStoreDB unreachable while reading the counter'),
    ]) {
      await expect(run({ title: 'y' }, { handle: () => throwError(() => failure) })).rejects.toBe(failure);
    }
    expect(await run({ title: 'y' }, { handle: () => of({ id: 'CHG-009' }) })).toEqual({ id: 'CHG-009' });
  });

  it('a command on an existing change frees its key after any failure (its stream tells a retry whether it landed)', async () => {
    const route = '/api/v1/changes/:id/approve';
    const url = '/api/v1/changes/CHG-001/approve';
    await expect(
      run({}, { handle: () => throwError(() => new EventStoreUnavailableError('unreachable')) }, route, url),
    ).rejects.toBeInstanceOf(EventStoreUnavailableError);
    expect(await run({}, { handle: () => of({ id: 'CHG-001', version: 5 }) }, route, url)).toEqual({
      id: 'CHG-001',
      version: 5,
    });
  });
});
