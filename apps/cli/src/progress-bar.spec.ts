import { ProgressBar } from './progress-bar';

/** A terminal that keeps what is written to it. */
const terminal = () => {
  const written: string[] = [];
  const stream = { isTTY: true, write: (text: string) => written.push(text) > 0 };
  return { written, stream: stream as unknown as NodeJS.WriteStream };
};

describe('ProgressBar', () => {
  it('measures a catch-up from where it started, not from the start of the log', () => {
    const { written, stream } = terminal();
    const bar = new ProgressBar('read models', 'events', stream);
    // the read models were at 900 of 1,000: 50 of the 100 left are done
    bar.update(50, 950, 1000, 900);
    expect(written.at(-1)).toContain(' 50.0% ');
  });

  it('ends the line it drew before anything else is written, and only then', () => {
    const { written, stream } = terminal();
    const bar = new ProgressBar('verify', 'events', stream);
    bar.endLine();
    expect(written).toEqual([]);
    bar.update(10, 10, 20);
    bar.endLine();
    expect(written.at(-1)).toBe('\n');
    bar.done('intact');
    expect(written.slice(-2)).toEqual(['\n', 'verify: intact\n']);
  });

  it('prints whole lines where the stream is not a terminal', () => {
    const written: string[] = [];
    const stream = { isTTY: false, write: (text: string) => written.push(text) > 0 };
    const bar = new ProgressBar('rebuild', 'events', stream as unknown as NodeJS.WriteStream);
    bar.update(20, 20, 20);
    bar.done('swapped in');
    expect(written).toHaveLength(2);
    expect(written[0]).toMatch(/^rebuild \[#{30}\] 100\.0% 20 events .*\n$/);
    expect(written[1]).toBe('rebuild: swapped in\n');
  });
});
