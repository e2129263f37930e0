import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import { ConcurrencyError, SqliteEventStore } from '@changeledger/event-store';
import {
  IDEMPOTENCY_COLLECTION,
  idempotencyDocumentId,
} from '../../apps/api/src/idempotency/adapters/mongodb-idempotency-store';
import { AppHarness, type TestUser, USERS } from './support/app-harness';
import {
  CRITERIA,
  emergencyChange,
  emergencyPlan,
  expectStatus,
  normalChange,
  postImplementationReview,
  reviewAll,
  submit,
} from './support/change-fixtures';

describe('concurrency and idempotency', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it('allocates CHG ids in order, unique and gap-free under 50 concurrent submissions', async () => {
    // one before and one after the fifty: no number is lost around them either
    const numberOf = (id: string) => Number(id.slice(4));
    const first = numberOf((await submit(app, normalChange('low', { title: 'Before the fifty' }))).id);
    const before = await app.store.headPosition();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        app.post('/changes', normalChange('low', { title: `Concurrent change ${i}` })),
      ),
    );
    for (const r of results) expectStatus(r, 201);
    // Gap-free: the 50 numbers that follow the one before...
    const numbers = results.map((r) => numberOf(r.body.id as string)).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 50 }, (_, i) => first + 1 + i));
    expect(numberOf((await submit(app, normalChange('low', { title: 'After the fifty' }))).id)).toBe(
      first + 51,
    );
    // ...allocated in order: a higher number is a later submission in the log
    const byPosition = [...results].sort((a, b) =>
      BigInt(a.body.position as string) < BigInt(b.body.position as string) ? -1 : 1,
    );
    expect(byPosition.map((r) => Number((r.body.id as string).slice(4)))).toEqual(numbers);
    for (const r of results) expect(r.body.id).toMatch(/^CHG-\d{3,}$/);
    // Each id names exactly one stream, holding exactly its own submission.
    for (const r of results) {
      const events = await app.eventsOf(r.body.id as string);
      expect(events.map((e) => e.type)).toEqual(['ChangeSubmitted']);
      expect(events[0].data).toMatchObject({ changeId: r.body.id });
      expect(BigInt(r.body.position as string)).toBe(events[0].position);
      expect(events[0].position).toBeGreaterThan(before);
    }
  });

  it('a template retired while a standard change that uses it is being submitted: the submission is decided again and refused', async () => {
    const template = expectStatus(
      await app.post(
        '/standard-templates',
        {
          name: 'Resize a VM disk',
          description: 'd',
          procedure: ['qm resize'],
          systemsScope: ['pve*', 'switch-core'],
        },
        USERS.lead,
      ),
      201,
    ).body as { id: string };
    // The race, forced: the retire lands after the submission read the template as active and
    // before its stream is created (inside the real store's creating call).
    const store = app.store;
    const appendWithSequence = store.appendWithSequence.bind(store);
    let raced = 0;
    store.appendWithSequence = async (spec) => {
      if (raced++ === 0) {
        expectStatus(
          await app.post(`/standard-templates/${template.id}/retire`, { reason: 'replaced' }, USERS.lead),
          200,
        );
      }
      return appendWithSequence(spec);
    };
    try {
      const before = await store.headPosition();
      const refused = await app.post(
        '/changes',
        normalChange('low', {
          type: 'standard',
          standardTemplateId: template.id,
          implementationPlan: ['qm resize'],
        }),
      );
      expectStatus(refused, 422, 'RULE_VIOLATION');
      expect(JSON.stringify(refused.body)).toMatch(/retired/);
      // the first decision passed and reached the store; the second, on the retired template, did not
      expect(raced).toBe(1);
      // only the retirement was stored
      const stored = await store.readAll({ after: before, limit: 10 });
      expect(stored.map((e) => e.type)).toEqual(['StandardTemplateRetired']);
    } finally {
      store.appendWithSequence = appendWithSequence;
    }
  });

  it('20 concurrent approvals of one change store exactly one approval; the others get 409 or 412', async () => {
    const { id } = await submit(app, normalChange('low'));
    await reviewAll(app, id);
    const { version } = expectStatus(await app.get(`/changes/${id}`), 200).body as { version: number };
    // The race, forced: no approval reaches the store before at least two have decided on the
    // same version, so the store's expected-version check (not a check before it) decides.
    const store = app.store;
    const append = store.append.bind(store);
    const waiting: (() => void)[] = [];
    let held = 0;
    let conflicts = 0;
    store.append = async (...args) => {
      if (args[0] === `changeRequest-${id}` && held++ < 2) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === 2) waiting.forEach((go) => go());
          setTimeout(resolve, 3000);
        });
      }
      try {
        return await append(...args);
      } catch (error) {
        if (error instanceof ConcurrencyError) conflicts++;
        throw error;
      }
    };
    const approvers = [USERS.lead, USERS.manager];
    let results: Awaited<ReturnType<AppHarness['post']>>[];
    try {
      results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          app.post(
            `/changes/${id}/approve`,
            { comment: `approval ${i}` },
            approvers[i % 2],
            i % 3 === 0 ? { 'if-match': `"${version}"` } : {},
          ),
        ),
      );
    } finally {
      delete (store as { append?: unknown }).append;
    }
    expect(waiting).toHaveLength(2);
    expect(conflicts).toBeGreaterThanOrEqual(1); // an append lost at the store
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    // with If-Match on the old version: 412; without: re-run on the approved change, 409
    results.forEach((r, i) => {
      if (r.status === 200) return;
      if (i % 3 === 0) expectStatus(r, 412, 'PRECONDITION_FAILED');
      else expectStatus(r, 409, 'INVALID_STATE');
    });
    const approvals = (await app.eventsOf(id)).filter((e) => e.type === 'ChangeApproved');
    expect(approvals).toHaveLength(1);
  });

  it('If-Match takes a list of versions (any may be current) and *; a malformed one is 400', async () => {
    const { id, version } = await submit(app, normalChange('low'));
    const amend = (ifMatch: string, title: string) =>
      app.request('PATCH', `/changes/${id}`, {
        body: { title },
        as: USERS.requester,
        headers: { 'if-match': ifMatch },
      });
    expectStatus(await amend(`"${version + 1}", "${version + 2}"`, 'a'), 412, 'PRECONDITION_FAILED');
    const listed = expectStatus(await amend(`"${version - 1}", "${version}"`, 'b'), 200);
    expect(listed.headers.get('etag')).toBe(`"${version + 1}"`);
    expectStatus(await amend('*', 'c'), 200); // any current version
    expectStatus(await amend(`"${version + 2}", `, 'c2'), 200); // an empty list element is ignored
    for (const malformed of [
      `"${version + 3}`,
      `${version + 3}"`,
      '"abc"',
      '*, "1"',
      '',
      ' , ',
      `"0${version + 3}"`,
    ]) {
      expectStatus(await amend(malformed, 'd'), 400, 'VALIDATION_FAILED');
    }
    const titles = (await app.eventsOf(id))
      .filter((e) => e.type === 'ChangeAmended')
      .map((e) => e.data.changes);
    expect(titles).toEqual([{ title: 'b' }, { title: 'c' }, { title: 'c2' }]);
  });

  it('If-Match listing the version a concurrent write just made: the loser is re-run on it, not 412', async () => {
    const { id, version } = await submit(app, normalChange('low'));
    // Both load the change before either appends; then "other" appends first.
    const store = app.store;
    const append = store.append.bind(store);
    const arrived = new Map<string, () => void>();
    let gated = true;
    store.append = async (...args) => {
      const title = (args[1][0]?.data as { changes?: { title?: string } }).changes?.title;
      if (gated && args[0] === `changeRequest-${id}` && title) {
        await new Promise<void>((resolve) => {
          arrived.set(title, resolve);
          if (arrived.size === 2) {
            gated = false;
            arrived.get('other')!();
            setTimeout(arrived.get('listed')!, 50);
          }
          setTimeout(resolve, 3000);
        });
      }
      return append(...args);
    };
    try {
      const amend = (title: string, headers: Record<string, string> = {}) =>
        app.request('PATCH', `/changes/${id}`, { body: { title }, as: USERS.requester, headers });
      const [listed, other] = await Promise.all([
        amend('listed', { 'if-match': `"${version}", "${version + 1}"` }),
        amend('other'),
      ]);
      expect(arrived.size).toBe(2);
      expect(expectStatus(other, 200).body).toMatchObject({ version: version + 1 });
      expect(expectStatus(listed, 200).body).toMatchObject({ version: version + 2 });
    } finally {
      delete (store as { append?: unknown }).append;
    }
    const titles = (await app.eventsOf(id))
      .filter((e) => e.type === 'ChangeAmended')
      .map((e) => (e.data.changes as { title: string }).title);
    expect(titles).toEqual(['other', 'listed']);
  });

  it('the same keyed request twice at once with If-Match: the one that lost the race gets the answer, not 412', async () => {
    const { id, version } = await submit(app, normalChange('low'));
    // Both load the change before either appends: the appends wait for each other.
    const store = app.store;
    const append = store.append.bind(store);
    const arrived: (() => void)[] = [];
    store.append = async (...args) => {
      if (args[0] === `changeRequest-${id}`) {
        await new Promise<void>((resolve) => {
          arrived.push(resolve);
          if (arrived.length === 2) arrived.forEach((go) => go());
          setTimeout(resolve, 3000);
        });
      }
      return append(...args);
    };
    try {
      const headers = { 'if-match': `"${version}"`, 'idempotency-key': 'retitle-once' };
      const answers = await Promise.all(
        [1, 2].map(() =>
          app.request('PATCH', `/changes/${id}`, {
            body: { title: 'Retitled' },
            as: USERS.requester,
            headers,
          }),
        ),
      );
      expect(arrived).toHaveLength(2);
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      expect(answers.map((a) => a.headers.get('idempotent-replayed')).sort()).toEqual([null, 'true']);
      expect(answers[0].body).toMatchObject({ version: version + 1 });
      expect(answers[1].body).toMatchObject({ version: version + 1 });
    } finally {
      delete (store as { append?: unknown }).append;
    }
    expect((await app.eventsOf(id)).filter((e) => e.type === 'ChangeAmended')).toHaveLength(1);
  });

  it('the same Idempotency-Key sent twice stores one set of events and answers the same', async () => {
    const headers = { 'idempotency-key': 'submit-vlan-20-once' };
    const first = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    const head = await app.store.headPosition();
    const second = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(first.headers.get('location')).toBe(`/api/v1/changes/${first.body.id as string}`);
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await app.store.headPosition()).toBe(head);

    // On a command too, and concurrently.
    const id = first.body.id as string;
    const stepHeaders = { 'idempotency-key': 'cancel-once' };
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        app.post(`/changes/${id}/cancel`, { reason: 'duplicate' }, USERS.requester, stepHeaders),
      ),
    );
    for (const r of results) expect(r.body).toEqual(results[0].body);
    expect(results[0].status).toBe(200);
    expect((await app.eventsOf(id)).filter((e) => e.type === 'ChangeCancelled')).toHaveLength(1);
  });

  it('keys are per user: another user with the same key is a different request', async () => {
    const headers = { 'idempotency-key': 'shared-key' };
    const a = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    const b = expectStatus(await app.post('/changes', normalChange(), USERS.otherRequester, headers), 201);
    expect(a.body.id).not.toBe(b.body.id);
  });

  it('where the key store does not answer (PATCH; an expired row, another instance, a crash), the stream does: the same request replays, another one is refused', async () => {
    const { id } = await submit(app);
    const headers = { 'idempotency-key': 'amend-once' };
    const amend = (title: string) =>
      app.request('PATCH', `/changes/${id}`, { body: { title }, as: USERS.requester, headers });
    const first = expectStatus(await amend('Amended once'), 200);
    const head = await app.store.headPosition();
    // the same request again: the answer as then, nothing stored (not "an amendment that changes nothing")
    const repeat = expectStatus(await amend('Amended once'), 200);
    expect(repeat.body).toEqual(first.body);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    // the same key with another request: refused, and not silently answered as the first
    expectStatus(await amend('Amended twice'), 409, 'IDEMPOTENCY_KEY_REUSED');
    expect(await app.store.headPosition()).toBe(head);
    expect((await app.eventsOf(id)).filter((e) => e.type === 'ChangeAmended')).toHaveLength(1);
  });

  it('a refusal is the first answer too: the repeat gets it again and appends nothing, even once the command would pass', async () => {
    const { id } = await submit(app);
    const headers = { 'idempotency-key': 'approve-too-early' };
    const approve = (body: Record<string, unknown> = {}, h: Record<string, string> = headers) =>
      app.post(`/changes/${id}/approve`, body, USERS.lead, h);
    const refused = expectStatus(await approve(), 409, 'INVALID_STATE');
    await reviewAll(app, id);
    const head = await app.store.headPosition();
    const repeat = expectStatus(await approve(), 409, 'INVALID_STATE');
    expect(repeat.body).toEqual(refused.body);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    expect(repeat.headers.get('content-type')).toContain('application/problem+json');
    expectStatus(await approve({ comment: 'now' }), 409, 'IDEMPOTENCY_KEY_REUSED');
    expect(await app.store.headPosition()).toBe(head);
    // a new attempt takes a new key
    expectStatus(await approve({}, { 'idempotency-key': 'approve-reviewed' }), 200);
    expect((await app.eventsOf(id)).filter((e) => e.type === 'ChangeApproved')).toHaveLength(1);
  });

  it('a refused command with a key can be corrected and sent again with the same key', async () => {
    const headers = { 'idempotency-key': 'fix-and-retry' };
    expectStatus(
      await app.post('/changes', { ...normalChange(), priority: 'urgent' }, USERS.requester, headers),
      400,
    );
    // A different body under the same key after a failure is a new attempt, not a reuse.
    const created = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    // The key is looked up after validation: a malformed request under a used key is 400 and
    // leaves the stored answer as it was; the right request still gets it.
    const head = await app.store.headPosition();
    expectStatus(
      await app.post('/changes', { ...normalChange(), priority: 'urgent' }, USERS.requester, headers),
      400,
      'VALIDATION_FAILED',
    );
    expectStatus(
      await app.post('/changes', normalChange(), USERS.requester, { ...headers, 'if-match': 'seven' }),
      400,
      'VALIDATION_FAILED',
    );
    const replayed = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    expect(replayed.body).toEqual(created.body);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await app.store.headPosition()).toBe(head);
  });
});

