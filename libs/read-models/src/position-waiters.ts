/** Callers waiting for the read models to reach a log position (a projector's `waitFor`). */
export class PositionWaiters {
  private waiting: { position: bigint; resolve: (reached: boolean) => void; timer: NodeJS.Timeout }[] = [];

  /** Resolves true once `reached` is called with `position` or more, false after `timeoutMs`. */
  wait(position: bigint, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter = {
        position,
        resolve,
        timer: setTimeout(() => {
          this.waiting = this.waiting.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiting.push(waiter);
    });
  }

  /** The read models now include `position`: every wait up to it answers true. */
  reached(position: bigint): void {
    if (!this.waiting.some((w) => w.position <= position)) return;
    const still = [];
    for (const waiter of this.waiting) {
      if (waiter.position > position) {
        still.push(waiter);
        continue;
      }
      clearTimeout(waiter.timer);
      waiter.resolve(true);
    }
    this.waiting = still;
  }

  /** Stopping: every wait answers false now. */
  cancelAll(): void {
    for (const waiter of this.waiting) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.waiting = [];
  }
}
