/**
 * The timestamps the API and the reports take: an ISO 8601 date, or a date and time with its
 * zone (`Z` or an offset). Months and days are checked for range only; `isCalendarDay` says
 * whether the day exists.
 */
const DATE = '\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])';
const TIME = '([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?';
const ZONE = '(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)';

export const ISO_DATE = new RegExp(`^${DATE}$`);
export const ISO_DATE_TIME = new RegExp(`^${DATE}T${TIME}${ZONE}$`);
export const ISO_DATE_OR_DATE_TIME = new RegExp(`^${DATE}(T${TIME}${ZONE})?$`);

/**
 * The first and last instants (ms) whose UTC text has a four-digit year: times are stored and
 * compared as that text, and past 9999 it would be `+010000-…`, which sorts before every time.
 */
export const FIRST_UTC_INSTANT_MS = Date.parse('0000-01-01T00:00:00.000Z');
export const LAST_UTC_INSTANT_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** Whether `YYYY-MM-DD` names a day of the calendar (Date rolls 2026-02-30 over to 2 March). */
export const isCalendarDay = (date: string): boolean => {
  const day = new Date(`${date}T00:00:00.000Z`);
  return !Number.isNaN(day.getTime()) && day.toISOString().startsWith(date);
};
