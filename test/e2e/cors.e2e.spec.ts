import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppHarness, USERS } from './support/app-harness';
import { expectStatus, normalChange } from './support/change-fixtures';

const FRONTEND = 'https://changes.example.org';

describe('CORS: a frontend served from another origin (CORS_ORIGINS)', () => {
  let app: AppHarness;
  let plain: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start({ CORS_ORIGINS: `${FRONTEND}, http://localhost:5173` });
    plain = await AppHarness.start();
  });
  afterAll(async () => {
    await app.close();
    await plain.close();
  });

  const preflight = (harness: AppHarness, path: string, origin = FRONTEND) =>
    fetch(`${harness.baseUrl}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, if-match, idempotency-key',
      },
    });

  it("answers a listed origin's preflight without a token, for the methods and headers a client uses", async () => {
    const answer = await preflight(app, '/changes/CHG-001/approve');
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe(FRONTEND);
    expect(answer.headers.get('access-control-allow-methods')).toBe('GET, HEAD, POST, PATCH');
    expect(answer.headers.get('access-control-allow-headers')).toMatch(/If-Match/);
    expect(answer.headers.get('access-control-allow-headers')).toMatch(/Idempotency-Key/);
    expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    expect(answer.headers.get('access-control-max-age')).toBe('600');
  });

  it('lets the page read answers and the headers it acts on, errors included; an origin not listed gets none', async () => {
    const created = expectStatus(
      await app.post('/changes', normalChange(), USERS.requester, { origin: FRONTEND }),
      201,
    );
    expect(created.headers.get('access-control-allow-origin')).toBe(FRONTEND);
    expect(created.headers.get('access-control-expose-headers')).toMatch(/ETag/);
    // where the new change is read: the 201's Location, readable by the page too
    expect(created.headers.get('access-control-expose-headers')).toMatch(/\bLocation\b/);
    expect(created.headers.get('location')).toMatch(/^\/api\/v1\/changes\/CHG-\d+$/);
    expect(created.headers.get('vary')).toMatch(/Origin/i);
    const refused = await app.request('POST', '/changes', {
      as: null,
      body: {},
      headers: { origin: FRONTEND },
    });
    expectStatus(refused, 401, 'UNAUTHENTICATED');
    expect(refused.headers.get('access-control-allow-origin')).toBe(FRONTEND);
    const elsewhere = await app.request('GET', '/changes', { headers: { origin: 'https://evil.example' } });
    expect(elsewhere.status).toBe(200); // the browser, not the server, withholds it from that page
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
    expect(
      (await preflight(app, '/changes', 'https://evil.example')).headers.get('access-control-allow-origin'),
    ).toBeNull();
  });

  it('its catch-all OPTIONS route makes no path seem to exist: 404 and 405 as without CORS', async () => {
    expectStatus(await app.request('PUT', '/nothing-here', { body: {} }), 404, 'NOT_FOUND');
    const put = await app.request('PUT', '/changes/CHG-001', { body: {} });
    expectStatus(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.get('allow')).toBe('GET, HEAD, PATCH');
  });

  it("an OPTIONS that is no preflight is left to the routes; the router's own errors carry CORS too", async () => {
    const options = await app.request('OPTIONS', '/changes', { headers: { origin: FRONTEND } });
    expectStatus(options, 405, 'METHOD_NOT_ALLOWED');
    expect(options.headers.get('allow')).toBe('GET, HEAD, POST');
    expectStatus(await app.request('OPTIONS', '/nothing-here', {}), 404, 'NOT_FOUND');
    // a URL the router cannot read is answered before any hook: the page still reads why
    const unreadable = await app.request('GET', '/changes/%zz', { headers: { origin: FRONTEND } });
    expectStatus(unreadable, 400, 'VALIDATION_FAILED');
    expect(unreadable.headers.get('access-control-allow-origin')).toBe(FRONTEND);
    expect(unreadable.headers.get('access-control-expose-headers')).toMatch(/Next-Cursor/);
    const elsewhere = await app.request('GET', '/changes/%zz', {
      headers: { origin: 'https://evil.example' },
    });
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('is off unless CORS_ORIGINS is set', async () => {
    const answer = await preflight(plain, '/changes/CHG-001/approve');
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    const read = await plain.request('GET', '/changes', { headers: { origin: FRONTEND } });
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
  });
});