const DEEP_BODY = `{"type":"normal","title":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
// 100,000 keys in descending order (the worst case for a sort that is not n log n), under 1 MiB.
const wideObject = (members: number) =>
  Object.fromEntries(Array.from({ length: members }, (_, i) => [(members - 1 - i).toString(36), 0]));
const WIDE_BODY = JSON.stringify({ ...normalChange(), risk: wideObject(100_000) });

describe('bad input stores nothing', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  /**
   * A POST with a Content-Type and neither a length nor chunks (`curl -X POST -H 'content-type:
   * …'`), which the harness's client cannot send; the whole answer as text.
   */
  const postWithoutLength = async (path: string, as: TestUser, type: string) => {
    const token = await app.token(as);
    const { host, pathname } = new URL(`${app.baseUrl}${path}`);
    const socket = connect({ host: host.split(':')[0], port: Number(host.split(':')[1]) });
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.write(
      `POST ${pathname} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: ${type}\r\nConnection: close\r\n\r\n`,
    );
    await once(socket, 'end');
    return answer;
  };

  it.each([
    ['malformed JSON', { rawBody: '{"type": "normal", ' }],
    ['a JSON array', { rawBody: '[1,2,3]' }],
    ['a JSON string', { rawBody: '"hello"' }],
    ['wrong types', { body: { ...normalChange(), systemsAffected: 'pve1', priority: 3, risk: 'low' } }],
    ['unknown fields', { body: { ...normalChange(), approvedBy: 'me' } }],
    ['an unknown change type', { body: { ...normalChange(), type: 'urgent' } }],
    ['an empty systems list', { body: { ...normalChange(), systemsAffected: [] } }],
    ['a title over 200 characters', { body: { ...normalChange(), title: 'x'.repeat(201) } }],
    ['a title of only spaces', { body: { ...normalChange(), title: '   ' } }],
    ['a plan with a blank step', { body: { ...normalChange(), implementationPlan: ['Drain pve1', ' \t'] } }],
    [
      'a date that is not ISO 8601',
      { body: { ...normalChange(), timeline: { proposedStart: 'tomorrow', estimatedDurationMinutes: 5 } } },
    ],
    [
      'a maintenance window that ends before it starts',
      {
        body: normalChange('low', {
          timeline: {
            proposedStart: '2026-12-01T22:00:00Z',
            estimatedDurationMinutes: 5,
            maintenanceWindow: { start: '2026-12-02T00:00:00Z', end: '2026-12-01T00:00:00Z' },
          },
        }),
      },
    ],
    [
      'emergency details on a normal change',
      { body: { ...normalChange(), emergency: { category: 'security', justification: 'x' } } },
    ],
    [
      'a huge body',
      { rawBody: JSON.stringify({ ...normalChange(), description: 'y'.repeat(2 * 1024 * 1024) }) },
      413,
    ],
    ['a body that is not JSON', { rawBody: 'type=normal', headers: { 'content-type': 'text/plain' } }],
    // 40 KB of brackets: deeper than the recursive walks of a body (fingerprint, class-transformer) go
    ['JSON nested 20,000 levels deep', { rawBody: DEEP_BODY }],
    [
      'JSON nested 20,000 levels deep, with an Idempotency-Key',
      { rawBody: DEEP_BODY, headers: { 'idempotency-key': 'deep' } },
    ],
    // class-transformer dedupes keys with indexOf: 100,000 keys would hold the event loop
    [
      'an object of 100,000 members, with an Idempotency-Key',
      { rawBody: WIDE_BODY, headers: { 'idempotency-key': 'wide' } },
    ],
  ] as const)('%s → 400 VALIDATION_FAILED (413 when too large) and nothing stored', async (...row) => {
    const [, request, status = 400] = row as unknown as [string, object, number?];
    const before = await app.store.headPosition();
    const result = await app.request('POST', '/changes', request as never);
    expectStatus(result, status, status === 413 ? 'PAYLOAD_TOO_LARGE' : 'VALIDATION_FAILED');
    expect(result.headers.get('content-type')).toContain('application/problem+json');
    expect(result.body).toMatchObject({ status });
    expect(await app.store.headPosition()).toBe(before);
  });

  it('a JSON null as the body of a command whose fields are all optional → 400 and nothing stored; no body at all is an empty one', async () => {
    const { id } = await submit(app, normalChange('low'));
    await reviewAll(app, id);
    const before = await app.store.headPosition();
    const refused = expectStatus(
      await app.request('POST', `/changes/${id}/approve`, { as: USERS.lead, rawBody: 'null' }),
      400,
      'VALIDATION_FAILED',
    );
    expect(refused.body).toMatchObject({ detail: 'the body must be a JSON object' });
    expect(await app.store.headPosition()).toBe(before);
    expectStatus(await app.request('POST', `/changes/${id}/approve`, { as: USERS.lead }), 200);
  });

  it('caps review criteria, improvements and template procedure steps at 20,000 characters, as every text', async () => {
    const { id } = await submit(app, normalChange('low'));
    const before = await app.store.headPosition();
    const long = 'x'.repeat(20_001);
    const review = (feasibility: string) => ({
      kind: 'technical',
      verdict: 'approve',
      notes: 'ok',
      criteria: { ...CRITERIA.technical, feasibility },
    });
    const fields = (result: { body: unknown }) =>
      (result.body as { errors?: { field: string }[] }).errors?.map((e) => e.field);
    const tooLong = [
      await app.post(`/changes/${id}/reviews`, review(long), USERS.technical),
      await app.post(
        `/changes/${id}/post-implementation-review`,
        { ...postImplementationReview, improvements: ['Automate the drain', long] },
        USERS.implementer,
      ),
      await app.post(
        '/standard-templates',
        {
          name: 'Resize a VM disk',
          description: 'd',
          procedure: ['qm resize', long],
          systemsScope: ['pve*'],
        },
        USERS.lead,
      ),
    ];
    expect(tooLong.map((r) => [expectStatus(r, 400, 'VALIDATION_FAILED').status, fields(r)])).toEqual([
      [400, ['criteria']],
      [400, ['improvements']],
      [400, ['procedure']],
    ]);
    expect(await app.store.headPosition()).toBe(before);
    // at the limit: recorded
    expectStatus(await app.post(`/changes/${id}/reviews`, review(long.slice(1)), USERS.technical), 200);
  });

  it('refuses a body nested deeper than 32 levels, naming the limit', async () => {
    const deep = await app.request('POST', '/changes', { rawBody: DEEP_BODY } as never);
    expectStatus(deep, 400, 'VALIDATION_FAILED');
    expect(deep.body).toMatchObject({ detail: 'the body nests objects and arrays deeper than 32 levels' });
  });

  it('refuses an object of more than 100 members before anything walks it', async () => {
    expect(WIDE_BODY.length).toBeLessThan(1024 * 1024);
    const before = await app.store.headPosition();
    const wide = await app.request('POST', '/changes', {
      rawBody: WIDE_BODY,
      headers: { 'idempotency-key': 'wide-detail' },
    } as never);
    expectStatus(wide, 400, 'VALIDATION_FAILED');
    expect(wide.body).toMatchObject({ detail: 'an object in the body has more than 100 members' });
    // at the limit the body reaches validation, which names the field
    const atLimit = await app.request('POST', '/changes', {
      rawBody: JSON.stringify({ ...normalChange(), risk: wideObject(100) }),
    } as never);
    expectStatus(atLimit, 400, 'VALIDATION_FAILED');
    expect(JSON.stringify(atLimit.body)).toContain('risk');
    expect(await app.store.headPosition()).toBe(before);
  });

  it('refuses unknown fields on an empty command body and on nested objects', async () => {
    const { id } = await submit(app);
    const before = await app.store.headPosition();
    expectStatus(
      await app.post(`/changes/${id}/cancel`, { reason: 'x', force: true }),
      400,
      'VALIDATION_FAILED',
    );
    expectStatus(
      await app.post(`/changes/${id}/close`, { now: true }, USERS.implementer),
      400,
      'VALIDATION_FAILED',
    );
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, {
        body: { timeline: { proposedStart: '2026-12-01T22:00:00Z', estimatedDurationMinutes: 5, note: 'x' } },
      }),
      400,
      'VALIDATION_FAILED',
    );
    expect(await app.store.headPosition()).toBe(before);
  });

  it('refuses form bodies, other media types and query parameters on commands, storing nothing', async () => {
    const { id } = await submit(app);
    const before = await app.store.headPosition();
    const cancel = (path: string, options: Record<string, unknown>) =>
      app.request('POST', `/changes/${id}/cancel${path}`, options);
    // all of these would otherwise cancel the change
    const form = await cancel('', {
      rawBody: 'reason=dup',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(expectStatus(form, 400, 'VALIDATION_FAILED').body).toMatchObject({
      detail: 'send the body as application/json',
    });
    const xml = await cancel('', {
      rawBody: '<reason>dup</reason>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(expectStatus(xml, 400, 'VALIDATION_FAILED').body).toMatchObject({
      detail: 'send the body as application/json',
    });
    const query = await cancel('?dryRun=true', { body: { reason: 'dup' } });
    expect(expectStatus(query, 400, 'VALIDATION_FAILED').body).toMatchObject({
      errors: [{ field: 'dryRun', message: 'unknown query parameter' }],
    });
    // an empty body read to its end without a length (chunked): Fastify's JSON parser refuses it
    const chunked = await new Promise<{ status: number; body: Record<string, unknown> }>(
      (resolve, reject) => {
        const url = new URL(`${app.baseUrl}/changes/${id}/cancel`);
        void app.token(USERS.requester).then((token) => {
          const request = httpRequest(
            url,
            {
              method: 'POST',
              headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            },
            (response) => {
              let text = '';
              response.setEncoding('utf8');
              response.on('data', (chunk: string) => (text += chunk));
              response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
            },
          );
          request.on('error', reject);
          request.setHeader('transfer-encoding', 'chunked');
          request.end();
        }, reject);
      },
    );
    expect(chunked).toMatchObject({
      status: 400,
      body: { code: 'VALIDATION_FAILED', detail: expect.stringContaining('send {}') },
    });
    expect(await app.store.headPosition()).toBe(before);
    expectStatus(await cancel('', { body: { reason: 'dup' } }), 200);
  });

  it('takes an empty body sent as JSON as no body (generated clients set the type on every call of an optional-body command)', async () => {
    const { id } = await submit(app);
    await reviewAll(app, id);
    // the harness sends Content-Type: application/json with any body, an empty one too
    const approved = await app.request('POST', `/changes/${id}/approve`, { rawBody: '', as: USERS.lead });
    expect(expectStatus(approved, 200).body).toMatchObject({ status: 'approved' });
    // with no length at all, as `curl -X POST -H 'content-type: application/json'` sends it
    const other = await submit(app);
    await reviewAll(app, other.id);
    const answer = await postWithoutLength(`/changes/${other.id}/approve`, USERS.lead, 'application/json');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('"status":"approved"');
    // a command whose body is required: its fields are named, as for {}
    const cancelled = await app.request('POST', `/changes/${id}/cancel`, { rawBody: '' });
    expect(expectStatus(cancelled, 400, 'VALIDATION_FAILED').body).toMatchObject({
      errors: [expect.objectContaining({ field: 'reason' })],
    });
  });

  it('takes an empty body of any other type as no body too (curl -d "", clients that set a type on every call)', async () => {
    const { id } = await submit(app);
    const before = await app.store.headPosition();
    for (const type of ['application/x-www-form-urlencoded', 'application/xml', 'text/plain']) {
      const result = await app.request('POST', `/changes/${id}/approve`, {
        rawBody: '',
        headers: { 'content-type': type },
        as: USERS.lead,
      });
      // the body passed: the answer is the domain's (the change is still in review)
      expectStatus(result, 409, 'INVALID_STATE');
      // and with no length at all
      const answer = await postWithoutLength(`/changes/${id}/approve`, USERS.lead, type);
      expect(answer).toMatch(/^HTTP\/1\.1 409 /);
      expect(answer).toContain('"code":"INVALID_STATE"');
    }
    expect(await app.store.headPosition()).toBe(before);
    await reviewAll(app, id);
    const approved = await postWithoutLength(`/changes/${id}/approve`, USERS.lead, 'application/xml');
    expect(approved).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('the OpenAPI document is valid OpenAPI 3.0 (what client generators check first): its schema, and every $ref resolves', async () => {
    const doc = expectStatus(await app.request('GET', '/openapi.json'), 200).body;
    expect(doc).toMatchObject({ openapi: expect.stringMatching(/^3\.0\./) });
    // resolves every $ref and checks the document against the OpenAPI 3.0 schema
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
    // `$ref`s with siblings: 3.0 ignores the siblings, so a constraint beside one would be lost
    const refsWithSiblings: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (Array.isArray(node)) node.forEach((child, i) => walk(child, `${path}/${i}`));
      else if (node && typeof node === 'object') {
        if ('$ref' in node && Object.keys(node).length > 1) refsWithSiblings.push(path);
        for (const [key, child] of Object.entries(node)) walk(child, `${path}/${key}`);
      }
    };
    walk(doc, '#');
    expect(refsWithSiblings).toEqual([]);
  });

  it('the request schemas say what the API takes: bodies it accepts validate, and an unknown field (refused with 400) does not', async () => {
    const doc = expectStatus(await app.request('GET', '/openapi.json'), 200).body;
    const resolved = (await SwaggerParser.dereference(structuredClone(doc) as never)) as unknown as {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: object }> } }>
      >;
    };
    const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
    const bodyOf = (path: string, method = 'post') =>
      resolved.paths[`/api/v1${path}`][method].requestBody!.content['application/json'].schema;
    const accepted: [string, unknown][] = [
      ['/changes', normalChange('low')],
      ['/changes', emergencyChange(emergencyPlan)],
      ['/changes/{id}/checklist', { item: 'backups-verified', note: 'checked' }],
    ];
    for (const [path, body] of accepted) {
      const valid = ajv.validate(bodyOf(path), body);
      expect({ path, errors: valid ? null : ajv.errors }).toEqual({ path, errors: null });
    }
    const unknownTop = { ...normalChange('low'), notes: 'x' };
    const unknownNested = {
      ...normalChange('low'),
      risk: { ...(normalChange('low').risk as object), owner: 'x' },
    };
    for (const body of [unknownTop, unknownNested]) {
      expect(ajv.validate(bodyOf('/changes'), body)).toBe(false);
      expectStatus(await app.post('/changes', body), 400, 'VALIDATION_FAILED');
    }
    expect(ajv.validate(bodyOf('/changes/{id}/checklist'), { item: 'backups-verified', notes: 'x' })).toBe(
      false,
    );
  });

  it('the reads answer what the OpenAPI document says: each JSON answer matches its documented schema, and the other media types are named', async () => {
    const doc = expectStatus(await app.request('GET', '/openapi.json'), 200).body;
    const resolved = (await SwaggerParser.dereference(structuredClone(doc) as never)) as unknown as {
      paths: Record<string, Record<string, OperationDoc>>;
    };
    interface OperationDoc {
      parameters?: { name: string; in: string }[];
      responses: Record<
        string,
        { headers?: Record<string, unknown>; content?: Record<string, { schema: object }> }
      >;
    }
    // something in every list
    const { id } = await submit(app, normalChange('low'));
    await reviewAll(app, id);
    await submit(app, emergencyChange(emergencyPlan), USERS.implementer);
    expectStatus(
      await app.post(
        '/standard-templates',
        { name: 'Restart a VM', description: 'd', procedure: ['qm reboot'], systemsScope: ['vm-*'] },
        USERS.lead,
      ),
      201,
    );
    const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
    const reads: [string, string][] = [
      ['/changes', '/changes'],
      ['/changes/{id}', `/changes/${id}`],
      ['/changes/{id}/as-of', `/changes/${id}/as-of?at=${encodeURIComponent(new Date().toISOString())}`],
      ['/change-log', '/change-log'],
      ['/approvals/pending', '/approvals/pending'],
      ['/retrospectives/queue', '/retrospectives/queue'],
      ['/standard-templates', '/standard-templates'],
      ['/audit/verify', '/audit/verify'],
      ['/health', '/health'],
    ];
    for (const [template, path] of reads) {
      const answer = expectStatus(await app.get(path, USERS.auditor), 200).body;
      const schema =
        resolved.paths[`/api/v1${template}`].get.responses['200'].content!['application/json'].schema;
      const valid = ajv.validate(schema, answer);
      expect({ path, errors: valid ? null : ajv.errors }).toEqual({ path, errors: null });
      if ('items' in (answer as object))
        expect((answer as { items: unknown[] }).items.length).toBeGreaterThan(0);
    }
    const get = (path: string) => resolved.paths[`/api/v1${path}`].get;
    expect(Object.keys(get('/change-log').responses['200'].content!)).toEqual(
      expect.arrayContaining(['application/json', 'text/csv', 'text/markdown']),
    );
    expect(Object.keys(get('/changes/{id}/evidence').responses['200'].content!)).toContain('text/markdown');
    expect(Object.keys(get('/schedule').responses['200'].content!)).toContain('text/calendar');
    expect(Object.keys(get('/audit/events').responses['200'].content!)).toContain('application/x-ndjson');
    // a change's version as ETag, If-None-Match and 304; commands say when they replay; 503 when to retry
    expect(get('/changes/{id}').responses['200'].headers).toHaveProperty('ETag');
    expect(get('/changes/{id}').responses['304']).toBeDefined();
    expect(get('/changes/{id}').parameters!.map((p) => p.name)).toContain('If-None-Match');
    const approve = resolved.paths['/api/v1/changes/{id}/approve'].post;
    expect(approve.responses['200'].headers).toHaveProperty('Idempotent-Replayed');
    expect(approve.responses['503'].headers).toHaveProperty('Retry-After');
  });

  it('serves the OpenAPI document generated from the DTOs', async () => {
    // like every endpoint but health, behind a token
    expectStatus(await app.request('GET', '/openapi.json', { as: null }), 401, 'UNAUTHENTICATED');
    const doc = expectStatus(await app.request('GET', '/openapi.json'), 200).body as {
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/changes', '/api/v1/changes/{id}/approve']),
    );
    expect(doc.components.schemas.SubmitChangeDto.properties).toHaveProperty('systemsAffected');
    // what POST /changes requires of every type; the rest depends on the type (or is optional)
    expect([...(doc.components.schemas.SubmitChangeDto.required ?? [])].sort()).toEqual(
      ['description', 'priority', 'reason', 'systemsAffected', 'title', 'type'].sort(),
    );
    // PATCH's body: every template field, none required
    const patch = (doc.paths['/api/v1/changes/{id}'] as Record<string, { requestBody?: unknown }>).patch;
    const ref = JSON.stringify(patch.requestBody).match(/#\/components\/schemas\/(\w+)/)?.[1];
    expect(ref).toBeDefined();
    expect(Object.keys(doc.components.schemas[ref!].properties ?? {})).toEqual(
      expect.arrayContaining(['title', 'systemsAffected', 'risk', 'timeline', 'emergency']),
    );
    expect(doc.components.schemas[ref!].required ?? []).toEqual([]);
    expect(doc.components.schemas.ScheduleChangeDto.required).toEqual(
      expect.arrayContaining(['plannedStart', 'plannedEnd', 'maintenanceWindow']),
    );

    // Path, query and header parameters, answers and errors, as a generated client needs them.
    interface Parameter {
      name: string;
      in: string;
      required: boolean;
      schema: { enum?: string[] };
    }
    interface Operation {
      parameters: Parameter[];
      requestBody?: { required: boolean };
      responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
      security: unknown[];
    }
    const operations = Object.entries(doc.paths as Record<string, Record<string, Operation>>).flatMap(
      ([path, item]) => Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );
    expect(operations.length).toBeGreaterThan(25);
    for (const { path, operation } of operations) {
      const inPath = operation.parameters.filter((p) => p.in === 'path').map((p) => p.name);
      expect(inPath).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]));
    }
    const op = (method: string, path: string) =>
      operations.find((o) => o.method === method && o.path === `/api/v1${path}`)!.operation;
    const query = (operation: Operation) =>
      Object.fromEntries(operation.parameters.filter((p) => p.in === 'query').map((p) => [p.name, p]));
    const list = query(op('get', '/changes'));
    expect(Object.keys(list)).toEqual(
      expect.arrayContaining([
        'status',
        'type',
        'riskLevel',
        'system',
        'from',
        'to',
        'limit',
        'cursor',
        'minPosition',
      ]),
    );
    expect(list.status.schema.enum).toContain('awaiting-approval');
    expect(Object.values(list).every((p) => !p.required)).toBe(true);
    expect(query(op('get', '/changes/{id}/as-of')).at.required).toBe(true);
    expect(Object.keys(query(op('get', '/reports/compliance')))).toEqual(
      expect.arrayContaining(['period', 'from', 'to', 'format']),
    );
    // commands: optional Idempotency-Key, If-Match on an existing change, their answer and errors
    const approve = op('post', '/changes/{id}/approve');
    expect(approve.parameters.filter((p) => p.in === 'header').map((p) => p.name)).toEqual([
      'Idempotency-Key',
      'If-Match',
    ]);
    expect(approve.responses['200'].content!['application/json'].schema.$ref).toBe(
      '#/components/schemas/CommandResult',
    );
    expect(Object.keys(approve.responses)).toEqual(
      expect.arrayContaining(['400', '401', '403', '404', '409', '412', '422']),
    );
    expect(approve.responses['409'].content!['application/problem+json'].schema.$ref).toBe(
      '#/components/schemas/Problem',
    );
    expect(op('post', '/changes').responses['201']).toBeDefined();
    expect(op('post', '/changes').requestBody!.required).toBe(true);
    expect(op('post', '/changes/{id}/start').requestBody!.required).toBe(false); // no body needed
    expect(op('get', '/health').security).toEqual([]);
    expect(Object.keys(op('get', '/health').responses)).toEqual(expect.arrayContaining(['200', '503']));
    expect(Object.keys(query(op('get', '/audit/events')))).toEqual(
      expect.arrayContaining(['after', 'cursor', 'limit']),
    );
    expect(op('get', '/changes').security).toEqual([{ bearer: [] }]);
    // a calendar's feed token in the URL, on the schedule only
    expect(op('get', '/schedule').security).toEqual([{ bearer: [] }, { feedToken: [] }]);
    expect(
      (doc as unknown as { components: { securitySchemes: Record<string, unknown> } }).components
        .securitySchemes.feedToken,
    ).toMatchObject({ type: 'apiKey', in: 'query', name: 'access_token' });
    // declared once: as the scheme, not also as a parameter (generators would take it twice)
    expect(query(op('get', '/schedule'))).not.toHaveProperty('access_token');
    expect(query(op('get', '/schedule'))).toHaveProperty('format');
    // the page size's range and default, which a client cannot guess
    expect(list.limit.schema).toMatchObject({
      description: expect.stringMatching(/1 to 500; 50 when left out/),
    });
  });
});

