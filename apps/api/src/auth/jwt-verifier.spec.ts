import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { AuthenticationError, JwtVerifier } from './jwt-verifier';

/** A stand-in identity provider (outside the system): serves whatever key set it is given. */
describe('JwtVerifier with an identity provider’s key set', () => {
  let idp: Server;
  let keys: JWK[] = [];
  let fetches = 0;
  let url: string;
  beforeAll(async () => {
    idp = createServer((_, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(idp.address() as { port: number }).port}/jwks.json`;
  });
  afterAll(async () => {
    jest.useRealTimers();
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

  it('stops accepting a key the identity provider withdrew within five minutes, cached tokens too', async () => {
    const a = await keyPair('a');
    const b = await keyPair('b');
    keys = [a.jwk];
    // only the clock is faked: the HTTP fetch of the key set is real
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
    jest.setSystemTime(Date.parse('2026-11-27T12:00:00Z'));
    const verifier = new JwtVerifier({ jwksUrl: url });
    const early = await sign(a.privateKey, 'a');
    await expect(verifier.verify(early)).resolves.toMatchObject({ id: 'u-rita' });
    const fetchedBefore = fetches;

    // The provider rotates: only b from now on (a leaked, say).
    keys = [b.jwk];
    jest.setSystemTime(Date.parse('2026-11-27T12:04:00Z'));
    await expect(verifier.verify(early)).resolves.toMatchObject({ id: 'u-rita' }); // still trusted
    jest.setSystemTime(Date.parse('2026-11-27T12:05:30Z'));
    await expect(verifier.verify(await sign(a.privateKey, 'a'))).rejects.toBeInstanceOf(AuthenticationError);
    await expect(verifier.verify(early)).rejects.toBeInstanceOf(AuthenticationError);
    expect(fetches).toBeGreaterThan(fetchedBefore); // the key set was fetched again
    await expect(verifier.verify(await sign(b.privateKey, 'b'))).resolves.toMatchObject({ id: 'u-rita' });
  });
});
