import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { lastValueFrom, of, throwError } from 'rxjs';
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

  const context = (body: unknown) => {
    const request = {
      method: 'POST',
      url: '/api/v1/changes',
      routeOptions: { url: '/api/v1/changes' },
      headers: { 'idempotency-key': 'create-once' },
      body,
      actor: { id: 'u-1', name: 'Ada', roles: ['requester'] },
    };
    const reply = { header: () => reply, status: () => reply };
    return {
      switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
      getHandler: () => () => undefined,
    } as unknown as ExecutionContext;
  };
  const interceptor = () => new IdempotencyInterceptor(store, clock, new Reflector());
  const run = (body: unknown, handler: CallHandler) =>
    lastValueFrom(interceptor().intercept(context(body), handler));

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

  it('a command that failed frees its key: the client may correct it and send it again', async () => {
    await expect(
      run({ title: 'x' }, { handle: () => throwError(() => new Error('refused')) }),
    ).rejects.toThrow('refused');
    await expect(run({ title: 'y' }, { handle: () => of({ id: 'CHG-002' }) })).resolves.toEqual({
      id: 'CHG-002',
    });
  });
});
