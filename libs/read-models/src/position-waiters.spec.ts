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

  it('answers the waits at or below a position among many parked ones, and lets the rest time out', async () => {
    const waiters = new PositionWaiters();
    const parked = Array.from({ length: 20_000 }, (_, i) => waiters.wait(1_000_000n + BigInt(i), 5));
    const lowTimedOut = waiters.wait(3n, 1); // the lowest wait leaves first
    await new Promise((resolve) => setTimeout(resolve, 5));
    const near = [waiters.wait(10n, 10_000), waiters.wait(20n, 10_000), waiters.wait(30n, 10_000)];
    expect(await lowTimedOut).toBe(false);
    waiters.reached(20n);
    expect(await Promise.all(near.slice(0, 2))).toEqual([true, true]);
    expect(await Promise.all(parked)).toEqual(parked.map(() => false));
    waiters.reached(30n);
    expect(await near[2]).toBe(true);
  });
});
