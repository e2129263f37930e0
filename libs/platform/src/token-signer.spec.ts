import { decodeJwt } from 'jose';
import { signToken } from './token-signer';

describe('signToken', () => {
  const RealDate = Date;
  afterEach(() => {
    global.Date = RealDate;
  });
  /** A clock whose every read (`new Date()`, `Date.now()`) is a millisecond after the one before. */
  const tickingClock = (start: number) => {
    let now = start;
    global.Date = class extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length > 0) super(...(args as [number]));
        else super(now++);
      }
      static override now() {
        return now++;
      }
    } as DateConstructor;
    return () => now;
  };

  it('never makes a token last longer than asked, also when the clock ticks over a second while it signs', async () => {
    // each clock read a millisecond later, from the last millisecond of a second
    const clock = tickingClock(1_800_000_000_999);
    const token = await signToken(
      { sub: 'u-1', name: 'N', roles: ['requester'] },
      'a-secret-that-is-long-enough-for-hs256-000000',
      { expiresIn: '1h' },
    );
    const { iat, exp } = decodeJwt(token);
    expect(clock()).toBeGreaterThan(1_800_000_001_000); // the clock did tick over while it signed
    expect(exp! - iat!).toBeLessThanOrEqual(3600);
    expect(exp! - iat!).toBeGreaterThanOrEqual(3599);
  });

  it('with a lifetime in seconds, exp is exactly iat + the lifetime, whatever the clock does while it signs', async () => {
    tickingClock(1_800_000_000_999);
    const token = await signToken(
      { sub: 'u-1', name: 'N', roles: ['requester'] },
      'a-secret-that-is-long-enough-for-hs256-000000',
      { lifetimeSeconds: 3600 },
    );
    const { iat, exp } = decodeJwt(token);
    expect(iat).toBe(1_800_000_000);
    expect(exp! - iat!).toBe(3600);
  });

  it('takes a period from now, or an absolute expiry, and 12 h when given neither', async () => {
    const secret = 'a-secret-that-is-long-enough-for-hs256-000000';
    const claims = { sub: 'u-1', name: 'N', roles: ['requester'] };
    const lifetime = async (options: Parameters<typeof signToken>[2]) => {
      const { iat, exp } = decodeJwt(await signToken(claims, secret, options));
      return exp! - iat!;
    };
    // (a second less when the clock ticks over between the two: see the test above)
    expect([5399, 5400]).toContain(await lifetime({ expiresIn: '90m' }));
    expect([12 * 3600 - 1, 12 * 3600]).toContain(await lifetime({}));
    const at = Math.floor(Date.now() / 1000) - 60;
    expect(decodeJwt(await signToken(claims, secret, { expiresAt: at })).exp).toBe(at);
  });
});
