/**
 * A terminal progress line: done/total, rate, ETA. Redraws in place on a TTY; elsewhere
 * (CI, logs) prints a line at most every few seconds.
 */
/** The bar's width on a terminal wide enough; narrower, it shrinks, and under the minimum it is left out. */
const BAR_WIDTH = 30;
const MIN_BAR_WIDTH = 10;

export class ProgressBar {
  /** Bars with a line drawn in place and not ended: an error message must start on a line of its own. */
  private static readonly open = new Set<ProgressBar>();

  /** Ends every line drawn in place (before an error message). */
  static endOpenLines() {
    for (const bar of [...ProgressBar.open]) bar.endLine();
  }

  private readonly started = Date.now();
  private lastPrint = 0;
  /** A line is drawn in place on the terminal and not ended yet. */
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly unit: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /**
   * `count` items done so far; `done` of `total` measures how far along (e.g. log positions),
   * counted from `from` (a catch-up starts where the read models already are).
   */
  update(count: number, done: number, total: number, from = 0) {
    const now = Date.now();
    const tty = this.stream.isTTY === true;
    if (now - this.lastPrint < (tty ? 100 : 3000) && done < total) return;
    this.lastPrint = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = count / seconds;
    const fraction = total > from ? Math.min(Math.max(done - from, 0) / (total - from), 1) : 1;
    const progressRate = Math.max(done - from, 0) / seconds;
    const eta = progressRate > 0 && total > done ? Math.round((total - done) / progressRate) : 0;
    const figures =
      `${(fraction * 100).toFixed(1)}% ${count.toLocaleString('en')} ${this.unit}` +
      ` ${Math.round(rate).toLocaleString('en')} ${this.unit}/s ETA ${eta}s`;
    // The bar gives way first on a narrow terminal (see draw): figures are what one reads.
    const room = this.columns(tty) - `${this.label} [] ${figures}`.length;
    const width = Math.min(BAR_WIDTH, room);
    if (width < MIN_BAR_WIDTH) {
      this.draw(`${this.label} ${figures}`, tty);
      return;
    }
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
    this.draw(`${this.label} [${bar}] ${figures}`, tty);
  }

  /** `count` items done when the total is not known: the count and the rate, no bar or ETA. */
  tally(count: number) {
    const now = Date.now();
    const tty = this.stream.isTTY === true;
    if (now - this.lastPrint < (tty ? 100 : 3000)) return;
    this.lastPrint = now;
    const rate = count / Math.max((now - this.started) / 1000, 0.001);
    const line = `${this.label} ${count.toLocaleString('en')} ${this.unit} ${Math.round(rate).toLocaleString('en')} ${this.unit}/s`;
    this.draw(line, tty);
  }

  /** Ends the line drawn in place, so that what is written next (to stdout too) starts afresh. */
  endLine() {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
    ProgressBar.open.delete(this);
  }

  done(summary: string) {
    this.endLine();
    this.stream.write(`${this.label}: ${summary}\n`);
  }

  /**
   * Characters a line may take: one fewer than the terminal's width, since a line that fills it
   * wraps, and `\r` then goes back to the start of the last row only, leaving a row behind at
   * each redraw. Not a terminal: no limit.
   */
  private columns(tty: boolean): number {
    const columns = this.stream.columns;
    return tty && typeof columns === 'number' && columns > 1 ? columns - 1 : Number.POSITIVE_INFINITY;
  }

  private draw(line: string, tty: boolean) {
    // (the line is ASCII but for the label and unit, which are ours: one character, one column)
    if (tty) line = line.slice(0, this.columns(tty));
    this.stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    this.drawn = tty;
    if (tty) ProgressBar.open.add(this);
  }
}