describe('an Idempotency-Key whose submission was never answered (its process stopped)', () => {
  let app: AppHarness;
  let now = Date.parse('2026-11-27T09:00:00.000Z');
  const clock = { now: () => new Date(now) };
  beforeAll(async () => {
    app = await AppHarness.start({}, { clock });
  });
  afterAll(async () => app.close());

  interface KeyEdit {
    state?: 'pending' | 'done';
    statusCode?: number | null;
    body?: unknown;
    claimedAt?: number;
  }
  /**
   * Edits a key's record in the app's key store (SQLite, or MongoDB beside MongoDB read models)
   * the way a process that stopped, or an append of unknown outcome, leaves it. Answers how many
   * records changed.
   */
  const editKey = async (scope: string, edit: KeyEdit): Promise<number> => {
    const body = edit.body === undefined ? undefined : edit.body === null ? null : JSON.stringify(edit.body);
    if (app.config.readModelStore === 'mongodb') {
      const client = await MongoClient.connect(app.config.mongodbUrl!);
      try {
        const set = Object.fromEntries(
          Object.entries({
            state: edit.state,
            statusCode: edit.statusCode,
            body,
            claimedAt: edit.claimedAt,
          }).filter(([, v]) => v !== undefined),
        );
        const keys = client.db(app.config.mongodbDb).collection<{ _id: string }>(IDEMPOTENCY_COLLECTION);
        return (await keys.updateOne({ _id: idempotencyDocumentId(scope) }, { $set: set })).modifiedCount;
      } finally {
        await client.close();
      }
    }
    const columns = { state: edit.state, status_code: edit.statusCode, body, created_at: edit.claimedAt };
    const set = Object.entries(columns).filter(([, v]) => v !== undefined);
    const db = new Database(join(app.dataDir, 'idempotency.sqlite'));
    try {
      return db
        .prepare(
          `UPDATE idempotency SET ${set.map(([column]) => `${column} = ?`).join(', ')} WHERE scope = ?`,
        )
        .run(...set.map(([, v]) => v), scope).changes;
    } finally {
      db.close();
    }
  };
  /** A key's record as the app's key store holds it. */
  const readKey = async (
    scope: string,
  ): Promise<{ state: string; statusCode: number | null } | undefined> => {
    if (app.config.readModelStore === 'mongodb') {
      const client = await MongoClient.connect(app.config.mongodbUrl!);
      try {
        const keys = client
          .db(app.config.mongodbDb)
          .collection<{ _id: string; state: string; statusCode: number | null }>(IDEMPOTENCY_COLLECTION);
        const found = await keys.findOne({ _id: idempotencyDocumentId(scope) });
        return found ? { state: found.state, statusCode: found.statusCode } : undefined;
      } finally {
        await client.close();
      }
    }
    const db = new Database(join(app.dataDir, 'idempotency.sqlite'), { readonly: true });
    try {
      const row = db.prepare('SELECT state, status_code FROM idempotency WHERE scope = ?').get(scope) as
        { state: string; status_code: number | null } | undefined;
      return row ? { state: row.state, statusCode: row.status_code } : undefined;
    } finally {
      db.close();
    }
  };

  /** What a process that stopped before answering leaves: the key pending since `claimedAt`. */
  const leavePending = async (user: { sub: string }, key: string, claimedAt: number) => {
    const scope = `${user.sub}\u0000${key}`;
    expect(await editKey(scope, { state: 'pending', statusCode: null, body: null, claimedAt })).toBe(1);
  };

  it('a repeat after the lease gets the change it created, replayed, and nothing is created again', async () => {
    const headers = { 'idempotency-key': 'submitted-before-the-crash' };
    const first = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    await leavePending(USERS.requester, headers['idempotency-key'], now);
    const head = await app.store.headPosition();
    now += 30_000; // within the lease it may still be running: a repeat waits for it, then 409
    const inProgress = expectStatus(
      await app.post('/changes', normalChange(), USERS.requester, headers),
      409,
      'IDEMPOTENCY_KEY_IN_PROGRESS',
    );
    expect(inProgress.headers.get('retry-after')).toBe('1');
    now += 31_000;
    const repeat = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    expect(repeat.body).toEqual(first.body);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    expect(await app.store.headPosition()).toBe(head);
    // kept: the next repeat is answered from the key store
    expect(await readKey(`${USERS.requester.sub}\u0000${headers['idempotency-key']}`)).toEqual({
      state: 'done',
      statusCode: 201,
    });
    const again = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    expect(again.body).toEqual(first.body);
  }, 20_000);

  it('one stored as "outcome unknown" (EventStoreDB unreachable during its append) that did land is settled to its answer', async () => {
    const headers = { 'idempotency-key': 'landed-though-unknown' };
    const first = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    // what an append whose outcome was unknown leaves: the key answered 409 outcome unknown
    const scope = `${USERS.requester.sub}\u0000${headers['idempotency-key']}`;
    const unknownBody = { status: 409, code: 'IDEMPOTENCY_OUTCOME_UNKNOWN', detail: 'unknown' };
    expect(await editKey(scope, { statusCode: 409, body: unknownBody, claimedAt: now })).toBe(1);
    // within the lease: the stored answer
    expect((await app.post('/changes', normalChange(), USERS.requester, headers)).body).toEqual(unknownBody);
    now += 61_000;
    const settled = expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    expect(settled.body).toEqual(first.body);
    expect(settled.headers.get('idempotent-replayed')).toBe('true');
  }, 20_000);

  it('one that created nothing is IDEMPOTENCY_OUTCOME_UNKNOWN after the lease, and creates nothing', async () => {
    // a claim whose request created nothing (here: refused, 422), then left pending
    const headers = { 'idempotency-key': 'claimed-then-the-crash' };
    const body = { ...normalChange('low'), type: 'standard', standardTemplateId: 'STD-999' };
    expectStatus(await app.post('/changes', body, USERS.requester, headers), 422, 'RULE_VIOLATION');
    await leavePending(USERS.requester, headers['idempotency-key'], now);
    // what the look must not take for it: the same user's submissions since, under another key
    // and under none, and another user's under the same key
    now += 1000;
    await submit(app, normalChange('low'), USERS.requester);
    expectStatus(
      await app.post('/changes', normalChange('low'), USERS.requester, { 'idempotency-key': 'another-key' }),
      201,
    );
    const other = { sub: 'u-omar', name: 'Omar Other', roles: ['requester'] as const };
    expectStatus(await app.post('/changes', body, other, { 'idempotency-key': 'y' }), 422, 'RULE_VIOLATION');
    expectStatus(await app.post('/changes', normalChange('low'), other, headers), 201); // the same key, another user
    const head = await app.store.headPosition();
    now += 61_000;
    const unknown = await app.post('/changes', body, USERS.requester, headers);
    expectStatus(unknown, 409, 'IDEMPOTENCY_OUTCOME_UNKNOWN');
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    // not kept: the first request may still be running against a slow store, and a repeat looks again
    expect(unknown.body).not.toHaveProperty('lookedFor');
    expect(await app.store.headPosition()).toBe(head);
  }, 20_000);
});

