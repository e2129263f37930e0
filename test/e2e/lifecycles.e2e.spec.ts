import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppHarness, type TestUser, USERS } from './support/app-harness';
import {
  CRITERIA,
  emergencyChange,
  emergencyPlan,
  expectStatus,
  implementSuccessfully,
  normalChange,
  postImplementationReview,
  prepare,
  prepareAndStart,
  reviewAll,
  reviewImplementation,
  submit,
} from './support/change-fixtures';

/** A normal change's events from its approval to its close (prepare, start, implementSuccessfully, PIR, close). */
const APPROVED_TO_CLOSED = [
  'ChangeScheduled',
  'ChecklistItemCompleted',
  'ChecklistItemCompleted',
  'ChecklistItemCompleted',
  'ChecklistItemCompleted',
  'ImplementationStarted',
  'ImplementationStepRecorded',
  'VerificationRecorded',
  'ImplementationCompleted',
  'PostImplementationReviewRecorded',
  'ChangeClosed',
];

describe('change lifecycles over HTTP (embedded SQLite)', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it('takes a standard change from its template to close', async () => {
    const procedure = ['pct create from golden image', 'attach to VLAN 30', 'register in monitoring'];
    const templateCreated = expectStatus(
      await app.post(
        '/standard-templates',
        {
          name: 'Deploy a container from the golden image',
          description: 'LXC from the approved template',
          procedure,
          systemsScope: ['pve1', 'pve2'],
        },
        USERS.lead,
      ),
      201,
    );
    const template = templateCreated.body;
    expect(template).toMatchObject({ id: expect.stringMatching(/^STD-\d{3,}$/), version: 1 });
    // where to read it, as every 201 says
    const location = templateCreated.headers.get('location')!;
    expect(location).toBe(`/api/v1/standard-templates/${template.id as string}`);
    const read = expectStatus(await app.get(location.replace('/api/v1', '')), 200);
    expect(read.body).toMatchObject({
      id: template.id,
      name: 'Deploy a container from the golden image',
      procedure,
      active: true,
      usageCount: 0,
    });
    // no ETag: its usage count (below) grows without its version, and a 304 would keep it stale
    expect(read.headers.get('etag')).toBeNull();
    expectStatus(await app.get('/standard-templates/STD-99999'), 404, 'NOT_FOUND');

    // the template pre-approves its own systems only
    const outside = await app.post(
      '/changes',
      normalChange('low', {
        type: 'standard',
        standardTemplateId: template.id,
        title: 'New monitoring LXC',
        implementationPlan: procedure,
      }),
    );
    expect(expectStatus(outside, 422, 'RULE_VIOLATION').body).toMatchObject({
      rule: 'standard-change-within-template-scope',
      detail: expect.stringContaining('not switch-core'),
    });
    // and its own procedure only: a plan of one's own is a normal change
    const before = await app.store.headPosition();
    const otherWork = await app.post(
      '/changes',
      normalChange('low', {
        type: 'standard',
        standardTemplateId: template.id,
        title: 'New monitoring LXC',
        systemsAffected: ['pve2'],
      }),
    );
    expect(expectStatus(otherWork, 422, 'RULE_VIOLATION').body).toMatchObject({
      rule: 'standard-change-follows-template-procedure',
      detail: expect.stringContaining(
        `step 1 of ${template.id}'s procedure is "pct create from golden image"`,
      ),
    });
    expect(await app.store.headPosition()).toBe(before);
    const created = await submit(
      app,
      normalChange('low', {
        type: 'standard',
        standardTemplateId: template.id,
        title: 'New monitoring LXC',
        systemsAffected: ['pve2'],
        implementationPlan: procedure,
      }),
    );
    expect(created).toMatchObject({
      id: expect.stringMatching(/^CHG-\d{3,}$/),
      status: 'approved',
      version: 2,
    });
    expect(BigInt(created.position)).toBeGreaterThan(0n);

    const started = await prepareAndStart(app, created.id, false);
    expect(started.body).toMatchObject({ status: 'in-progress' });
    await implementSuccessfully(app, created.id);
    const early = expectStatus(
      await app.post(`/changes/${created.id}/close`, {}, USERS.implementer),
      422,
      'RULE_VIOLATION',
    );
    expect(early.body).toMatchObject({ rule: 'close-prerequisites' });
    expectStatus(
      await app.post(
        `/changes/${created.id}/post-implementation-review`,
        postImplementationReview,
        USERS.implementer,
      ),
      200,
    );
    const closed = expectStatus(await app.post(`/changes/${created.id}/close`, {}, USERS.implementer), 200);
    expect(closed.body).toMatchObject({ status: 'closed' });

    const view = expectStatus(await app.get(`/changes/${created.id}`), 200);
    const etag = `"${(view.body as { version: number }).version}"`;
    expect(view.headers.get('etag')).toBe(etag);
    // kept by the client alone, and asked for again: unchanged, 304 without a body
    expect(view.headers.get('cache-control')).toBe('private, no-cache');
    const unchanged = await app.request('GET', `/changes/${created.id}`, {
      headers: { 'if-none-match': `"1", W/${etag}` },
    });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body).toBeUndefined();
    expect(unchanged.headers.get('etag')).toBe(etag);
    expect(unchanged.headers.get('content-type')).toBeNull();
    const head = await app.request('HEAD', `/changes/${created.id}`, { headers: { 'if-none-match': '*' } });
    expect(head.status).toBe(304);
    expect(head.headers.get('etag')).toBe(etag);
    const older = await app.request('GET', `/changes/${created.id}`, { headers: { 'if-none-match': '"1"' } });
    expect(older.status).toBe(200);
    expect(older.body).toMatchObject({ id: created.id, status: 'closed' });
    // an answer that is no versioned resource (a command's answer too, ETag and all) is not kept at all
    expect(closed.headers.get('etag')).toBe(etag);
    expect(closed.headers.get('cache-control')).toBe('no-store');
    expect((await app.get('/changes')).headers.get('cache-control')).toBe('no-store');
    expect((await app.get(`/changes/CHG-9999`)).headers.get('cache-control')).toBe('no-store');
    expect(view.body).toMatchObject({
      id: created.id,
      type: 'standard',
      status: 'closed',
      standardTemplateId: template.id,
      standardTemplate: { id: template.id },
      approval: { level: 'standard-template', by: null },
      implementedBy: { id: USERS.implementer.sub, name: USERS.implementer.name },
      outcome: 'successful',
    });

    expect(
      expectStatus(
        await app.request('GET', `/standard-templates/${template.id as string}`, {
          headers: { 'if-none-match': '"1"' },
        }),
        200,
      ).body,
    ).toMatchObject({ version: 1, usageCount: 1 });
    const templates = expectStatus(await app.get('/standard-templates'), 200).body as { items: unknown[] };
    expect(templates.items).toContainEqual(
      expect.objectContaining({ id: template.id, active: true, usageCount: 1 }),
    );
  });

  it('takes a low-risk normal change through reviews, infrastructure-lead approval and implementation', async () => {
    const { id } = await submit(app, normalChange('low'));
    expect(id).toMatch(/^CHG-\d{3}$/);
    await reviewAll(app, id);
    const view = expectStatus(await app.get(`/changes/${id}`), 200).body;
    expect(view).toMatchObject({ status: 'awaiting-approval', requiredApproval: 'infrastructure-lead' });
    const approved = expectStatus(
      await app.post(`/changes/${id}/approve`, { comment: 'go' }, USERS.lead),
      200,
    );
    expect(approved.body).toMatchObject({ status: 'approved' });
    await prepareAndStart(app, id);
    await implementSuccessfully(app, id);
    expectStatus(
      await app.post(`/changes/${id}/post-implementation-review`, postImplementationReview, USERS.lead),
      200,
    );
    expectStatus(await app.post(`/changes/${id}/close`, {}, USERS.lead), 200);
    const final = expectStatus(await app.get(`/changes/${id}`), 200).body;
    expect(final).toMatchObject({
      status: 'closed',
      approvedBy: { id: USERS.lead.sub, name: USERS.lead.name },
      requestedBy: { id: USERS.requester.sub },
      reviews: expect.arrayContaining([expect.objectContaining({ kind: 'security', verdict: 'approve' })]),
    });
    const types = (await app.eventsOf(id)).map((e) => e.type);
    expect(types).toEqual([
      'ChangeSubmitted',
      'ReviewRecorded',
      'ReviewRecorded',
      'ReviewRecorded',
      'ReviewsCompleted',
      'ChangeApproved',
      ...APPROVED_TO_CLOSED,
    ]);
  });

  it('takes a high-risk normal change to close: management approves, the infrastructure lead gets 403', async () => {
    const { id } = await submit(app, normalChange('high'));
    await reviewAll(app, id);
    const pending = expectStatus(await app.get(`/changes/${id}`), 200).body;
    expect(pending).toMatchObject({ requiredApproval: 'management' });
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.lead), 403, 'FORBIDDEN');
    const approved = expectStatus(
      await app.post(`/changes/${id}/approve`, { comment: 'accepted risk' }, USERS.manager),
      200,
    );
    expect(approved.body).toMatchObject({ status: 'approved' });
    const events = await app.eventsOf(id);
    expect(events.filter((e) => e.type === 'ChangeApproved')).toHaveLength(1);
    expect(events.at(-1)?.data).toMatchObject({
      level: 'management',
      riskLevel: 'high',
      rule: 'high-risk-needs-management',
    });
    expect(events.at(-1)?.metadata).toMatchObject({
      actor: { id: USERS.manager.sub, name: USERS.manager.name, roles: ['management'] },
      schemaVersion: 7,
    });

    // and on to close: the approving manager may not implement it, even holding that role
    await prepare(app, id);
    const managerImplementer = {
      sub: USERS.manager.sub,
      name: USERS.manager.name,
      roles: ['management', 'implementer'] as const,
    };
    const stored = await app.eventCount();
    const own = expectStatus(
      await app.post(`/changes/${id}/start`, {}, managerImplementer),
      403,
      'SEGREGATION_OF_DUTIES',
    );
    expect(own.body).toMatchObject({ rule: 'approver-is-not-implementer' });
    expect(await app.eventCount()).toBe(stored);
    expectStatus(await app.post(`/changes/${id}/start`, {}, USERS.implementer), 200);
    await implementSuccessfully(app, id);
    expectStatus(
      await app.post(
        `/changes/${id}/post-implementation-review`,
        postImplementationReview,
        USERS.implementer,
      ),
      200,
    );
    const closed = expectStatus(await app.post(`/changes/${id}/close`, {}, USERS.implementer), 200);
    expect(closed.body).toMatchObject({ status: 'closed' });
    expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
      status: 'closed',
      risk: { level: 'high' },
      approval: { level: 'management' },
      approvedBy: { id: USERS.manager.sub },
      implementedBy: { id: USERS.implementer.sub },
      outcome: 'successful',
    });
    expect((await app.eventsOf(id)).map((e) => e.type).slice(-APPROVED_TO_CLOSED.length)).toEqual(
      APPROVED_TO_CLOSED,
    );
  });

  it('takes an emergency change through documentation, review, retrospective approval and close', async () => {
    const declared = await submit(app, emergencyChange(), USERS.implementer);
    expect(declared).toMatchObject({ status: 'in-progress', version: 2 });
    const { id } = declared;
    expectStatus(
      await app.post(
        `/changes/${id}/steps`,
        { description: 'apt upgrade openssh-server' },
        USERS.implementer,
      ),
      200,
    );
    expectStatus(
      await app.post(
        `/changes/${id}/issues`,
        { description: 'pve3 needed a reboot', severity: 'low' },
        USERS.implementer,
      ),
      200,
    );
    await implementSuccessfully(app, id);
    await reviewImplementation(app, id);

    // The request is incomplete: the retrospective approval names what is missing.
    const early = expectStatus(
      await app.post(
        `/changes/${id}/retrospective-approval`,
        { decision: 'approve', comment: 'ok' },
        USERS.manager,
      ),
      422,
      'RULE_VIOLATION',
    );
    expect((early.body as { detail: string }).detail).toContain('rollbackPlan');
    expect(
      expectStatus(await app.post(`/changes/${id}/close`, {}, USERS.implementer), 422, 'RULE_VIOLATION').body,
    ).toMatchObject({ rule: 'close-prerequisites' });

    // Only the declarer completes the request.
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: emergencyPlan, as: USERS.requester }),
      403,
      'FORBIDDEN',
    );
    const amended = expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: emergencyPlan, as: USERS.implementer }),
      200,
    );
    expect(amended.body).toMatchObject({ status: 'implemented' });

    // The declarer may not approve their own emergency retrospectively; management may.
    const declarerManager = {
      sub: USERS.implementer.sub,
      name: USERS.implementer.name,
      roles: ['implementer', 'management'] as const,
    };
    const own = expectStatus(
      await app.post(
        `/changes/${id}/retrospective-approval`,
        { decision: 'approve', comment: 'mine' },
        declarerManager,
      ),
      403,
      'SEGREGATION_OF_DUTIES',
    );
    // (the declarer also implemented it: the rule that refuses is the requester's)
    expect(own.body).toMatchObject({ rule: 'requester-is-not-approver' });
    expectStatus(
      await app.post(
        `/changes/${id}/retrospective-approval`,
        { decision: 'approve', comment: 'justified' },
        USERS.manager,
      ),
      200,
    );
    // An amendment after the decision makes it void (the contract allows amending an emergency
    // until it is closed): the change is back in the queue, and management decides again.
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, {
        body: { testingPlan: 'ssh into every node, twice' },
        as: USERS.implementer,
      }),
      200,
    );
    expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
      retrospectiveDecision: null,
      testingPlan: 'ssh into every node, twice',
    });
    const queue = expectStatus(await app.get('/retrospectives/queue?limit=500'), 200).body as {
      items: { changeId: string; outstanding: string[] }[];
    };
    expect(queue.items.find((i) => i.changeId === id)?.outstanding).toEqual(['retrospective-approval']);
    const unDecided = expectStatus(
      await app.post(`/changes/${id}/close`, {}, USERS.manager),
      422,
      'RULE_VIOLATION',
    );
    expect(unDecided.body).toMatchObject({
      rule: 'close-prerequisites',
      detail: 'closing needs: retrospective decision',
    });
    expectStatus(
      await app.post(
        `/changes/${id}/retrospective-approval`,
        { decision: 'approve', comment: 'justified, with the new testing plan' },
        USERS.manager,
      ),
      200,
    );
    const closed = expectStatus(await app.post(`/changes/${id}/close`, {}, USERS.manager), 200);
    expect(closed.body).toMatchObject({ status: 'closed' });
    const view = expectStatus(await app.get(`/changes/${id}`), 200).body;
    expect(view).toMatchObject({
      type: 'emergency',
      emergency: { category: 'security' },
      rollbackPlan: 'apt install the previous version',
      retrospectiveDecision: { decision: 'approve', by: { id: USERS.manager.sub } },
      missingRequestFields: [],
      issues: [expect.objectContaining({ severity: 'low' })],
    });
    // Auditors read which rule each decision followed from the stored events.
    const events = await app.eventsOf(id);
    expect(events.find((e) => e.type === 'RetrospectiveDecisionRecorded')?.data).toMatchObject({
      rule: 'emergency-needs-retrospective-approval-by-management',
    });
    // two decisions stored, the manager's, and the amendment naming the one it made void: the
    // refused attempts stored none
    expect(
      events
        .filter((e) => e.type === 'RetrospectiveDecisionRecorded')
        .map((e) => (e.data as { by: { id: string } }).by.id),
    ).toEqual([USERS.manager.sub, USERS.manager.sub]);
    expect(events.filter((e) => e.type === 'ChangeAmended').at(-1)?.data).toMatchObject({
      voidedRetrospectiveDecision: {
        decision: 'approve',
        comment: 'justified',
        by: { id: USERS.manager.sub },
      },
    });
    expect(events.at(-1)).toMatchObject({
      type: 'ChangeClosed',
      data: { rule: 'emergency-close-needs-post-implementation-review-and-retrospective-decision' },
      metadata: { schemaVersion: 7 },
    });
  });

  it('names as implementer of an emergency a requester declared the implementer who did the work', async () => {
    const { id } = await submit(app, emergencyChange(), USERS.requester);
    const implementer = { id: USERS.implementer.sub, name: USERS.implementer.name };
    expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
      status: 'in-progress',
      requestedBy: { id: USERS.requester.sub },
      implementedBy: null,
    });
    expectStatus(
      await app.post(`/changes/${id}/steps`, { description: 'Patched pve1' }, USERS.implementer),
      200,
    );
    expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
      implementedBy: implementer,
    });
    const log = expectStatus(await app.get('/change-log?limit=500'), 200).body as {
      items: Record<string, string>[];
    };
    expect(log.items.find((r) => r.changeId === id)).toMatchObject({
      status: 'In progress',
      implementedBy: USERS.implementer.name,
    });
  });

  it('lets the original requester amend and cancel only while they hold a role that may submit it', async () => {
    const { id } = await submit(app, normalChange('medium'));
    // the same person, whose token now says auditor only: an auditor changes nothing
    const nowAuditor = { sub: USERS.requester.sub, name: USERS.requester.name, roles: ['auditor'] as const };
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: { title: 'Sneaky' }, as: nowAuditor }),
      403,
      'FORBIDDEN',
    );
    expectStatus(await app.post(`/changes/${id}/cancel`, { reason: 'x' }, nowAuditor), 403, 'FORBIDDEN');
    // another requester is not the original one
    const other = { sub: 'u-other', name: 'Other Requester', roles: ['requester'] as const };
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: { title: 'Not mine' }, as: other }),
      403,
    );
    expectStatus(
      await app.request('PATCH', `/changes/${id}`, { body: { title: 'Mine' }, as: USERS.requester }),
      200,
    );
    expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
      title: 'Mine',
      status: 'in-review',
    });
  });

  it('voids reviews when a normal change is amended and sends it back to review', async () => {
    const { id } = await submit(app, normalChange('medium'));
    await reviewAll(app, id);
    const amended = expectStatus(
      await app.request('PATCH', `/changes/${id}`, {
        body: { title: 'Reconfigure VLAN 21' },
        as: USERS.requester,
      }),
      200,
    );
    expect(amended.body).toMatchObject({ status: 'in-review' });
    const view = expectStatus(await app.get(`/changes/${id}`), 200).body as {
      reviews: unknown[];
      voidedReviews: unknown[];
    };
    expect(view.reviews).toHaveLength(0);
    expect(view.voidedReviews).toHaveLength(3);
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.lead), 409, 'INVALID_STATE');
  });

  it('lets a reviewer of a kind already approved reject while the change is in review; a second approval is 422', async () => {
    const { id } = await submit(app, normalChange('medium'));
    const review = (verdict: string, as: TestUser) =>
      app.post(
        `/changes/${id}/reviews`,
        { kind: 'technical', verdict, notes: verdict, criteria: CRITERIA.technical },
        as,
      );
    expectStatus(await review('approve', USERS.technical), 200);
    const second: TestUser = { sub: 'u-tariq', name: 'Tariq Technical', roles: ['technical-reviewer'] };
    expectStatus(await review('approve', second), 422, 'RULE_VIOLATION');
    expect(expectStatus(await review('reject', second), 200).body).toMatchObject({ status: 'rejected' });
    const [, overruling] = (await app.eventsOf(id)).filter((e) => e.type === 'ReviewRecorded');
    expect(overruling.data).toMatchObject({
      verdict: 'reject',
      by: { id: 'u-tariq' },
      supersedes: { verdict: 'approve', by: { id: USERS.technical.sub } },
    });
    const view = expectStatus(await app.get(`/changes/${id}`), 200).body as {
      reviews: { verdict: string }[];
      voidedReviews: { verdict: string }[];
    };
    expect(view.reviews.map((r) => r.verdict)).toEqual(['reject']);
    expect(view.voidedReviews.map((r) => r.verdict)).toEqual(['approve']);
  });
});
