import { connect } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { signToken } from '@changeledger/platform';
import { AppHarness, onClientDouble, type TestUser, USERS } from './support/app-harness';
import { itWhen } from '../support/skip';
import {
  CRITERIA,
  emergencyChange,
  expectStatus,
  normalChange,
  prepare,
  reviewAll,
  submit,
} from './support/change-fixtures';

const problemShape = {
  type: expect.stringMatching(/^https:\/\//),
  title: expect.any(String),
  status: expect.any(Number),
  detail: expect.any(String),
  code: expect.any(String),
};

describe('every error code of the contract, as problem+json', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it('400 VALIDATION_FAILED names each bad field, including unknown and nested ones', async () => {
    const result = expectStatus(
      await app.post('/changes', {
        ...normalChange(),
        priority: 'urgent',
        risk: { level: 'low', potentialImpact: 'x', mitigation: 'y', extra: 1 },
        colour: 'red',
      }),
      400,
      'VALIDATION_FAILED',
    );
    expect(result.headers.get('content-type')).toContain('application/problem+json');
    expect(result.body).toMatchObject(problemShape);
    const fields = (result.body.errors as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(['colour', 'priority', 'risk.extra']);
  });

  it('400 VALIDATION_FAILED for a missing or null required field, a null optional one, and a bad "later" field of an emergency; nothing stored', async () => {
    const headBefore = await app.store.headPosition();
    const fieldsOf = (body: Record<string, unknown>) =>
      (body.errors as { field: string }[]).map((e) => e.field).sort();
    const { title: _t, ...untitled } = normalChange();
    const refused: [Record<string, unknown>, string[]][] = [
      [untitled, ['title']],
      [emergencyChange({ systemsAffected: null, description: null }), ['description', 'systemsAffected']],
      [emergencyChange({ priority: undefined, emergency: undefined }), ['emergency', 'priority']],
      // an emergency may leave the plan for later; what it sends is checked like any other
      [
        emergencyChange({
          implementationPlan: 'x',
          risk: { level: 'extreme', potentialImpact: 'p', mitigation: 'm', foo: 1 },
        }),
        ['implementationPlan', 'risk.foo', 'risk.level'],
      ],
      [emergencyChange({ rollbackPlan: null }), ['rollbackPlan']],
      [normalChange('low', { standardTemplateId: null }), ['standardTemplateId']],
      // text that shows nothing is no text: zero-width space, braille blank, a Hangul filler
      [
        normalChange('low', { title: '\u200b', rollbackPlan: '\u2800', implementationPlan: ['\u3164'] }),
        ['implementationPlan', 'rollbackPlan', 'title'],
      ],
    ];
    for (const [body, fields] of refused) {
      const result = expectStatus(await app.post('/changes', body), 400, 'VALIDATION_FAILED');
      expect(fieldsOf(result.body)).toEqual(fields);
    }
    expect(await app.store.headPosition()).toBe(headBefore);
    const { id } = await submit(app);
    const afterSubmit = await app.store.headPosition();
    for (const [path, body, as] of [
      [`/changes/${id}`, { systemsAffected: null }, USERS.requester],
      [`/changes/${id}`, { risk: null }, USERS.requester],
    ] as const) {
      const result = expectStatus(await app.request('PATCH', path, { body, as }), 400, 'VALIDATION_FAILED');
      expect(fieldsOf(result.body)).toEqual(Object.keys(body));
    }
    const review = expectStatus(
      await app.post(
        `/changes/${id}/reviews`,
        { kind: 'technical', verdict: 'approve', notes: null, criteria: CRITERIA.technical },
        USERS.technical,
      ),
      400,
      'VALIDATION_FAILED',
    );
    expect(fieldsOf(review.body)).toEqual(['notes']);
    expect(await app.store.headPosition()).toBe(afterSubmit);
  });

  it('400 VALIDATION_FAILED for times that are not an instant: week dates, no zone, no such day, past 9999 in UTC', async () => {
    for (const from of ['2026-W05', '2026-001', '2026-11-01T10:00', '2026-02-30']) {
      expectStatus(await app.get(`/changes?from=${from}`), 400, 'VALIDATION_FAILED'); // 2026-W05 was a 500
    }
    expectStatus(await app.get('/changes?from=2026-11-01&to=2026-11-02T00:00:00%2B02:00'), 200);
    expectStatus(await app.get('/changes?from=2026-01-01T00:00:00.123456789Z'), 200); // was a 500
    const { id } = await submit(app);
    expectStatus(await app.get(`/changes/${id}/as-of?at=2026-W05`, USERS.auditor), 400, 'VALIDATION_FAILED');
    // to=9999-12-31 ("no end"): stored times compare as UTC text, which past 9999 sorted first
    const listed = expectStatus(await app.get('/changes?to=9999-12-31&limit=500'), 200).body as {
      items: { id: string }[];
    };
    expect(listed.items.map((c) => c.id)).toContain(id);
    expectStatus(await app.get('/changes?from=9999-12-31T23:00:00-05:00'), 400, 'VALIDATION_FAILED');
    for (const proposedStart of [
      '2026-12-01T22:00:00',
      '2026-12-01',
      '2026-12-01T22:00:00.000+25:00',
      '9999-12-31T23:00:00-05:00', // in UTC the year 10000: it cannot be kept as UTC text
    ]) {
      const result = expectStatus(
        await app.post(
          '/changes',
          normalChange('low', { timeline: { proposedStart, estimatedDurationMinutes: 30 } }),
        ),
        400,
        'VALIDATION_FAILED',
      );
      expect((result.body.errors as { field: string }[]).map((e) => e.field)).toEqual([
        'timeline.proposedStart',
      ]);
    }
    expectStatus(
      await app.post(
        '/changes',
        normalChange('low', {
          timeline: { proposedStart: '2026-12-01T22:00:00+01:00', estimatedDurationMinutes: 30 },
        }),
      ),
      201,
    );
  });

  it('400 VALIDATION_FAILED for control characters in text (they would reach terminals and exports); nothing stored', async () => {
    const before = await app.store.headPosition();
    const result = expectStatus(
      await app.post('/changes', normalChange('low', { description: 'clear\u001b[2Jscreen' })),
      400,
      'VALIDATION_FAILED',
    );
    expect(result.body.detail).toMatch(/description contains the control character U\+001B/);
    expect(await app.store.headPosition()).toBe(before);
    // tab, line feed and carriage return are text
    expectStatus(await app.post('/changes', normalChange('low', { description: 'one\r\n\ttwo' })), 201);
  });

  it('400 VALIDATION_FAILED for review criteria that do not match the review kind', async () => {
    const { id } = await submit(app);
    const result = expectStatus(
      await app.post(
        `/changes/${id}/reviews`,
        { kind: 'technical', verdict: 'approve', notes: 'n', criteria: CRITERIA.business },
        USERS.technical,
      ),
      400,
      'VALIDATION_FAILED',
    );
    expect(result.body.detail).toContain('feasibility');
    // the decider's field list reaches the client, as the DTOs' does
    expect(result.body.errors).toEqual([
      { field: 'criteria.feasibility', message: 'is required' },
      { field: 'criteria.impactAssessment', message: 'is required' },
      { field: 'criteria.riskEvaluation', message: 'is required' },
      ...Object.keys(CRITERIA.business).map((key) => ({
        field: `criteria.${key}`,
        message: 'not part of a technical review',
      })),
    ]);
  });

  it('400 VALIDATION_FAILED names the field of a rule the decider checks: a schedule that ends before it starts', async () => {
    const { id } = await submit(app);
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.lead), 200);
    const result = expectStatus(
      await app.post(
        `/changes/${id}/schedule`,
        {
          plannedStart: '2026-12-01T23:00:00Z',
          plannedEnd: '2026-12-01T22:00:00Z',
          maintenanceWindow: false,
        },
        USERS.implementer,
      ),
      400,
      'VALIDATION_FAILED',
    );
    expect(result.body).toMatchObject({
      rule: 'time-range',
      errors: [{ field: 'plannedEnd', message: 'must come after the start' }],
    });
    expect((await app.get(`/changes/${id}`)).body).toMatchObject({ status: 'approved' });
  });

  it('401 UNAUTHENTICATED: no token, bad signature, expired, garbage', async () => {
    for (const headers of [
      {} as Record<string, string>,
      {
        authorization: `Bearer ${await signToken(USERS.requester, 'another-secret-that-is-long-enough-000000000')}`,
      },
      {
        authorization: `Bearer ${await app.token(USERS.requester, { expiresAt: Math.floor(Date.now() / 1000) - 60 })}`,
      },
      { authorization: 'Bearer not.a.jwt' },
      { authorization: 'Basic dXNlcjpwYXNz' },
    ]) {
      const result = expectStatus(
        await app.request('GET', '/changes/CHG-001', { as: null, headers }),
        401,
        'UNAUTHENTICATED',
      );
      expect(result.body).toMatchObject(problemShape);
    }
    expectStatus(await app.request('GET', '/health', { as: null }), 200);
  });

  it('401 UNAUTHENTICATED for a command without a valid token, before its body is looked at', async () => {
    const before = await app.store.headPosition();
    const deep = `{"type":"normal","title":${'['.repeat(100)}${']'.repeat(100)}}`;
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer not.a.jwt' }]) {
      for (const request of [
        { rawBody: '{"type": "normal", ' }, // malformed
        { rawBody: 'reason=x', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' } },
        { rawBody: deep },
        { body: normalChange() },
      ]) {
        const result = await app.request('POST', '/changes', { as: null, headers, ...request });
        expectStatus(result, 401, 'UNAUTHENTICATED');
        expect(result.body).toMatchObject(problemShape);
        // closed after the answer: the body it did not read is not drained, however long
        expect(result.headers.get('connection')).toBe('close');
      }
      expectStatus(
        await app.request('PATCH', '/changes/CHG-001', { as: null, headers, rawBody: '{' }),
        401,
        'UNAUTHENTICATED',
      );
    }
    // no such route: still 404, with or without a token, and before its body is read (a
    // malformed one is not a 400); a path that takes other methods: 405 with `Allow`, the same way
    expectStatus(await app.request('POST', '/nothing-here', { as: null, body: {} }), 404, 'NOT_FOUND');
    expectStatus(await app.request('POST', '/nothing-here', { rawBody: '{' }), 404, 'NOT_FOUND');
    for (const as of [undefined, null]) {
      const put = await app.request('PUT', '/changes/CHG-001', { as, rawBody: '{' });
      expectStatus(put, 405, 'METHOD_NOT_ALLOWED');
      expect(put.headers.get('allow')).toBe('GET, HEAD, PATCH');
      expect(put.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(put.body).toMatchObject({ ...problemShape, detail: expect.stringContaining('PATCH') });
    }
    // a body on its way is not read (nor drained): the connection is closed after the answer
    expect((await app.request('PUT', '/changes/CHG-001', { body: {} })).headers.get('connection')).toBe(
      'close',
    );
    // a URL the router cannot read, or an id it never matches, answered as for any method
    expectStatus(await app.request('PUT', '/changes/%ZZ', { body: {} }), 400, 'VALIDATION_FAILED');
    expectStatus(await app.request('PUT', `/changes/CHG-${'1'.repeat(100)}`, { body: {} }), 404, 'NOT_FOUND');
    // escapes are read as the router reads them
    expect((await app.request('PUT', '/%63hanges/CHG-001', { body: {} })).status).toBe(405);
    const deleteChange = await app.request('DELETE', '/changes/CHG-001/approve', {});
    expectStatus(deleteChange, 405, 'METHOD_NOT_ALLOWED');
    expect(deleteChange.headers.get('allow')).toBe('POST');
    // the health endpoint is public: a wrong method there is told so without a token too
    const postHealth = await app.request('POST', '/health', { as: null, body: {} });
    expectStatus(postHealth, 405, 'METHOD_NOT_ALLOWED');
    expect(postHealth.headers.get('allow')).toBe('GET, HEAD');
    expect(await app.store.headPosition()).toBe(before);
  });

  it('a URL the router cannot read is answered as problem+json too: a bad percent-escape 400, an over-long id 404', async () => {
    for (const [method, path] of [
      ['GET', '/changes/%FF'],
      ['POST', '/changes/%E0%A4%A/approve'],
    ] as const) {
      const answer = await app.request(method, path, {
        as: null,
        ...(method === 'POST' ? { body: {} } : {}),
      });
      expectStatus(answer, 400, 'VALIDATION_FAILED');
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      expect(answer.body).toMatchObject(problemShape);
    }
    const long = await app.get(`/changes/CHG-${'1'.repeat(100)}`);
    expectStatus(long, 404, 'NOT_FOUND');
    expect(long.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('403 FORBIDDEN when the role is missing (an auditor changes nothing)', async () => {
    expectStatus(await app.post('/changes', normalChange(), USERS.auditor), 403, 'FORBIDDEN');
    expectStatus(await app.post('/changes', normalChange(), USERS.implementer), 403, 'FORBIDDEN');
    const { id } = await submit(app);
    expectStatus(await app.post(`/changes/${id}/cancel`, { reason: 'no' }, USERS.auditor), 403, 'FORBIDDEN');
    expectStatus(
      await app.post(`/changes/${id}/cancel`, { reason: 'not mine' }, USERS.otherRequester),
      403,
      'FORBIDDEN',
    );
  });

  it('403 SEGREGATION_OF_DUTIES: nobody reviews or approves their own request; the approver does not implement', async () => {
    const selfReviewer = {
      sub: USERS.requester.sub,
      name: USERS.requester.name,
      roles: ['requester', 'technical-reviewer'] as const,
    };
    const { id } = await submit(app, normalChange('low'), selfReviewer);
    let events = await app.eventCount();
    expectStatus(
      await app.post(
        `/changes/${id}/reviews`,
        { kind: 'technical', verdict: 'approve', notes: 'mine', criteria: CRITERIA.technical },
        selfReviewer,
      ),
      403,
      'SEGREGATION_OF_DUTIES',
    );
    expect(await app.eventCount()).toBe(events); // refused: nothing stored
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.leadImplementer), 200);
    await prepare(app, id, false);
    events = await app.eventCount();
    expectStatus(
      await app.post(`/changes/${id}/start`, {}, USERS.leadImplementer),
      403,
      'SEGREGATION_OF_DUTIES',
    );
    expect(await app.eventCount()).toBe(events);
    expectStatus(await app.post(`/changes/${id}/start`, {}, USERS.implementer), 200);
  });

  it('404 NOT_FOUND for a change or template that does not exist', async () => {
    expectStatus(await app.get('/changes/CHG-99999'), 404, 'NOT_FOUND');
    expectStatus(await app.get('/changes/not-an-id'), 404, 'NOT_FOUND');
    const events = await app.eventCount();
    expectStatus(await app.post('/changes/CHG-99999/approve', {}, USERS.lead), 404, 'NOT_FOUND');
    expectStatus(await app.post('/standard-templates/STD-999/retire', {}, USERS.lead), 404, 'NOT_FOUND');
    expect(await app.eventCount()).toBe(events); // no stream made for what does not exist
    expectStatus(await app.get('/no-such-endpoint'), 404, 'NOT_FOUND');
  });

  const onDouble = itWhen(
    onClientDouble,
    'an operator deleting a stream: run on the EventStoreDB client double only (which deletes it)',
  );
  onDouble(
    '404 NOT_FOUND for a command on a change an operator deleted in EventStoreDB, also where its state was cached',
    async () => {
      const { id } = await submit(app);
      const review = (kind: 'technical' | 'business', as: TestUser) =>
        app.post(
          `/changes/${id}/reviews`,
          { kind, verdict: 'approve', notes: 'ok', criteria: CRITERIA[kind] },
          as,
        );
      expectStatus(await review('technical', USERS.technical), 200); // folded, and remembered
      app.clientDouble!.softDelete(`changeRequest-${id}`);
      const events = await app.eventCount();
      // not 409 "kept changing" after every re-run conflicted on the remembered state
      expectStatus(await review('business', USERS.business), 404, 'NOT_FOUND');
      expect(await app.eventCount()).toBe(events);
    },
  );

  onDouble(
    'a standard change from a template an operator deleted in EventStoreDB: refused as from no template, not 409',
    async () => {
      const template = expectStatus(
        await app.post(
          '/standard-templates',
          { name: 'Resize a disk', description: 'd', procedure: ['qm resize'], systemsScope: ['pve*'] },
          USERS.lead,
        ),
        201,
      ).body as { id: string };
      const standard = normalChange('low', {
        type: 'standard',
        standardTemplateId: template.id,
        systemsAffected: ['pve1'],
        implementationPlan: ['qm resize'],
      });
      await submit(app, standard); // the template folded, and remembered
      app.clientDouble!.softDelete(`standardTemplate-${template.id}`);
      const events = await app.eventCount();
      const refused = await app.post('/changes', standard);
      // not 409 'kept changing' after every attempt conflicted on the remembered template
      expect(expectStatus(refused, 422, 'RULE_VIOLATION').body).toMatchObject({
        rule: 'standard-template-active',
        detail: `standard template ${template.id} does not exist`,
      });
      expect(await app.eventCount()).toBe(events);
    },
  );

  it('409 INVALID_STATE for a command the status does not allow', async () => {
    const { id } = await submit(app);
    const result = expectStatus(
      await app.post(`/changes/${id}/start`, {}, USERS.implementer),
      409,
      'INVALID_STATE',
    );
    expect(result.body.detail).toContain('in-review');
  });

  it('409 IDEMPOTENCY_KEY_REUSED for the same key with another body', async () => {
    const headers = { 'idempotency-key': 'reuse-1' };
    expectStatus(await app.post('/changes', normalChange(), USERS.requester, headers), 201);
    expectStatus(
      await app.post('/changes', normalChange('high'), USERS.requester, headers),
      409,
      'IDEMPOTENCY_KEY_REUSED',
    );
  });

  it('412 PRECONDITION_FAILED when If-Match names an old version; the current one works', async () => {
    const { id, version } = await submit(app);
    expectStatus(
      await app.post(`/changes/${id}/cancel`, { reason: 'x' }, USERS.requester, {
        'if-match': `"${version + 5}"`,
      }),
      412,
      'PRECONDITION_FAILED',
    );
    const ok = expectStatus(
      await app.post(`/changes/${id}/cancel`, { reason: 'x' }, USERS.requester, {
        'if-match': `"${version}"`,
      }),
      200,
    );
    expect(ok.headers.get('etag')).toBe(`"${version + 1}"`);
  });

  it('422 RULE_VIOLATION names what is missing', async () => {
    const template = expectStatus(
      await app.post(
        '/standard-templates',
        { name: 'n', description: 'd', procedure: ['p'], systemsScope: ['s'] },
        USERS.lead,
      ),
      201,
    ).body;
    const result = expectStatus(
      await app.post(
        '/changes',
        normalChange('medium', { type: 'standard', standardTemplateId: template.id }),
      ),
      422,
      'RULE_VIOLATION',
    );
    expect(result.body.detail).toMatch(/low risk/);
    const emergency = await submit(app, emergencyChange(), USERS.implementer);
    const complete = expectStatus(
      await app.post(`/changes/${emergency.id}/complete`, { outcome: 'successful' }, USERS.implementer),
      422,
      'RULE_VIOLATION',
    );
    expect(complete.body.detail).toMatch(/verification/);
  });

  it('answers what is not HTTP, or headers over the limit, with problem+json too', async () => {
    const { port } = new URL(app.baseUrl);
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(request));
        let answer = '';
        socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
        socket.on('close', () => resolve(answer));
        socket.on('error', reject);
      });
    const parse = (answer: string) => {
      const [head, body] = answer.split('\r\n\r\n');
      return { status: head.split(' ')[1], head, body: JSON.parse(body) as Record<string, unknown> };
    };
    const garbage = parse(await raw('NOT HTTP AT ALL\r\n\r\n'));
    expect(garbage.status).toBe('400');
    expect(garbage.head).toContain('Content-Type: application/problem+json');
    expect(garbage.body).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    const huge = parse(
      await raw(`GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expect(huge.status).toBe('431');
    expect(huge.body).toMatchObject({ status: 431, code: 'HEADERS_TOO_LARGE' });
  });

  it("keeps Node's limit on how long a request may take to arrive (Fastify's default turns it off)", () => {
    // Node enforces it every 30 s, so this asserts the server's setting, not a minute-long wait.
    const server = app.app.getHttpServer() as import('node:http').Server;
    expect(server.requestTimeout).toBe(60_000);
  });

  it('413 PAYLOAD_TOO_LARGE for a body over 1 MiB', async () => {
    const result = await app.request('POST', '/changes', {
      rawBody: JSON.stringify({ ...normalChange(), description: 'x'.repeat(1024 * 1024 + 10) }),
    });
    expectStatus(result, 413, 'PAYLOAD_TOO_LARGE');
    expect(result.body).toMatchObject(problemShape);
  });

  it('413 PAYLOAD_TOO_LARGE for a body within 1 MiB whose record is not (an amendment keeps the old value beside the new); nothing stored', async () => {
    const plan = (letter: string) => Array.from({ length: 30 }, () => letter.repeat(20_000)); // 600 KB
    const { id } = await submit(app, normalChange('low', { implementationPlan: plan('a') }));
    const before = await app.store.headPosition();
    const refused = expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: { implementationPlan: plan('b') } }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expect(refused.body).toMatchObject(problemShape);
    expect((refused.body as { detail: string }).detail).toMatch(
      /^what this command would record takes \d+ bytes, over the 1000000 bytes the event store takes at once .*nothing was stored$/,
    );
    expect(await app.store.headPosition()).toBe(before);
    const change = expectStatus(await app.get(`/changes/${id}`, USERS.requester), 200).body as {
      implementationPlan: string[];
      version: number;
    };
    expect(change.implementationPlan[0]).toBe('a'.repeat(20_000));
    expect(change.version).toBe(1);
    // a smaller change of the same field is taken
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: { implementationPlan: ['Drain pve1'] } }),
      200,
    );
  });
});

describe('409 CONCURRENCY_CONFLICT when retries cannot resolve a race', () => {
  let app: AppHarness;
  /** Writes that "another API instance" makes while a command runs, the moment it reads the clock. */
  let interfere: (() => void)[] = [];
  const clock = {
    now: () => {
      interfere.shift()?.();
      return new Date();
    },
  };
  beforeAll(async () => {
    app = await AppHarness.start({ COMMAND_MAX_ATTEMPTS: '2' }, { clock });
  });
  afterAll(async () => app.close());

  const concurrentStep = (id: string, description: string) => () => {
    void app.store.append(
      `changeRequest-${id}`,
      [
        {
          eventId: randomUUID(),
          type: 'ImplementationStepRecorded',
          data: {
            sequence: 0,
            description,
            by: { id: 'u-other', name: 'Other' },
            at: new Date().toISOString(),
          },
          metadata: {
            actor: { id: 'u-other', name: 'Other', roles: ['implementer'] },
            occurredAt: new Date().toISOString(),
            correlationId: randomUUID(),
            causationId: null,
            schemaVersion: 1,
          },
        },
      ],
      'any',
    );
  };

  it('re-runs a command whose stream moved on, and succeeds when the retry is not overtaken', async () => {
    const { id } = await submit(app, emergencyChange(), USERS.implementer);
    interfere = [concurrentStep(id, 'racing write')];
    const result = expectStatus(
      await app.post(`/changes/${id}/steps`, { description: 'mine' }, USERS.implementer),
      200,
    );
    const steps = (await app.eventsOf(id)).filter((e) => e.type === 'ImplementationStepRecorded');
    expect(steps.map((s) => s.data.description)).toEqual(['racing write', 'mine']);
    expect(result.body.version).toBe(4);
  });

  it('answers 409 CONCURRENCY_CONFLICT when every attempt is overtaken, and stores nothing of the command', async () => {
    const { id } = await submit(app, emergencyChange(), USERS.implementer);
    interfere = [concurrentStep(id, 'race 1'), concurrentStep(id, 'race 2')];
    const result = expectStatus(
      await app.post(`/changes/${id}/steps`, { description: 'mine' }, USERS.implementer),
      409,
      'CONCURRENCY_CONFLICT',
    );
    expect(result.body.detail).toMatch(/2 attempts/);
    const steps = (await app.eventsOf(id)).filter((e) => e.type === 'ImplementationStepRecorded');
    expect(steps.map((s) => s.data.description)).toEqual(['race 1', 'race 2']);
  });

  it('an If-Match list naming each version the overtaking writes make: re-run, then 409 when every attempt is overtaken (not 412)', async () => {
    const { id, version } = await submit(app, emergencyChange(), USERS.implementer);
    interfere = [concurrentStep(id, 'race 1'), concurrentStep(id, 'race 2')];
    const result = expectStatus(
      await app.post(`/changes/${id}/steps`, { description: 'mine' }, USERS.implementer, {
        'if-match': [0, 1, 2].map((n) => `"${version + n}"`).join(', '),
      }),
      409,
      'CONCURRENCY_CONFLICT',
    );
    expect(result.body.detail).toMatch(/2 attempts/);
    const steps = (await app.eventsOf(id)).filter((e) => e.type === 'ImplementationStepRecorded');
    expect(steps.map((s) => s.data.description)).toEqual(['race 1', 'race 2']);
  });

  it('an If-Match list overtaken on the last attempt by a version it does not name: 412, not 409', async () => {
    const { id, version } = await submit(app, emergencyChange(), USERS.implementer);
    interfere = [concurrentStep(id, 'race 1'), concurrentStep(id, 'race 2')];
    const result = expectStatus(
      await app.post(`/changes/${id}/steps`, { description: 'mine' }, USERS.implementer, {
        'if-match': `"${version}", "${version + 1}"`,
      }),
      412,
      'PRECONDITION_FAILED',
    );
    expect(result.body.detail).toContain(`the current version is ${version + 2}`);
    const steps = (await app.eventsOf(id)).filter((e) => e.type === 'ImplementationStepRecorded');
    expect(steps.map((s) => s.data.description)).toEqual(['race 1', 'race 2']);
  });

  it('answers 412 instead of re-running when the client sent If-Match', async () => {
    const { id, version } = await submit(app, emergencyChange(), USERS.implementer);
    interfere = [concurrentStep(id, 'racing write')];
    expectStatus(
      await app.post(`/changes/${id}/steps`, { description: 'mine' }, USERS.implementer, {
        'if-match': `"${version}"`,
      }),
      412,
      'PRECONDITION_FAILED',
    );
    const steps = (await app.eventsOf(id)).filter((e) => e.type === 'ImplementationStepRecorded');
    expect(steps.map((s) => s.data.description)).toEqual(['racing write']);
  });
});
