import { ProgressBar } from './progress-bar';

/** A terminal that keeps what is written to it. */
const terminal = (columns?: number) => {
  const written: string[] = [];
  const stream = { isTTY: true, columns, write: (text: string) => written.push(text) > 0 };
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

  it('keeps the line narrower than the terminal (a wrapped line leaves a row behind at each redraw): the bar shrinks, then goes', () => {
    const line = (columns: number) => {
      const { written, stream } = terminal(columns);
      new ProgressBar('backup check', 'events', stream).update(250_000, 250_000, 600_000);
      expect(written).toHaveLength(1);
      return written[0].replace(/^\r/, '').replace('\u001b[K', '');
    };
    const wide = line(200);
    expect(wide).toMatch(/^backup check \[#{13}\.{17}\] 41\.7% 250,000 events .* ETA \d+s$/);
    const narrower = line(wide.length - 5);
    expect(narrower.length).toBeLessThan(wide.length - 5);
    expect(narrower).toMatch(/^backup check \[[#.]{24}\] 41\.7% 250,000 events/);
    const narrow = line(60);
    expect(narrow.length).toBeLessThanOrEqual(59);
    expect(narrow).toMatch(/^backup check 41\.7% 250,000 events/);
    expect(line(20)).toBe('backup check 41.7% ');
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
