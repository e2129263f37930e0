import { describe, expect, it } from '@jest/globals';
import { PositionWaiters } from './position-waiters';

describe('PositionWaiters', () => {
  it('answers true to the waits a position reaches, false to those that time out or are cancelled', async () => {
    const waiters = new PositionWaiters();
    const upTo5 = waiters.wait(5n, 10_000);
    const upTo9 = waiters.wait(9n, 10_000);
    const timesOut = waiters.wait(100n, 10);
    waiters.reached(4n);
    waiters.reached(7n);
    expect(await upTo5).toBe(true);
    expect(await timesOut).toBe(false);
    const cancelled = waiters.wait(50n, 10_000);
    waiters.cancelAll();
    expect(await upTo9).toBe(false);
    expect(await cancelled).toBe(false);
    waiters.reached(1_000n); // nothing left to answer
  });
});
