import { ISO_DATE, ISO_DATE_TIME, isCalendarDay, LAST_UTC_INSTANT_MS } from '@changeledger/domain';

/** The time span a report covers: `from` inclusive, `to` exclusive, both UTC instants. */
export interface ReportPeriod {
  /** `2026-Q4`, `2026-11`, `2026`, or `from … to` for a custom span. */
  readonly label: string;
  readonly from: string;
  readonly to: string;
}

/** Bad period input, with the query field it concerns (the API answers 400 with it). */
export class ReportPeriodError extends Error {
  constructor(
    readonly field: 'period' | 'from' | 'to',
    message: string,
  ) {
    super(message);
    this.name = 'ReportPeriodError';
  }
}

const utc = (year: number, monthIndex: number, day = 1) => new Date(Date.UTC(year, monthIndex, day));

const span = (label: string, from: Date, to: Date): ReportPeriod => ({
  label,
  from: from.toISOString(),
  to: to.toISOString(),
});

/** `2026-Q4` (quarter), `2026-11` (month) or `2026` (year), in UTC. */
export const parsePeriodLabel = (label: string): ReportPeriod => {
  const quarter = /^([1-9]\d{3})-Q([1-4])$/.exec(label);
  if (quarter) {
    const year = Number(quarter[1]);
    const first = (Number(quarter[2]) - 1) * 3;
    return span(label, utc(year, first), utc(year, first + 3));
  }
  const month = /^([1-9]\d{3})-(0[1-9]|1[0-2])$/.exec(label);
  if (month) {
    const year = Number(month[1]);
    const index = Number(month[2]) - 1;
    return span(label, utc(year, index), utc(year, index + 1));
  }
  if (/^[1-9]\d{3}$/.test(label)) return span(label, utc(Number(label), 0), utc(Number(label) + 1, 0));
  throw new ReportPeriodError('period', 'must be a quarter (2026-Q4), a month (2026-11) or a year (2026)');
};

/**
 * Bounds are compared with stored times as UTC text, which past the year 9999 sorts before every
 * time (`to=9999-12-31` matched nothing): the last instant of 9999 is as late as any can be.
 */
const atMostLastInstant = (time: number) => new Date(Math.min(time, LAST_UTC_INSTANT_MS));

/** Ten years: a report's charts and tables have one column per month. */
const MAX_SPAN_DAYS = 3660;

/**
 * A bound given as a date or an instant. A date-only `to` means the end of that day, so
 * `from=2026-10-01&to=2026-12-31` covers the whole of 31 December (reports and `GET /changes`).
 */
export const parseBound = (field: 'from' | 'to', value: string): Date => {
  if (ISO_DATE.test(value)) {
    if (isCalendarDay(value)) {
      const day = new Date(`${value}T00:00:00.000Z`);
      return field === 'to' ? atMostLastInstant(day.getTime() + 86_400_000) : day;
    }
  } else if (ISO_DATE_TIME.test(value) && isCalendarDay(value.slice(0, 10))) {
    const instant = new Date(value);
    if (!Number.isNaN(instant.getTime())) return atMostLastInstant(instant.getTime());
  }
  throw new ReportPeriodError(field, 'must be a date (2026-10-01) or an ISO 8601 instant with a time zone');
};

/** The period of a report request: a `period` label, or `from` and `to`; never both. */
export const resolveReportPeriod = (input: { period?: string; from?: string; to?: string }): ReportPeriod => {
  if (input.period !== undefined) {
    if (input.from !== undefined || input.to !== undefined) {
      throw new ReportPeriodError('period', 'give either period or from/to, not both');
    }
    return parsePeriodLabel(input.period);
  }
  if (input.from === undefined || input.to === undefined) {
    const missing = input.from === undefined ? 'from' : 'to';
    throw new ReportPeriodError(missing, 'period, or both from and to, must be given');
  }
  const from = parseBound('from', input.from);
  const to = parseBound('to', input.to);
  if (to.getTime() <= from.getTime()) throw new ReportPeriodError('to', 'must be after from');
  if (to.getTime() - from.getTime() > MAX_SPAN_DAYS * 86_400_000) {
    throw new ReportPeriodError('to', `must be at most ${MAX_SPAN_DAYS / 366} years after from`);
  }
  return span(`${input.from} … ${input.to}`, from, to);
};

/**
 * A period must have begun: a report of one that has not would count nothing in it, yet list
 * today's open findings (overdue retrospectives, changes without a review) under it.
 */
export const assertPeriodBegun = (
  period: ReportPeriod,
  input: { period?: string; from?: string; to?: string },
  now: Date,
): void => {
  if (Date.parse(period.from) > now.getTime()) {
    throw new ReportPeriodError(
      input.period !== undefined ? 'period' : 'from',
      `has not begun (it starts ${period.from}): a report covers time that has passed`,
    );
  }
};

/** The calendar months (`YYYY-MM`, UTC) a period touches, in order. */
export const monthsOf = (period: ReportPeriod): string[] => {
  const months: string[] = [];
  const end = Date.parse(period.to);
  const cursor = new Date(period.from);
  cursor.setUTCDate(1);
  cursor.setUTCHours(0, 0, 0, 0);
  while (cursor.getTime() < end) {
    months.push(cursor.toISOString().slice(0, 7));
    cursor.setUTCMonth(cursor.getUTCMonth() + 1);
  }
  return months;
};
