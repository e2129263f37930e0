import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { resolveJwtSecret, signToken } from '@changeledger/platform';
import { AppHarness, USERS } from './support/app-harness';
import { expectStatus, normalChange } from './support/change-fixtures';

describe('RS256 tokens from an identity provider (JWKS), with issuer and audience checks', () => {
  let app: AppHarness;
  let idp: Server;
  let privateKey: Parameters<SignJWT['sign']>[0];
  const issuer = 'https://idp.example.test/';
  const audience = 'changeledger';

  const rs256 = async (claims: {
    iss?: string;
    aud?: string;
    roles?: unknown;
    name?: string;
    exp?: false;
  }) => {
    const jwt = new SignJWT({ name: claims.name ?? 'Rita Requester', roles: claims.roles ?? ['requester'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('u-rita')
      .setIssuer(claims.iss ?? issuer)
      .setAudience(claims.aud ?? audience)
      .setIssuedAt();
    return (claims.exp === false ? jwt : jwt.setExpirationTime('5m')).sign(privateKey);
  };

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    // A stand-in identity provider on loopback: it only serves the key set.
    idp = createServer((_, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    const { port } = idp.address() as { port: number };
    app = await AppHarness.start({
      AUTH_JWT_SECRET: '',
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
      AUTH_ISSUER: issuer,
      AUTH_AUDIENCE: audience,
    });
  });
  afterAll(async () => {
    await app.close();
    await new Promise((resolve) => idp.close(resolve));
  });

  it('accepts a valid RS256 token and records the actor from its claims', async () => {
    const token = await rs256({});
    const result = expectStatus(
      await app.request('POST', '/changes', {
        as: null,
        body: normalChange(),
        headers: { authorization: `Bearer ${token}` },
      }),
      201,
    );
    const [event] = await app.eventsOf(result.body.id as string);
    expect(event.metadata.actor).toEqual({ id: 'u-rita', name: 'Rita Requester', roles: ['requester'] });
  });

  it.each([
    ['a wrong issuer', { iss: 'https://evil.example.test/' }],
    ['a wrong audience', { aud: 'someone-else' }],
    ['no roles claim', { roles: 'requester' }],
    ['no expiry (it would be good for ever)', { exp: false as const }],
  ])('refuses %s with 401', async (_name, claims) => {
    const token = await rs256(claims);
    expectStatus(
      await app.request('GET', '/changes/CHG-001', {
        as: null,
        headers: { authorization: `Bearer ${token}` },
      }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('refuses a token that grants none of the process roles with 403 FORBIDDEN, reads included', async () => {
    for (const roles of [[], ['offline_access', 'uma_authorization']]) {
      const token = await rs256({ roles });
      for (const [method, path] of [
        ['GET', '/changes'],
        ['GET', '/change-log'],
        ['GET', '/openapi.json'],
        ['POST', '/changes'],
      ] as const) {
        const result = await app.request(method, path, {
          as: null,
          body: method === 'POST' ? normalChange() : undefined,
          headers: { authorization: `Bearer ${token}` },
        });
        expectStatus(result, 403, 'FORBIDDEN');
        expect(result.body).toMatchObject({ rule: 'actor-holds-a-process-role' });
      }
    }
    // one process role among others is enough to read
    const token = await rs256({ roles: ['offline_access', 'auditor'] });
    expectStatus(
      await app.request('GET', '/changes', { as: null, headers: { authorization: `Bearer ${token}` } }),
      200,
    );
  });

  it('refuses HS256 tokens when only a JWKS is configured', async () => {
    const token = await signToken(USERS.requester, 'some-secret-that-is-long-enough-0000000000', {
      issuer,
      audience,
    });
    expectStatus(
      await app.request('GET', '/changes/CHG-001', {
        as: null,
        headers: { authorization: `Bearer ${token}` },
      }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('generates no local secret behind an identity provider', () => {
    expect(existsSync(join(app.dataDir, 'jwt-secret'))).toBe(false);
  });
});

describe('an identity provider whose key set cannot be fetched', () => {
  let app: AppHarness;
  beforeAll(async () => {
    // a port nothing listens on
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    app = await AppHarness.start({
      AUTH_JWT_SECRET: '',
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
      AUTH_ISSUER: 'https://idp.example.test/',
      AUTH_AUDIENCE: 'changeledger',
    });
  });
  afterAll(async () => app.close());

  it('answers 503 SERVICE_UNAVAILABLE (try again), not 401 (log in again)', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ name: 'Rita Requester', roles: ['requester'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('u-rita')
      .setIssuer('https://idp.example.test/')
      .setAudience('changeledger')
      .setExpirationTime('5m')
      .sign(privateKey);
    const result = expectStatus(
      await app.request('GET', '/changes/CHG-001', {
        as: null,
        headers: { authorization: `Bearer ${token}` },
      }),
      503,
      'SERVICE_UNAVAILABLE',
    );
    expect(result.body.detail).toMatch(/key set could not be fetched/);
  });
});

describe('a secret without defaults', () => {
  it('creates a random secret in DATA_DIR on first start and keeps it; tokens signed with it work', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'changeledger-secret-'));
    try {
      const app = await AppHarness.start({ AUTH_JWT_SECRET: '' }, { dataDir: dir });
      const file = join(dir, 'jwt-secret');
      const secret = readFileSync(file, 'utf8').trim();
      expect(secret.length).toBeGreaterThanOrEqual(48);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // What `npm run token` does: resolve the same secret and sign.
      expect(resolveJwtSecret(undefined, dir)).toBe(secret);
      const token = await signToken(USERS.requester, secret);
      expectStatus(
        await app.request('POST', '/changes', {
          as: null,
          body: normalChange(),
          headers: { authorization: `Bearer ${token}` },
        }),
        201,
      );
      await app.close();
      const other = mkdtempSync(join(tmpdir(), 'changeledger-secret-'));
      expect(resolveJwtSecret(undefined, other)).not.toBe(secret);
      rmSync(other, { recursive: true, force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('AUTH_MAX_TOKEN_LIFETIME', () => {
  it('refuses a token made to last longer (401), before its body is looked at; shorter ones work', async () => {
    const app = await AppHarness.start({ AUTH_MAX_TOKEN_LIFETIME: '1h' });
    try {
      const withLifetime = async (expiresIn: string) =>
        app.request('POST', '/changes', {
          as: null,
          body: normalChange(),
          headers: { authorization: `Bearer ${await app.token(USERS.requester, { expiresIn })}` },
        });
      const refused = expectStatus(await withLifetime('30d'), 401, 'UNAUTHENTICATED');
      expect(refused.body).toMatchObject({
        detail: expect.stringContaining('made to last 30d; this service accepts at most 1h'),
      });
      const malformed = await app.request('POST', '/changes', {
        as: null,
        rawBody: '{"type": ',
        headers: {
          authorization: `Bearer ${await app.token(USERS.requester, { expiresIn: '2h' })}`,
          'content-type': 'application/json',
        },
      });
      expectStatus(malformed, 401, 'UNAUTHENTICATED');
      expect(await app.eventCount()).toBe(0);
      expectStatus(await withLifetime('30m'), 201);
    } finally {
      await app.close();
    }
  });
});
