import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { AuthenticationError, IdentityProviderUnavailableError, JwtVerifier } from './jwt-verifier';

describe('JwtVerifier: feed tokens', () => {
  const secret = 'feed-test-secret-that-is-long-enough-0123456789';
  const verifier = new JwtVerifier({ secret });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ name: 'Team calendar', roles: ['auditor'], ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('cal-team')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));

  it('names the feed a token is limited to; an ordinary token has none (nothing more to record in events)', async () => {
    expect(await verifier.verify(await sign({ feed: 'schedule' }))).toEqual({
      id: 'cal-team',
      name: 'Team calendar',
      roles: ['auditor'],
      feed: 'schedule',
    });
    expect(await verifier.verify(await sign({}))).not.toHaveProperty('feed');
  });

  it('refuses a token whose id is withdrawn (AUTH_REVOKED_TOKEN_IDS), and only that one', async () => {
    const withdrawing = new JwtVerifier({ secret, revokedTokenIds: ['t-leaked', 't-old'] });
    await expect(withdrawing.verify(await sign({ jti: 't-leaked', feed: 'schedule' }))).rejects.toThrow(
      new AuthenticationError('the token has been withdrawn (AUTH_REVOKED_TOKEN_IDS)'),
    );
    expect(await withdrawing.verify(await sign({ jti: 't-other' }))).toMatchObject({ id: 'cal-team' });
    expect(await withdrawing.verify(await sign({}))).toMatchObject({ id: 'cal-team' });
  });

  it.each([['changes'], [''], [['schedule']], [null]])(
    'refuses a feed claim naming no feed: %j',
    async (feed) => {
      await expect(verifier.verify(await sign({ feed }))).rejects.toThrow(
        new AuthenticationError('the token\'s "feed" claim names no feed of this service (schedule)'),
      );
    },
  );
});

/** Only the clock is faked (jest.setSystemTime): timers and the key set's HTTP fetch are real. */
const fakeClockOnly = () =>
  jest.useFakeTimers({
    doNotFake: [
      'setTimeout',
      'setInterval',
      'setImmediate',
      'nextTick',
      'queueMicrotask',
      'clearTimeout',
      'clearInterval',
      'clearImmediate',
      'hrtime',
      'performance',
    ],
  });

