import { applyDecorators } from '@nestjs/common';
import { IsISO8601, Matches } from 'class-validator';

const DATE = '\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])';
const TIME = '([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d(\\.\\d{1,9})?)?';
const ZONE = '(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)';
const DATE_TIME = new RegExp(`^${DATE}T${TIME}${ZONE}$`);
const DATE_OR_DATE_TIME = new RegExp(`^${DATE}(T${TIME}${ZONE})?$`);

/**
 * An instant: an ISO 8601 calendar date and time with its time zone (`Z` or an offset), or with
 * `dateOnly`, also a bare date (midnight UTC, for query filters). IsISO8601 alone lets through
 * week and ordinal dates (`2026-W05`: a 500 where the value became a Date) and times without a
 * zone, which would be read in the server's local time.
 */
export const IsTimestamp = ({ dateOnly = false }: { dateOnly?: boolean } = {}) =>
  applyDecorators(
    IsISO8601({ strict: true, strictSeparator: true }),
    Matches(dateOnly ? DATE_OR_DATE_TIME : DATE_TIME, {
      message: dateOnly
        ? '$property must be a date (2026-12-01) or a time with its zone (2026-12-01T22:00:00Z)'
        : '$property must be an ISO 8601 time with its zone, e.g. 2026-12-01T22:00:00Z',
    }),
  );
