import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { onStopSignals, REPEATED_SIGNAL_GRACE_MS, type SignalSource } from './stop-signals';

const setUp = () => {
  const source = new EventEmitter();
  let clock = 1_000;
  const calls: string[] = [];
  const remove = onStopSignals(
    { first: (s) => calls.push(`first ${s}`), again: (s) => calls.push(`again ${s}`) },
    source as unknown as SignalSource,
    () => clock,
  );
  const signal = (name: 'SIGINT' | 'SIGTERM', afterMs = 0) => {
    clock += afterMs;
    source.emit(name, name);
  };
  return { source, calls, signal, remove };
};

describe('onStopSignals', () => {
  it('takes a Ctrl-C that npm forwarded beside the terminal’s (milliseconds apart) as one', () => {
    const { calls, signal } = setUp();
    signal('SIGINT');
    signal('SIGINT', 8);
    expect(calls).toEqual(['first SIGINT']);
  });

  it('takes a second signal after the grace period as "again", SIGTERM after SIGINT too', () => {
    const { calls, signal } = setUp();
    signal('SIGINT');
    signal('SIGINT', 3);
    signal('SIGTERM', REPEATED_SIGNAL_GRACE_MS);
    signal('SIGINT', 1);
    expect(calls).toEqual(['first SIGINT', 'again SIGTERM', 'again SIGINT']);
  });

  it('listens no more once removed', () => {
    const { source, calls, signal, remove } = setUp();
    remove();
    signal('SIGINT');
    expect(calls).toEqual([]);
    expect(source.listenerCount('SIGINT') + source.listenerCount('SIGTERM')).toBe(0);
  });
});