/** A stand-in identity provider (outside the system): serves whatever key set it is given. */
describe('JwtVerifier with an identity provider’s key set', () => {
  let idp: Server;
  let keys: JWK[] = [];
  let fetches = 0;
  let failing = false;
  /** Sends the headers and half the key set, then nothing more (a stalled provider or proxy). */
  let stalling = false;
  let url: string;
  beforeAll(async () => {
    idp = createServer((_, res) => {
      fetches++;
      if (stalling) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"keys":[');
        return;
      }
      if (failing) {
        res.statusCode = 500;
        res.end('down');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(idp.address() as { port: number }).port}/jwks.json`;
  });
  afterEach(() => {
    jest.useRealTimers();
    failing = false;
    stalling = false;
  });
  afterAll(async () => {
    idp.closeAllConnections();
    await new Promise((resolve) => idp.close(resolve));
  });

  const keyPair = async (kid: string) => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
  };
  const sign = (privateKey: Parameters<SignJWT['sign']>[0], kid: string) =>
    new SignJWT({ name: 'Rita Requester', roles: ['requester'] })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setSubject('u-rita')
      .setIssuedAt(Math.floor(Date.now() / 1000))
      .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
      .sign(privateKey);

  it('stops accepting a key the identity provider withdrew within five minutes, tokens verified before too', async () => {
    const a = await keyPair('a');
    const b = await keyPair('b');
    keys = [a.jwk];
    fakeClockOnly();
    jest.setSystemTime(Date.parse('2026-11-27T12:00:00Z'));
    const verifier = new JwtVerifier({ jwksUrl: url });
    const early = await sign(a.privateKey, 'a');
    await expect(verifier.verify(early)).resolves.toMatchObject({ id: 'u-rita' });
    const fetchedBefore = fetches;

    // The provider rotates: only b from now on (a leaked, say).
    keys = [b.jwk];
    // The worst case: a new token checked against the key set still kept from before...
    jest.setSystemTime(Date.parse('2026-11-27T12:02:29Z'));
    const late = await sign(a.privateKey, 'a');
    await expect(verifier.verify(late)).resolves.toMatchObject({ id: 'u-rita' });
    expect(fetches).toBe(fetchedBefore);
    jest.setSystemTime(Date.parse('2026-11-27T12:04:58Z'));
    await expect(verifier.verify(late)).resolves.toMatchObject({ id: 'u-rita' }); // still trusted
    // ...and five minutes after the rotation nothing signed with a verifies, tokens trusted before too
    jest.setSystemTime(Date.parse('2026-11-27T12:05:00Z'));
    await expect(verifier.verify(late)).rejects.toBeInstanceOf(AuthenticationError);
    await expect(verifier.verify(early)).rejects.toBeInstanceOf(AuthenticationError);
    await expect(verifier.verify(await sign(a.privateKey, 'a'))).rejects.toBeInstanceOf(AuthenticationError);
    expect(fetches).toBeGreaterThan(fetchedBefore); // the key set was fetched again
    await expect(verifier.verify(await sign(b.privateKey, 'b'))).resolves.toMatchObject({ id: 'u-rita' });
  });

  it('tries each of several signing keys for a token without kid, and refuses one none of them signed', async () => {
    const a = await keyPair('a');
    const b = await keyPair('b');
    const stranger = await keyPair('c');
    // A provider in the middle of a rotation that names no kids: two keys, either may sign.
    const withoutKid = ({ kid: _kid, ...jwk }: JWK) => jwk;
    keys = [withoutKid(a.jwk), withoutKid(b.jwk)];
    const verifier = new JwtVerifier({ jwksUrl: url });
    const signWithoutKid = (privateKey: Parameters<SignJWT['sign']>[0], sub: string) =>
      new SignJWT({ name: 'Rita Requester', roles: ['requester'] })
        .setProtectedHeader({ alg: 'RS256' })
        .setSubject(sub)
        .setIssuedAt(Math.floor(Date.now() / 1000))
        .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
        .sign(privateKey);
    await expect(verifier.verify(await signWithoutKid(a.privateKey, 'u-first'))).resolves.toMatchObject({
      id: 'u-first',
    });
    await expect(verifier.verify(await signWithoutKid(b.privateKey, 'u-second'))).resolves.toMatchObject({
      id: 'u-second',
    });
    await expect(verifier.verify(await signWithoutKid(stranger.privateKey, 'u-forger'))).rejects.toThrow(
      new AuthenticationError('the token signature is invalid'),
    );
  });

  it('while the key set cannot be fetched: 503 for every token that needs it, fetched once per retry period, and verified again once it answers', async () => {
    const a = await keyPair('a');
    keys = [a.jwk];
    failing = true;
    const verifier = new JwtVerifier({ jwksUrl: url, jwksRetryMs: 1_000 });
    const fetchedBefore = fetches;
    // distinct tokens (none is in the verified cache), as many users at once
    const tokens = await Promise.all(Array.from({ length: 10 }, () => sign(a.privateKey, 'a')));
    for (const token of tokens) {
      await expect(verifier.verify(token)).rejects.toBeInstanceOf(IdentityProviderUnavailableError);
    }
    expect(fetches - fetchedBefore).toBe(1); // not ten
    failing = false;
    // within the retry period the failure stands, without a fetch...
    await expect(verifier.verify(tokens[0])).rejects.toBeInstanceOf(IdentityProviderUnavailableError);
    expect(fetches - fetchedBefore).toBe(1);
    // ...after it, the key set is fetched again and the tokens verify
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    for (const token of tokens) await expect(verifier.verify(token)).resolves.toMatchObject({ id: 'u-rita' });
    expect(fetches - fetchedBefore).toBe(2);
  });

  it('a provider that sends its answer’s headers and then stalls: 503 at the fetch deadline, not a request held for ever', async () => {
    const a = await keyPair('a');
    keys = [a.jwk];
    stalling = true;
    const verifier = new JwtVerifier({ jwksUrl: url, jwksRetryMs: 300, jwksFetchDeadlineMs: 500 });
    const started = Date.now();
    let giveUp: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      verifier.verify(await sign(a.privateKey, 'a')).catch((error: unknown) => error),
      new Promise((resolve) => (giveUp = setTimeout(() => resolve('still waiting after 5 s'), 5_000))),
    ]);
    clearTimeout(giveUp);
    expect(outcome).toBeInstanceOf(IdentityProviderUnavailableError);
    expect((outcome as Error).message).toContain('no complete answer within 500 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    // the provider recovers: fetched again after the retry period, and the token verifies
    stalling = false;
    await new Promise((resolve) => setTimeout(resolve, 350));
    await expect(verifier.verify(await sign(a.privateKey, 'a'))).resolves.toMatchObject({ id: 'u-rita' });
  });

  it('a failed fetch for an unknown kid holds up no token whose key the fresh copy has', async () => {
    const a = await keyPair('a');
    keys = [a.jwk];
    failing = false;
    fakeClockOnly();
    jest.setSystemTime(Date.parse('2026-11-27T12:00:00Z'));
    const verifier = new JwtVerifier({ jwksUrl: url });
    await expect(verifier.verify(await sign(a.privateKey, 'a'))).resolves.toMatchObject({ id: 'u-rita' });
    // past jose's 30 s between fetches, within the copy's 150 s: a token with a kid nobody has
    // makes it fetch again, and the provider is down
    jest.setSystemTime(Date.parse('2026-11-27T12:00:40Z'));
    failing = true;
    const fetchedBefore = fetches;
    const stranger = await keyPair('zzz');
    await expect(verifier.verify(await sign(stranger.privateKey, 'zzz'))).rejects.toBeInstanceOf(
      IdentityProviderUnavailableError,
    );
    expect(fetches).toBe(fetchedBefore + 1);
    // a new token of a known key verifies from the copy, without a fetch
    await expect(verifier.verify(await sign(a.privateKey, 'a'))).resolves.toMatchObject({ id: 'u-rita' });
    expect(fetches).toBe(fetchedBefore + 1);
    // more unknown kids (anyone may send them, or a new key not fetched yet): answered from the
    // copy, 503 (try again), not fetched for each
    for (let i = 0; i < 5; i++) {
      await expect(verifier.verify(await sign(stranger.privateKey, `zzz-${i}`))).rejects.toBeInstanceOf(
        IdentityProviderUnavailableError,
      );
    }
    expect(fetches).toBe(fetchedBefore + 1);
  });

  it('refuses a token whose name or sub holds control characters (they would reach evidence and terminals)', async () => {
    const verifier = new JwtVerifier({ secret: 'a-secret-that-is-long-enough-for-hs256-0000' });
    const hs256 = (sub: string, name: string) =>
      new SignJWT({ name, roles: ['requester'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a-secret-that-is-long-enough-for-hs256-0000'));
    await expect(verifier.verify(await hs256('u-rita', 'Rita\u001b[2J'))).rejects.toThrow(
      /control characters/,
    );
    await expect(verifier.verify(await hs256('u-\u0000rita', 'Rita'))).rejects.toThrow(/control characters/);
    await expect(verifier.verify(await hs256('u-rita', 'Rita Requester'))).resolves.toMatchObject({
      id: 'u-rita',
      name: 'Rita Requester',
    });
  });

  it('with a maximum lifetime, refuses a token made to last longer, however much of it is left', async () => {
    const secret = 'a-secret-that-is-long-enough-for-hs256-0000';
    const verifier = new JwtVerifier({ secret, maxLifetimeSeconds: 3600 });
    const now = Math.floor(Date.now() / 1000);
    const token = (claims: { iat?: number; exp: number }) => {
      const jwt = new SignJWT({ name: 'Rita', roles: ['requester'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('u-rita')
        .setExpirationTime(claims.exp);
      if (claims.iat !== undefined) jwt.setIssuedAt(claims.iat);
      return jwt.sign(new TextEncoder().encode(secret));
    };
    await expect(verifier.verify(await token({ iat: now, exp: now + 3600 }))).resolves.toMatchObject({
      id: 'u-rita',
    });
    // made for a week two days ago: five days left, still refused
    await expect(
      verifier.verify(await token({ iat: now - 2 * 86_400, exp: now + 5 * 86_400 })),
    ).rejects.toThrow(
      'the token was made to last 7d; this service accepts at most 1h (AUTH_MAX_TOKEN_LIFETIME)',
    );
    // an iat in the future does not shorten it
    await expect(
      verifier.verify(await token({ iat: now + 365 * 86_400 - 60, exp: now + 365 * 86_400 })),
    ).rejects.toThrow(/made to last 365d/);
    // without iat: what is left counts
    await expect(verifier.verify(await token({ exp: now + 1800 }))).resolves.toMatchObject({ id: 'u-rita' });
    await expect(verifier.verify(await token({ exp: now + 7200 }))).rejects.toBeInstanceOf(
      AuthenticationError,
    );
    // without the setting, any lifetime
    await expect(
      new JwtVerifier({ secret }).verify(await token({ iat: now, exp: now + 365 * 86_400 })),
    ).resolves.toMatchObject({ id: 'u-rita' });
  });
});
