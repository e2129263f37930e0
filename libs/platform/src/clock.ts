export const CLOCK = Symbol('CLOCK');

/** Time is injected so that tests can fix it; production uses the system clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
