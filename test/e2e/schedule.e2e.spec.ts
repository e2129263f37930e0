import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { signToken } from '@changeledger/platform';
import { AppHarness, USERS } from './support/app-harness';
import { emergencyChange, expectStatus, normalChange, reviewAll, submit } from './support/change-fixtures';

interface Conflict {
  changeId: string;
  status: string;
  from: string;
  until: string | null;
  systems: string[];
}
interface ScheduleItem {
  changeId: string;
  title: string;
  status: string;
  systemsAffected: string[];
  from: string;
  until: string | null;
  plannedStart: string | null;
  plannedEnd: string | null;
  sequence: number;
  conflictsWith: Conflict[];
}
type Page = { items: ScheduleItem[]; nextCursor: string | null };

describe('GET /schedule: the forward schedule of change', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  const approved = async (title: string, systemsAffected: string[]) => {
    const { id } = await submit(app, normalChange('low', { title, systemsAffected }));
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, { comment: 'go' }, USERS.lead), 200);
    return id;
  };
  const schedule = async (id: string, plannedStart: string, plannedEnd: string) =>
    expectStatus(
      await app.post(
        `/changes/${id}/schedule`,
        { plannedStart, plannedEnd, maintenanceWindow: false },
        USERS.implementer,
      ),
      200,
    );
  const calendar = async (query: string) => expectStatus(await app.get<Page>(`/schedule?${query}`), 200).body;

  it('lists the changes whose windows overlap the range, earliest first, with the open changes they collide with', async () => {
    const a = await approved('Re-cable pve7', ['pve7', 'switch-9']);
    await schedule(a, '2027-02-10T22:00:00Z', '2027-02-10T23:00:00Z');
    const b = await approved('Upgrade pve7 firmware', ['PVE7 ']);
    await schedule(b, '2027-02-10T22:30:00Z', '2027-02-11T00:00:00Z');
    const c = await approved('Replace a disk in pve8', ['pve8']);
    await schedule(c, '2027-02-10T22:00:00Z', '2027-02-10T23:00:00Z');
    const d = await approved('Kernel update on pve7', ['pve7']);
    await schedule(d, '2027-02-12T22:00:00Z', '2027-02-12T23:00:00Z');
    const notYet = await approved('Not scheduled yet', ['pve7']);

    const day = await calendar('from=2027-02-10&to=2027-02-10');
    expect(day.items.map((i) => i.changeId)).toEqual([a, c, b]);
    const [itemA, itemC, itemB] = day.items;
    expect(itemA).toMatchObject({
      title: 'Re-cable pve7',
      status: 'scheduled',
      from: '2027-02-10T22:00:00.000Z',
      until: '2027-02-10T23:00:00.000Z',
      plannedStart: '2027-02-10T22:00:00.000Z',
    });
    expect(itemA.conflictsWith).toEqual([
      {
        changeId: b,
        title: 'Upgrade pve7 firmware',
        status: 'scheduled',
        from: '2027-02-10T22:30:00.000Z',
        until: '2027-02-11T00:00:00.000Z',
        systems: ['PVE7 '],
      },
    ]);
    expect(itemB.conflictsWith.map((x) => x.changeId)).toEqual([a]);
    expect(itemC.conflictsWith).toEqual([]);

    // the same range for a calendar: one event per change, the collision named
    const ics = await app.request<string>('GET', '/schedule?from=2027-02-10&to=2027-02-10&format=ics');
    expect(ics.status).toBe(200);
    expect(ics.headers.get('content-type')).toContain('text/calendar');
    const events = (ics.body as string).replace(/\r\n /g, '').split('\r\n');
    expect(events.filter((l) => l.startsWith('UID:'))).toEqual(
      [a, c, b].map((id) => `UID:${id}@changeledger`),
    );
    expect(events).toContain(`SUMMARY:${a} Re-cable pve7 (collides)`);
    expect(events).toContain('DTSTART:20270210T220000Z');
    expectStatus(await app.get('/schedule?format=pdf'), 400, 'VALIDATION_FAILED');
    // paged: the next page's cursor in a header
    const uids = (body: unknown) => (body as string).split('\r\n').filter((l) => l.startsWith('UID:'));
    const firstIcs = await app.request<string>(
      'GET',
      '/schedule?from=2027-02-10&to=2027-02-10&format=ics&limit=2',
    );
    const next = firstIcs.headers.get('next-cursor');
    expect(next).toBeTruthy();
    const secondIcs = await app.request<string>(
      'GET',
      `/schedule?from=2027-02-10&to=2027-02-10&format=ics&limit=2&cursor=${next}`,
    );
    expect(secondIcs.headers.get('next-cursor')).toBeNull();
    expect([...uids(firstIcs.body), ...uids(secondIcs.body)]).toEqual(
      [a, c, b].map((id) => `UID:${id}@changeledger`),
    );

    // one system, case and spaces aside; a change not scheduled is not on the calendar
    const pve7 = await calendar('from=2027-02-01&to=2027-02-28&system=pve7');
    expect(pve7.items.map((i) => i.changeId)).toEqual([a, b, d]);
    expect(pve7.items.map((i) => i.changeId)).not.toContain(notYet);
    // the range's end is exclusive for an instant: B starts at 22:30
    expect(
      (await calendar('from=2027-02-10T00:00:00Z&to=2027-02-10T22:30:00Z')).items.map((i) => i.changeId),
    ).toEqual([a, c]);
    // paged in the same order
    const first = await calendar('from=2027-02-01&to=2027-02-28&limit=2');
    const second = await calendar(`from=2027-02-01&to=2027-02-28&limit=2&cursor=${first.nextCursor}`);
    expect([...first.items, ...second.items].map((i) => i.changeId)).toEqual([a, c, b, d]);

    // moved to start when A ends: no collision left (and a calendar sees a newer version of B);
    // cancelled: off the conflicts
    const sequenceOfB = async () =>
      (await calendar('from=2027-02-10&to=2027-02-10')).items.find((i) => i.changeId === b)!.sequence;
    const before = await sequenceOfB();
    await schedule(b, '2027-02-10T23:00:00Z', '2027-02-11T00:00:00Z');
    expect(await sequenceOfB()).toBe(before + 1);
    const moved = await calendar('from=2027-02-10&to=2027-02-10');
    expect(moved.items.map((i) => i.changeId)).toEqual([a, c, b]); // all still there
    expect(moved.items.map((i) => i.conflictsWith)).toEqual([[], [], []]);
    await schedule(d, '2027-02-10T22:45:00Z', '2027-02-10T23:15:00Z');
    expect(
      (await calendar('from=2027-02-10&to=2027-02-10')).items
        .find((i) => i.changeId === a)!
        .conflictsWith.map((x) => x.changeId),
    ).toEqual([d]);
    expectStatus(await app.post(`/changes/${d}/cancel`, { reason: 'Merged into B' }, USERS.requester), 200);
    const afterCancel = await calendar('from=2027-02-10&to=2027-02-10');
    expect(afterCancel.items.find((i) => i.changeId === a)!.conflictsWith).toEqual([]);
    expect(afterCancel.items.find((i) => i.changeId === d)).toMatchObject({
      status: 'cancelled',
      conflictsWith: [],
    });
  });

  it('an emergency at work holds its systems from its start, with no end yet; by default the calendar shows today and the next 14 days', async () => {
    const { id: emergency } = await submit(
      app,
      emergencyChange({ systemsAffected: ['edge-fw-1'] }),
      USERS.implementer,
    );
    const later = await approved('Firewall rule review', ['edge-fw-1']);
    const inAWeek = new Date(Date.now() + 7 * 86_400_000);
    const start = new Date(Math.floor(inAWeek.getTime() / 3_600_000) * 3_600_000);
    await schedule(later, start.toISOString(), new Date(start.getTime() + 3_600_000).toISOString());

    const upcoming = await calendar('system=edge-fw-1');
    expect(upcoming.items.map((i) => i.changeId)).toEqual([emergency, later]);
    expect(upcoming.items[0]).toMatchObject({ status: 'in-progress', until: null, plannedStart: null });
    expect(upcoming.items[1].conflictsWith).toEqual([
      expect.objectContaining({
        changeId: emergency,
        status: 'in-progress',
        until: null,
        systems: ['edge-fw-1'],
      }),
    ]);
    expect(upcoming.items[0].conflictsWith.map((c) => c.changeId)).toEqual([later]);
  });

  it('refuses a range that ends before it starts, times that are not times, and unknown parameters', async () => {
    for (const query of [
      'from=2027-02-10&to=2027-02-09',
      'from=2027-02-10T10:00:00Z&to=2027-02-10T10:00:00Z',
    ]) {
      const refused = expectStatus(await app.get(`/schedule?${query}`), 400, 'VALIDATION_FAILED');
      expect(refused.body).toMatchObject({ errors: [{ field: 'to' }] });
    }
    // at most 366 days (a year of dates fits; decades, for a calendar or a page, do not)
    for (const format of ['', '&format=ics']) {
      const decades = expectStatus(
        await app.get(`/schedule?from=1970-01-01&to=9999-12-31${format}`),
        400,
        'VALIDATION_FAILED',
      );
      expect(decades.body).toMatchObject({
        errors: [{ field: 'to', message: expect.stringMatching(/366 days/) }],
      });
    }
    expectStatus(await app.get('/schedule?from=2028-01-01&to=2028-12-31'), 200);
    expectStatus(
      await app.get('/schedule?from=2028-01-01T00:00:00Z&to=2029-01-01T00:00:01Z'),
      400,
      'VALIDATION_FAILED',
    );
    expectStatus(await app.get('/schedule?from=tomorrow'), 400, 'VALIDATION_FAILED');
    expectStatus(await app.get('/schedule?from=2027-02-30'), 400, 'VALIDATION_FAILED');
    expectStatus(await app.get('/schedule?week=7'), 400, 'VALIDATION_FAILED');
  });

  it('needs a token, and is in the OpenAPI document with its query parameters', async () => {
    expectStatus(await app.request('GET', '/schedule', { as: null }), 401, 'UNAUTHENTICATED');
    const doc = expectStatus(await app.request('GET', '/openapi.json'), 200).body as {
      paths: Record<string, { get?: { parameters?: { name: string; in: string }[] } }>;
    };
    const parameters = doc.paths['/api/v1/schedule']?.get?.parameters ?? [];
    expect(parameters.filter((p) => p.in === 'query').map((p) => p.name)).toEqual(
      expect.arrayContaining(['from', 'to', 'system', 'limit', 'cursor', 'minPosition']),
    );
  });
});

