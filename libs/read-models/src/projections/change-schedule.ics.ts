import { withoutControlCharacters } from '@changeledger/domain';
import type { ScheduleItem } from './change-schedule.projection';

/**
 * The forward schedule as an iCalendar file (RFC 5545), for a team's calendar: one event per
 * change, its window as on the schedule, its status, systems and collisions in the description.
 */
export const scheduleIcs = (items: readonly ScheduleItem[], generatedAt: Date): string => {
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//changeledger//forward schedule of change//EN',
    'CALSCALE:GREGORIAN',
    'X-WR-CALNAME:Forward schedule of change',
  ];
  for (const item of items) lines.push(...event(item, generatedAt));
  // RFC 5545 wants at least one component: a quiet fortnight (or a system with nothing planned)
  // gets the UTC time zone every time in the file is in, which strict parsers accept.
  if (items.length === 0) lines.push(...UTC_TIMEZONE);
  lines.push('END:VCALENDAR');
  return lines.map(fold).join('\r\n') + '\r\n';
};

const UTC_TIMEZONE = [
  'BEGIN:VTIMEZONE',
  'TZID:UTC',
  'BEGIN:STANDARD',
  'DTSTART:19700101T000000',
  'TZOFFSETFROM:+0000',
  'TZOFFSETTO:+0000',
  'TZNAME:UTC',
  'END:STANDARD',
  'END:VTIMEZONE',
];

const event = (item: ScheduleItem, generatedAt: Date): string[] => {
  const start = basicUtc(item.from);
  // A change at work has no end yet: its planned end while still ahead, else the next full hour
  // after the file was read (an event without an end lasts no time at all in a calendar, and the
  // change holds its systems until it ends; each refresh of the feed moves it on). An end is
  // rounded up to the second (iCalendar has no fractions) and left out unless after the start.
  const atWorkUntilNow =
    item.until === null && !(item.plannedEnd !== null && item.plannedEnd > generatedAt.toISOString());
  const end = item.until ?? (atWorkUntilNow ? nextFullHour(generatedAt) : item.plannedEnd);
  const endText = end === null ? null : basicUtc(end, 'up');
  const description = [
    `Status: ${item.status}${item.overrunning ? ' (past its planned end)' : ''}`,
    ...(atWorkUntilNow
      ? ['At work: shown until the next full hour (it holds its systems until it ends)']
      : []),
    `Type: ${item.type}${item.riskLevel ? `, risk ${item.riskLevel}` : ''}`,
    `Systems: ${item.systemsAffected.join(', ')}`,
    ...(item.maintenanceWindow ? ['In a maintenance window'] : []),
    ...item.conflictsWith.map(
      (c) => `Collides with ${c.changeId} (${c.title}) on ${c.systems.join(', ')}, ${c.status}`,
    ),
  ].join('\n');
  return [
    'BEGIN:VEVENT',
    `UID:${item.changeId}@changeledger`,
    `DTSTAMP:${basicUtc(generatedAt.toISOString())}`,
    `SEQUENCE:${item.sequence}`,
    `DTSTART:${start}`,
    ...(endText !== null && endText > start ? [`DTEND:${endText}`] : []),
    `SUMMARY:${text(`${item.changeId} ${item.title}${item.conflictsWith.length > 0 ? ' (collides)' : ''}`)}`,
    `DESCRIPTION:${text(description)}`,
    `CATEGORIES:${text(item.type)}`,
    `STATUS:${item.status === 'cancelled' ? 'CANCELLED' : 'CONFIRMED'}`,
    'END:VEVENT',
  ];
};

const HOUR_MS = 3_600_000;
const nextFullHour = (at: Date): string =>
  new Date((Math.floor(at.getTime() / HOUR_MS) + 1) * HOUR_MS).toISOString();

/**
 * `2026-12-01T22:00:00.000Z` → `20261201T220000Z` (iCalendar's UTC form, whole seconds): cut
 * down, or with 'up' rounded up when it has a fraction.
 */
const basicUtc = (iso: string, round: 'down' | 'up' = 'down'): string => {
  const time = Date.parse(iso);
  const seconds = round === 'up' ? Math.ceil(time / 1000) : Math.floor(time / 1000);
  return `${new Date(seconds * 1000).toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
};

/** A TEXT value: backslash, semicolon, comma and line breaks escaped; control characters replaced. */
const text = (value: string): string =>
  withoutControlCharacters(value)
    .replace(/\\/g, '\\\\')
    .replace(/;/g, '\\;')
    .replace(/,/g, '\\,')
    .replace(/\r\n|\r|\n/g, '\\n');

/** Lines longer than 75 octets folded (CRLF and a space), never inside a UTF-8 character. */
const fold = (line: string): string => {
  if (Buffer.byteLength(line) <= 75) return line;
  const parts: string[] = [];
  let current = '';
  let size = 0;
  for (const character of line) {
    const bytes = Buffer.byteLength(character);
    // the first line holds 75 octets; each continuation one space and 74
    if (size + bytes > (parts.length === 0 ? 75 : 74)) {
      parts.push(current);
      current = '';
      size = 0;
    }
    current += character;
    size += bytes;
  }
  parts.push(current);
  return parts.join('\r\n ');
};
