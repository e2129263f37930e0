import { signToken } from '@changeledger/platform';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppHarness, USERS } from './support/app-harness';
import { expectStatus, normalChange, reviewAll, submit } from './support/change-fixtures';

/** `name{labels} value` lines of a Prometheus text answer, by name and label text. */
const samplesOf = (text: string) => {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-z_:][a-z0-9_:]*)(\{.*\})? (\S+)$/i.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3].replace('+Inf', 'Infinity')));
  }
  return samples;
};

describe('GET /metrics (Prometheus)', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it("counts this process's commands by outcome and duration, and reports the stores and the projector as gauges (scraped with a user's token)", async () => {
    const { id } = await submit(app, normalChange('low'));
    const keyed = { 'idempotency-key': 'metrics-once' };
    expectStatus(await app.post('/changes', normalChange('low'), USERS.requester, keyed), 201);
    // answered from the key store: decides nothing, not counted
    expectStatus(await app.post('/changes', normalChange('low'), USERS.requester, keyed), 201);
    // a PATCH repeat is answered from the change's events by the command handler: replayed
    const amend = () =>
      app.request('PATCH', `/changes/${id}`, {
        body: { title: 'Amended once' },
        as: USERS.requester,
        headers: { 'idempotency-key': 'amend-once' },
      });
    expectStatus(await amend(), 200);
    expect((await amend()).headers.get('idempotent-replayed')).toBe('true');
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.lead), 409, 'INVALID_STATE');
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, {}, USERS.lead), 200);
    await app.get(`/changes/${id}`); // with minPosition: the read models have everything

    const answer = await app.request('GET', '/metrics', { as: USERS.implementer, readYourWrites: false });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = answer.body as unknown as string;
    const samples = samplesOf(text);
    const total = (command: string, outcome: string) =>
      samples.get(`changeledger_commands_total{command="${command}",outcome="${outcome}"}`);
    expect([total('SubmitChange', 'accepted'), total('SubmitChange', 'replayed')]).toEqual([2, undefined]);
    expect([total('AmendChange', 'accepted'), total('AmendChange', 'replayed')]).toEqual([1, 1]);
    expect([total('ApproveChange', 'INVALID_STATE'), total('ApproveChange', 'accepted')]).toEqual([1, 1]);
    expect(total('RecordReview', 'accepted')).toBe(3);
    // every command once in the histogram; buckets cumulative, +Inf the count
    expect(samples.get('changeledger_command_duration_seconds_count{command="ApproveChange"}')).toBe(2);
    const buckets = [...samples].filter(([name]) =>
      name.startsWith('changeledger_command_duration_seconds_bucket{command="SubmitChange",'),
    );
    expect(buckets.at(-1)).toEqual([
      'changeledger_command_duration_seconds_bucket{command="SubmitChange",le="+Inf"}',
      2,
    ]);
    expect(buckets.map(([, v]) => v)).toEqual([...buckets.map(([, v]) => v)].sort((a, b) => a - b));
    // the health report as gauges
    const head = Number(await app.store.headPosition());
    expect(samples.get('changeledger_event_store_up')).toBe(1);
    expect(samples.get('changeledger_read_models_up')).toBe(1);
    expect(samples.get('changeledger_event_store_position')).toBe(head);
    expect(samples.get('changeledger_read_model_position')).toBe(head);
    expect(samples.get('changeledger_projection_lag')).toBe(0);
    const modes = ['main-thread', 'thread', 'standby', 'elsewhere', 'down'].map(
      (mode) => samples.get(`changeledger_projector{mode="${mode}"}`) ?? NaN,
    );
    expect(modes.sort()).toEqual([0, 0, 0, 0, 1]);
    expect(samples.get('changeledger_projector_stalled_seconds')).toBe(0);
    expect(samples.get('changeledger_stale_read_models')).toBe(0);
    expect(samples.has('changeledger_webhook_delivered_position')).toBe(false); // none configured
    expect(samples.get('process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    // each family declared once, before its samples
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
    expect(types).toContain('# TYPE changeledger_commands_total counter');
    expect(types).toContain('# TYPE changeledger_command_duration_seconds histogram');
  });
});

describe('GET /metrics without METRICS_TOKEN: as every endpoint but /health, a user token', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it('answers any role, and refuses no token or a bad one (401), a feed token or one without a role of the service (403)', async () => {
    const scrape = async (authorization?: string) =>
      app.request('GET', '/metrics', {
        as: null,
        readYourWrites: false,
        headers: authorization === undefined ? {} : { authorization },
      });
    for (const user of [USERS.auditor, USERS.requester]) {
      const answer = await scrape(`Bearer ${await app.token(user)}`);
      expect(answer.status).toBe(200);
      expect(answer.body as unknown as string).toContain('changeledger_event_store_up 1');
    }
    const refused = await scrape();
    expectStatus(refused, 401, 'UNAUTHENTICATED');
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expectStatus(await scrape('Bearer not-a-token'), 401, 'UNAUTHENTICATED');
    const secret = app.config.auth.jwtSecret!;
    const feed = await signToken(
      { sub: 'cal', name: 'Calendar', roles: ['auditor'], feed: 'schedule' },
      secret,
    );
    expectStatus(await scrape(`Bearer ${feed}`), 403, 'FORBIDDEN');
    const roleless = await signToken({ sub: 'emp', name: 'Employee', roles: [] }, secret);
    expectStatus(await scrape(`Bearer ${roleless}`), 403, 'FORBIDDEN');
  });
});

describe('GET /metrics with METRICS_TOKEN set', () => {
  const metricsToken = 'f3c1'.repeat(12);
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start({ METRICS_TOKEN: metricsToken });
  });
  afterAll(async () => app.close());

  const scrape = (authorization?: string) =>
    app.request('GET', '/metrics', {
      as: null,
      readYourWrites: false,
      headers: authorization === undefined ? {} : { authorization },
    });

  it('answers only the metrics token as a bearer token; no token, another token or a user token is 401', async () => {
    const answer = await scrape(`Bearer ${metricsToken}`);
    expect(answer.status).toBe(200);
    expect(answer.body as unknown as string).toContain('changeledger_event_store_up 1');
    expect((await scrape(`bearer  ${metricsToken}`)).status).toBe(200); // the scheme is case-insensitive

    const refused = await scrape();
    expectStatus(refused, 401, 'UNAUTHENTICATED');
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expectStatus(await scrape(`Bearer ${metricsToken.slice(1)}`), 401, 'UNAUTHENTICATED');
    expectStatus(await scrape(`Bearer ${metricsToken}x`), 401, 'UNAUTHENTICATED');
    expectStatus(await scrape(metricsToken), 401, 'UNAUTHENTICATED');
    // an auditor's token reads the log, not the metrics
    const auditor = await app.token(USERS.auditor);
    expectStatus(await scrape(`Bearer ${auditor}`), 401, 'UNAUTHENTICATED');
    // health stays public: load balancers probe it without credentials
    expect((await app.request('GET', '/health', { as: null, readYourWrites: false })).status).toBe(200);
  });
});
