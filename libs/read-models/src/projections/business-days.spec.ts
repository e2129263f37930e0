/** `addBusinessDays`: the retrospective due date counts Monday to Friday only (UTC). */
import { addBusinessDays } from './business-days';

// January 2026: Thu 1, Fri 2, Sat 3, Sun 4, Mon 5 … Fri 9, Sat 10, Sun 11, Mon 12, Tue 13.
const weekday = (iso: string) => ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][new Date(iso).getUTCDay()];

describe('addBusinessDays', () => {
  it('Friday + 2 is Tuesday, at the same time of day', () => {
    const due = addBusinessDays('2026-01-09T17:30:00.000Z', 2);
    expect(due).toBe('2026-01-13T17:30:00.000Z');
    expect(weekday(due)).toBe('Tue');
  });

  it.each([
    ['Mon', '2026-01-05T08:00:00.000Z', 1, '2026-01-06T08:00:00.000Z'],
    ['Mon', '2026-01-05T08:00:00.000Z', 2, '2026-01-07T08:00:00.000Z'],
    ['Thu', '2026-01-08T08:00:00.000Z', 2, '2026-01-12T08:00:00.000Z'],
    ['Fri', '2026-01-09T08:00:00.000Z', 1, '2026-01-12T08:00:00.000Z'],
    ['Fri', '2026-01-09T08:00:00.000Z', 5, '2026-01-16T08:00:00.000Z'],
    ['Fri', '2026-01-09T08:00:00.000Z', 10, '2026-01-23T08:00:00.000Z'],
  ])('%s %s + %i → %s', (_day, from, n, expected) => {
    expect(addBusinessDays(from, n)).toBe(expected);
  });

  describe('starting on a weekend', () => {
    it.each([
      ['Saturday', '2026-01-10T12:00:00.000Z', 1, '2026-01-12T12:00:00.000Z'],
      ['Saturday', '2026-01-10T12:00:00.000Z', 2, '2026-01-13T12:00:00.000Z'],
      ['Sunday', '2026-01-11T12:00:00.000Z', 1, '2026-01-12T12:00:00.000Z'],
      ['Sunday', '2026-01-11T12:00:00.000Z', 2, '2026-01-13T12:00:00.000Z'],
    ])('%s %s + %i → %s', (_day, from, n, expected) => {
      expect(addBusinessDays(from, n)).toBe(expected);
    });
  });

  describe('N = 0', () => {
    it.each([
      ['a weekday', '2026-01-07T10:15:00.000Z'],
      ['a Saturday', '2026-01-10T10:15:00.000Z'],
      ['a Sunday', '2026-01-11T10:15:00.000Z'],
    ])('on %s is the same instant', (_day, from) => {
      expect(addBusinessDays(from, 0)).toBe(from);
    });
  });

  it('keeps the time of day right at the edges of the UTC day', () => {
    expect(addBusinessDays('2026-01-09T23:59:59.999Z', 1)).toBe('2026-01-12T23:59:59.999Z');
    expect(addBusinessDays('2026-01-10T00:00:00.000Z', 1)).toBe('2026-01-12T00:00:00.000Z');
  });

  it('crosses month and year ends (no holidays are skipped)', () => {
    expect(addBusinessDays('2025-12-31T09:00:00.000Z', 2)).toBe('2026-01-02T09:00:00.000Z');
    expect(addBusinessDays('2026-02-27T09:00:00.000Z', 1)).toBe('2026-03-02T09:00:00.000Z');
  });

  it('answers in UTC ISO form whatever offset the input carries', () => {
    // 19:30 at +02:00 on Friday is 17:30 UTC on Friday.
    expect(addBusinessDays('2026-01-09T19:30:00+02:00', 2)).toBe('2026-01-13T17:30:00.000Z');
    // 01:00 at +02:00 on Saturday is still Friday 23:00 UTC: Friday + 1 → Monday.
    expect(addBusinessDays('2026-01-10T01:00:00+02:00', 1)).toBe('2026-01-12T23:00:00.000Z');
  });
});
