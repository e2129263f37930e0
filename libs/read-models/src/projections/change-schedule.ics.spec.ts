import type { ScheduleItem } from './change-schedule.projection';
import { scheduleIcs } from './change-schedule.ics';

const item = (overrides: Partial<ScheduleItem> = {}): ScheduleItem => ({
  changeId: 'CHG-001',
  title: 'Re-cable pve7',
  type: 'normal',
  riskLevel: 'medium',
  status: 'scheduled',
  systemsAffected: ['pve7', 'switch-9'],
  plannedStart: '2027-02-10T22:00:00.000Z',
  plannedEnd: '2027-02-10T23:00:00.000Z',
  maintenanceWindow: true,
  startedAt: null,
  endedAt: null,
  outcome: null,
  from: '2027-02-10T22:00:00.000Z',
  until: '2027-02-10T23:00:00.000Z',
  overrunning: false,
  sequence: 3,
  conflictsWith: [],
  ...overrides,
});

const GENERATED = new Date('2027-02-01T08:30:00.000Z');
/** The content lines, unfolded (RFC 5545 3.1). */
const unfolded = (ics: string) => ics.replace(/\r\n /g, '').split('\r\n');

describe('the schedule as iCalendar', () => {
  it('one event per change, in UTC, lines ending in CRLF', () => {
    const ics = scheduleIcs([item()], GENERATED);
    expect(ics.startsWith('BEGIN:VCALENDAR\r\nVERSION:2.0\r\n')).toBe(true);
    expect(ics.endsWith('END:VCALENDAR\r\n')).toBe(true);
    expect(ics.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(unfolded(ics)).toEqual(
      expect.arrayContaining([
        'BEGIN:VEVENT',
        'UID:CHG-001@changeledger',
        'DTSTAMP:20270201T083000Z',
        'SEQUENCE:3',
        'DTSTART:20270210T220000Z',
        'DTEND:20270210T230000Z',
        'SUMMARY:CHG-001 Re-cable pve7',
        'DESCRIPTION:Status: scheduled\\nType: normal\\, risk medium\\nSystems: pve7\\, switch-9\\nIn a maintenance window',
        'CATEGORIES:normal',
        'STATUS:CONFIRMED',
        'END:VEVENT',
      ]),
    );
  });

  it('a range with nothing in it is still a calendar RFC 5545 takes: one component (the UTC time zone), no event', () => {
    const lines = unfolded(scheduleIcs([], GENERATED));
    expect(lines.filter((l) => l.startsWith('BEGIN:'))).toEqual([
      'BEGIN:VCALENDAR',
      'BEGIN:VTIMEZONE',
      'BEGIN:STANDARD',
    ]);
    expect(lines).toEqual(expect.arrayContaining(['TZID:UTC', 'TZOFFSETFROM:+0000', 'TZOFFSETTO:+0000']));
    expect(lines.slice(-2)).toEqual(['END:VCALENDAR', '']);
    // with events, nothing but them
    expect(unfolded(scheduleIcs([item()], GENERATED))).not.toContain('BEGIN:VTIMEZONE');
  });

  it('escapes text, names collisions, marks cancellations, and shows an emergency at work until the next full hour', () => {
    const lines = unfolded(
      scheduleIcs(
        [
          item({
            title: 'Patch; reboot, then\ncheck \\ logs\u001b[2J',
            conflictsWith: [
              {
                changeId: 'CHG-002',
                title: 'Upgrade pve7 firmware',
                status: 'scheduled',
                from: '2027-02-10T22:30:00.000Z',
                until: '2027-02-11T00:00:00.000Z',
                systems: ['PVE7'],
              },
            ],
          }),
          item({ changeId: 'CHG-003', status: 'cancelled' }),
          item({
            changeId: 'CHG-004',
            type: 'emergency',
            status: 'in-progress',
            plannedStart: null,
            plannedEnd: null,
            from: '2027-01-31T06:15:00.000Z',
            until: null,
          }),
        ],
        GENERATED,
      ),
    );
    expect(lines).toContain('SUMMARY:CHG-001 Patch\\; reboot\\, then\\ncheck \\\\ logs\ufffd[2J (collides)');
    expect(lines.find((l) => l.startsWith('DESCRIPTION:'))).toContain(
      'Collides with CHG-002 (Upgrade pve7 firmware) on PVE7\\, scheduled',
    );
    expect(lines).toContain('STATUS:CANCELLED');
    // declared yesterday and still at work: not a blip at its start, but until about now (08:30)
    const emergency = lines.slice(lines.indexOf('UID:CHG-004@changeledger'));
    const vevent = emergency.slice(0, emergency.indexOf('END:VEVENT'));
    expect(vevent).toContain('DTSTART:20270131T061500Z');
    expect(vevent).toContain('DTEND:20270201T090000Z');
    expect(vevent.find((l) => l.startsWith('DESCRIPTION:'))).toContain(
      'At work: shown until the next full hour (it holds its systems until it ends)',
    );
    // a change with a known end says nothing of the kind
    const first = lines.slice(0, lines.indexOf('END:VEVENT'));
    expect(first.find((l) => l.startsWith('DESCRIPTION:'))).not.toContain('At work');
  });

  it('an end is after its start or left out: rounded up to the second; at work past its planned end, the next full hour', () => {
    const dtend = (overrides: Partial<ScheduleItem>) =>
      unfolded(scheduleIcs([item(overrides)], GENERATED)).find((l) => l.startsWith('DTEND')) ?? null;
    // started and completed within one second
    expect(dtend({ from: '2027-02-10T22:00:00.100Z', until: '2027-02-10T22:00:00.900Z' })).toBe(
      'DTEND:20270210T220001Z',
    );
    expect(dtend({ from: '2027-02-10T22:00:00.000Z', until: '2027-02-10T22:00:00.000Z' })).toBeNull();
    // at work past its planned end (generated after it): shown until the next full hour after
    // the file was read (08:30 → 09:00), which each refresh moves on
    expect(
      dtend({
        status: 'in-progress',
        overrunning: true,
        from: '2027-01-31T22:00:00.000Z',
        plannedEnd: '2027-01-31T23:00:00.000Z',
        until: null,
      }),
    ).toBe('DTEND:20270201T090000Z');
    // at work, its planned end still ahead
    expect(dtend({ status: 'in-progress', until: null })).toBe('DTEND:20270210T230000Z');
  });

  it('folds long lines at 75 octets, never inside a character', () => {
    const title = 'Réseau de stockage sur VLAN 20 — ' + 'nœud '.repeat(30);
    const ics = scheduleIcs([item({ title })], GENERATED);
    for (const line of ics.split('\r\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(75);
    expect(unfolded(ics)).toContain(`SUMMARY:CHG-001 ${title}`);
  });
});