/**
 * Several API instances (each its own process in production; here two apps with data folders of
 * their own, on one event log and one MongoDB database): a retry that reaches another instance.
 * Only where the read models are in MongoDB, which holds the shared keys; the embedded default
 * is one instance's.
 */
const onMongoDb = process.env.E2E_READ_MODEL_STORE === 'mongodb';
// Registered in the e2e-mongodb project only (it exists when MONGODB_URL is set).
if (onMongoDb)
  describe('Idempotency-Key across API instances (MongoDB read models)', () => {
    let first: AppHarness;
    let second: AppHarness;
    beforeAll(async () => {
      first = await AppHarness.start();
      const events = join(first.dataDir, 'events.sqlite');
      second = await AppHarness.start(
        { RUN_PROJECTOR: 'false', MONGODB_DB: first.config.mongodbDb },
        { openEventStore: async () => new SqliteEventStore(events) },
      );
    });
    afterAll(async () => {
      await second?.close();
      await first?.close();
    });

    it('a retried submission that reaches another instance is answered as the first was, and creates nothing', async () => {
      expect(second.dataDir).not.toBe(first.dataDir);
      const headers = { 'idempotency-key': 'submit-across-instances' };
      const created = expectStatus(
        await first.post('/changes', normalChange(), USERS.requester, headers),
        201,
      );
      const head = await first.store.headPosition();
      const retried = expectStatus(
        await second.post('/changes', normalChange(), USERS.requester, headers),
        201,
      );
      expect(retried.body).toEqual(created.body);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect(await first.store.headPosition()).toBe(head);
      // the same key with another request is refused on either instance
      expectStatus(
        await second.post('/changes', normalChange('high'), USERS.requester, headers),
        409,
        'IDEMPOTENCY_KEY_REUSED',
      );
    });

    it('a refusal on one instance is the answer on another, even once the command would pass', async () => {
      const { id, position } = await submit(
        first,
        normalChange('low', { title: 'Refused across instances' }),
      );
      const headers = { 'idempotency-key': 'approve-too-early' };
      expectStatus(await first.post(`/changes/${id}/approve`, {}, USERS.lead, headers), 409, 'INVALID_STATE');
      await reviewAll(first, id);
      // nothing was appended by the refusal: only a shared key store can answer this repeat
      const repeat = expectStatus(
        await second.post(`/changes/${id}/approve`, {}, USERS.lead, headers),
        409,
        'INVALID_STATE',
      );
      expect(repeat.headers.get('idempotent-replayed')).toBe('true');
      expect((await first.eventsOf(id)).filter((e) => e.type === 'ChangeApproved')).toHaveLength(0);
      // and an instance that leaves the read models to another process searches them too
      // (what another instance wrote: its position is the one to wait for)
      const found = expectStatus(
        await second.request('GET', `/changes?q=refused%20across&minPosition=${position}`, {
          readYourWrites: false,
        }),
        200,
      ).body as { items: { id: string }[] };
      expect(found.items.map((c) => c.id)).toEqual([id]);
    });

    it('a command retried on another instance at the same moment lands once, and every answer is the same', async () => {
      const { id } = await submit(first, normalChange('low'));
      const headers = { 'idempotency-key': 'cancel-across-instances' };
      const results = await Promise.all(
        [first, second, first, second].map((app) =>
          app.post(`/changes/${id}/cancel`, { reason: 'superseded' }, USERS.requester, headers),
        ),
      );
      for (const r of results)
        expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: results[0].body });
      expect((await first.eventsOf(id)).filter((e) => e.type === 'ChangeCancelled')).toHaveLength(1);
    });
  });
