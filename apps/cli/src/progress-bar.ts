/**
 * A terminal progress line: done/total, rate, ETA. Redraws in place on a TTY; elsewhere
 * (CI, logs) prints a line at most every few seconds.
 */
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
    const width = 30;
    const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '.');
    const line =
      `${this.label} [${bar}] ${(fraction * 100).toFixed(1)}% ${count.toLocaleString('en')} ${this.unit}` +
      ` ${Math.round(rate).toLocaleString('en')} ${this.unit}/s ETA ${eta}s`;
    this.draw(line, tty);
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

  private draw(line: string, tty: boolean) {
    this.stream.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    this.drawn = tty;
    if (tty) ProgressBar.open.add(this);
  }
}
