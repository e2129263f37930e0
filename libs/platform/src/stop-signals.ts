/**
 * How long after the first stop signal another one is taken as the same. `npm run` forwards the
 * SIGINT of a Ctrl-C to its script, and where `sh -c` runs the script's one command in its own
 * process (bash as sh: macOS, Fedora; not Debian's dash) that process also has it from the
 * terminal: one Ctrl-C arrives twice, milliseconds apart, and would count as "again, stop at once".
 * A person's second Ctrl-C comes later than this.
 */
export const REPEATED_SIGNAL_GRACE_MS = 500;

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Where the signals come from: the process, or a test's emitter. */
export interface SignalSource {
  on(signal: StopSignal, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: StopSignal, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface StopSignalHandlers {
  /** The first SIGINT or SIGTERM: begin stopping in good order. */
  readonly first: (signal: NodeJS.Signals) => void;
  /** One more, `REPEATED_SIGNAL_GRACE_MS` or later after the first: the operator insists. */
  readonly again: (signal: NodeJS.Signals) => void;
}

/**
 * Listens for SIGINT and SIGTERM: the first calls `first`, a later one `again`, and one within
 * the grace period after the first (the same Ctrl-C, forwarded) nothing. Returns the removal of
 * the listeners.
 */
export const onStopSignals = (
  handlers: StopSignalHandlers,
  source: SignalSource = process,
  now: () => number = () => performance.now(),
): (() => void) => {
  let firstAt: number | undefined;
  const listener = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = now();
      handlers.first(signal);
    } else if (now() - firstAt >= REPEATED_SIGNAL_GRACE_MS) {
      handlers.again(signal);
    }
  };
  for (const signal of STOP_SIGNALS) source.on(signal, listener);
  return () => {
    for (const signal of STOP_SIGNALS) source.off(signal, listener);
  };
};
