import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { lastValueFrom, of, throwError } from 'rxjs';
import { SqliteIdempotencyStore } from './adapters/sqlite-idempotency-store';
import { IdempotencyInterceptor } from './idempotency.interceptor';

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
    // reopened: the key is still claimed (in flight), so a retry waits and is refused, not re-created
    store = new SqliteIdempotencyStore(join(dir, 'idempotency.sqlite'));
    expect(await store.claim('u-1\u0000create-once', 'whatever', clock.now())).toEqual({ kind: 'mismatch' });
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
