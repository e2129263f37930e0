import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsISO8601, isISO8601, Matches, ValidateBy } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import {
  FIRST_UTC_INSTANT_MS,
  ISO_DATE_OR_DATE_TIME,
  ISO_DATE_TIME,
  LAST_UTC_INSTANT_MS,
} from '@changeledger/domain';

/**
 * An instant: an ISO 8601 calendar date and time with its time zone (`Z` or an offset), or with
 * `dateOnly`, also a bare date (for query filters: `from` its midnight UTC, `through` the whole
 * day, as the filter reads it; `description` says so in the OpenAPI document). IsISO8601 alone lets through
 * week and ordinal dates (`2026-W05`: a 500 where the value became a Date) and times without a
 * zone, which would be read in the server's local time.
 */
export const IsTimestamp = ({
  dateOnly = false,
  description,
}: { dateOnly?: boolean; description?: string } = {}) =>
  applyDecorators(
    IsISO8601({ strict: true, strictSeparator: true }),
    Matches(dateOnly ? ISO_DATE_OR_DATE_TIME : ISO_DATE_TIME, {
      message: dateOnly
        ? '$property must be a date (2026-12-01) or a time with its zone (2026-12-01T22:00:00Z)'
        : '$property must be an ISO 8601 time with its zone, e.g. 2026-12-01T22:00:00Z',
    }),
    InUtcYears(),
    // for the OpenAPI document (its IsISO8601 schema is a plain string)
    JSONSchema(
      dateOnly
        ? { description: description ?? 'a date (midnight UTC) or a time with its zone' }
        : { format: 'date-time', description: 'RFC 3339 (the server also takes one without seconds)' },
    ) as PropertyDecorator,
  );

/**
 * Its UTC time in the years 0000–9999 (`9999-12-31T23:00:00-05:00` is in 10000): see
 * LAST_UTC_INSTANT_MS.
 */
const InUtcYears = () =>
  ValidateBy({
    name: 'inUtcYears',
    validator: {
      validate: (value: unknown) => {
        if (typeof value !== 'string') return true; // the other checks refuse it
        const time = Date.parse(value);
        return Number.isNaN(time) || (time >= FIRST_UTC_INSTANT_MS && time <= LAST_UTC_INSTANT_MS);
      },
      defaultMessage: () => '$property must be a time in UTC years 0000 to 9999',
    },
  });

/**
 * A time in a request body, kept in UTC as the contract has it: one sent with an offset
 * (`2026-12-01T23:30:00.5-05:00`) becomes its UTC time with the same seconds and fraction as
 * sent (`2026-12-02T04:30:00.5Z`: an offset moves whole minutes) before it reaches a command;
 * one in UTC keeps its text. Anything that is not a valid time passes unchanged, for IsTimestamp
 * to refuse (Date.parse would turn 30 February into 2 March), and so does one whose UTC time
 * would leave the years 0000–9999.
 */
export const IsUtcTimestamp = () =>
  applyDecorators(
    Transform(({ value }: { value: unknown }) => toUtc(value)),
    IsTimestamp(),
  );

const toUtc = (value: unknown): unknown => {
  if (
    typeof value !== 'string' ||
    value.endsWith('Z') ||
    !ISO_DATE_TIME.test(value) ||
    !isISO8601(value, { strict: true, strictSeparator: true })
  ) {
    return value;
  }
  const utc = new Date(Date.parse(value)).toISOString();
  if (!/^\d{4}-/.test(utc)) return value;
  const minutes = utc.slice(0, 16); // YYYY-MM-DDTHH:MM
  const rest = /T\d\d:\d\d(:\d\d(\.\d+)?)?/.exec(value)![1] ?? '';
  return `${minutes}${rest}Z`;
};
