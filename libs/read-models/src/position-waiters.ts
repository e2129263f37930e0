interface Waiter {
  readonly position: bigint;
  readonly resolve: (reached: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

/** Callers waiting for the read models to reach a log position (a projector's `waitFor`). */
export class PositionWaiters {
  // A set: each of many parked waits leaves it in O(1) when it times out (an array's filter made
  // n timeouts cost n² steps).
  private readonly waiting = new Set<Waiter>();
  /** No waiter is at or below this: `reached` below it has nothing to do. */
  private lowest: bigint | undefined;

  /** Resolves true once `reached` is called with `position` or more, false after `timeoutMs`. */
  wait(position: bigint, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        position,
        resolve,
        timer: setTimeout(() => {
          this.waiting.delete(waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiting.add(waiter);
      if (this.lowest === undefined || position < this.lowest) this.lowest = position;
    });
  }

  /** The read models now include `position`: every wait up to it answers true. */
  reached(position: bigint): void {
    if (this.lowest === undefined || position < this.lowest) return;
    let lowest: bigint | undefined;
    for (const waiter of this.waiting) {
      if (waiter.position > position) {
        if (lowest === undefined || waiter.position < lowest) lowest = waiter.position;
        continue;
      }
      this.waiting.delete(waiter);
      clearTimeout(waiter.timer);
      waiter.resolve(true);
    }
    this.lowest = lowest;
  }

  /** Stopping: every wait answers false now. */
  cancelAll(): void {
    for (const waiter of this.waiting) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.waiting.clear();
    this.lowest = undefined;
  }
}