describe('GET /schedule?format=ics as a calendar subscription: a feed token in the URL', () => {
  let app: AppHarness;
  let feedToken: string;
  beforeAll(async () => {
    app = await AppHarness.start();
    const secret = app.config.auth.jwtSecret!;
    feedToken = await signToken(
      { sub: 'cal-team', name: 'Team calendar', roles: ['auditor'], feed: 'schedule' },
      secret,
    );
  });
  afterAll(async () => app.close());

  const anonymous = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    app.request(method, path, { as: null, headers, body, readYourWrites: false });

  it('reads the calendar with the token in the URL (or in the header), and tells the browser to keep the URL to itself', async () => {
    const { id } = await submit(app, normalChange('low', { title: 'Feed me' }));
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, { comment: 'go' }, USERS.lead), 200);
    expectStatus(
      await app.post(
        `/changes/${id}/schedule`,
        {
          plannedStart: '2027-03-01T22:00:00Z',
          plannedEnd: '2027-03-01T23:00:00Z',
          maintenanceWindow: false,
        },
        USERS.implementer,
      ),
      200,
    );
    await app.get(`/changes/${id}`); // waits for the read models
    const range = 'from=2027-03-01&to=2027-03-02';
    const inUrl = await anonymous('GET', `/schedule?${range}&format=ics&access_token=${feedToken}`);
    expect(inUrl.status).toBe(200);
    expect(inUrl.headers.get('content-type')).toMatch(/^text\/calendar/);
    expect(inUrl.headers.get('referrer-policy')).toBe('no-referrer');
    expect(inUrl.body).toContain(`SUMMARY:${id} Feed me`);
    const inHeader = await anonymous('GET', `/schedule?${range}&format=ics`, {
      authorization: `Bearer ${feedToken}`,
    });
    expect(inHeader.status).toBe(200);
  });

  it('a feed token reads nothing else: 403, and a command with it stores nothing', async () => {
    const bearer = { authorization: `Bearer ${feedToken}` };
    const before = await app.eventCount();
    for (const [method, path, body] of [
      ['GET', '/schedule'],
      ['GET', '/schedule?format=json'],
      ['GET', '/changes'],
      ['GET', '/audit/events'],
      ['POST', '/changes', normalChange()],
    ] as const) {
      const answer = await anonymous(method, path, bearer, body);
      expect([path, answer.status]).toEqual([path, 403]);
      expect(answer.body).toMatchObject({ code: 'FORBIDDEN' });
    }
    expect(await app.eventCount()).toBe(before);
  });

  type Tokens = { feed: string; ordinary: string };
  it.each<[string, (t: Tokens) => { query: string; headers?: Record<string, string> }]>([
    ['an ordinary token in the URL', (t) => ({ query: `format=ics&access_token=${t.ordinary}` })],
    ['a feed token in the URL of the JSON schedule', (t) => ({ query: `access_token=${t.feed}` })],
    [
      'a token in the URL and another in the header',
      (t) => ({
        query: `format=ics&access_token=${t.feed}`,
        headers: { authorization: `Bearer ${t.ordinary}` },
      }),
    ],
    [
      'a token in the URL twice',
      (t) => ({ query: `format=ics&access_token=${t.feed}&access_token=${t.feed}` }),
    ],
    ['a forged token in the URL', (t) => ({ query: `format=ics&access_token=${t.feed.slice(0, -4)}AAAA` })],
  ])('%s → 401', async (_name, make) => {
    const { query, headers } = make({ feed: feedToken, ordinary: await app.token(USERS.auditor) });
    const answer = await anonymous('GET', `/schedule?${query}`, headers);
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('a token in the URL of any other endpoint → 401, even an ordinary one', async () => {
    const ordinary = await app.token(USERS.auditor);
    for (const path of [`/changes?access_token=${ordinary}`, `/audit/events?access_token=${feedToken}`]) {
      expect((await anonymous('GET', path)).status).toBe(401);
    }
  });
});
