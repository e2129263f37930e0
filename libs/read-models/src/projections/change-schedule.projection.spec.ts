/**
 * `GET /schedule`: the forward schedule of change, and the changes that collide on a system.
 */
import type { ChangeRequestFields } from '@changeledger/domain';
import {
  actors,
  cancelled,
  completed,
  emergencyHistory,
  event,
  normalHistory,
  PLANNED_END,
  PLANNED_START,
  started,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  changeScheduleProjection,
  conflictsOf,
  OPEN_END,
  type ScheduleDocument,
  toScheduleItem,
} from './change-schedule.projection';
import { at, changeStream, type DomainEventLike, eventLog, project } from './recorded-events.fixtures';

/** The same history for another change: its submission names that id and those systems. */
const asChange = (changeId: string, events: readonly DomainEventLike[], systems?: string[]) =>
  events.map((e) => {
    if (e.type !== 'ChangeSubmitted') return e;
    const data = e.data as { request: ChangeRequestFields };
    return {
      ...e,
      data: {
        ...data,
        changeId,
        request: {
          ...data.request,
          title: `Change ${changeId}`,
          ...(systems ? { systemsAffected: systems } : {}),
        },
      },
    };
  });

const scheduled = (start: string, end: string, maintenanceWindow = false) =>
  event('ChangeScheduled', actors.ivan, {
    plannedStart: start,
    plannedEnd: end,
    maintenanceWindow,
    rescheduled: false,
  });

const docAfter = (...events: DomainEventLike[]): ScheduleDocument =>
  project(changeScheduleProjection, eventLog().append(changeStream('CHG-001'), ...events)).get('CHG-001')!;

/** Each change's history in its own stream, all in one log. */
const documents = (histories: Record<string, readonly DomainEventLike[]>) => {
  const log = eventLog();
  return project(
    changeScheduleProjection,
    Object.entries(histories).flatMap(([id, events]) => log.append(changeStream(id), ...events)),
  );
};

const NOW = new Date('2026-01-10T22:30:00.000Z');

describe('change schedule projection', () => {
  it('a change is not on the calendar until it is scheduled', () => {
    for (const status of ['in-review', 'awaiting-approval', 'approved'] as const) {
      expect(docAfter(...normalHistory(status))).toMatchObject({
        listed: false,
        open: false,
        from: '',
        until: '',
      });
    }
  });

  it('scheduled: its planned window, holding its systems', () => {
    expect(docAfter(...normalHistory('scheduled', { maintenanceWindow: true }))).toMatchObject({
      changeId: 'CHG-001',
      status: 'scheduled',
      listed: true,
      open: true,
      from: PLANNED_START,
      until: PLANNED_END,
      plannedStart: PLANNED_START,
      plannedEnd: PLANNED_END,
      maintenanceWindow: true,
      systemsAffected: ['core-switch-01', 'pve-node-02'],
      systemKeys: ['core-switch-01', 'pve-node-02'],
    });
  });

  it('a reschedule moves the window; an early start opens it earlier; the end closes it', () => {
    const moved = [
      ...normalHistory('approved'),
      scheduled(PLANNED_START, PLANNED_END),
      scheduled('2026-01-11T22:00:00.000Z', '2026-01-11T23:30:00.000Z'),
    ];
    expect(docAfter(...moved)).toMatchObject({
      from: '2026-01-11T22:00:00.000Z',
      until: '2026-01-11T23:30:00.000Z',
    });
    // each change of the entry counts (a calendar's SEQUENCE), events that change nothing do not
    const once = docAfter(...normalHistory('approved'), scheduled(PLANNED_START, PLANNED_END));
    expect(docAfter(...moved).updates).toBe(once.updates + 1);
    expect(docAfter(...normalHistory('scheduled')).updates).toBe(once.updates);
    const early = [...normalHistory('scheduled'), at(started(), '2026-01-10T21:40:00.000Z')];
    // at work, it holds its systems until it ends, whatever its planned end
    expect(docAfter(...early)).toMatchObject({
      status: 'in-progress',
      open: true,
      startedAt: '2026-01-10T21:40:00.000Z',
      from: '2026-01-10T21:40:00.000Z',
      until: OPEN_END,
      plannedEnd: PLANNED_END,
    });
    expect(docAfter(...early, at(completed('rolled-back'), '2026-01-10T22:20:00.000Z'))).toMatchObject({
      status: 'implemented',
      open: false,
      listed: true,
      outcome: 'rolled-back',
      until: '2026-01-10T22:20:00.000Z',
    });
  });

  it('an emergency is on the calendar from its start, open-ended until it ends', () => {
    const declared = [...emergencyHistory('in-progress')].map((e) =>
      e.type === 'ImplementationStarted' ? at(e, '2026-01-10T03:12:00.000Z') : e,
    );
    const doc = docAfter(...declared);
    expect(doc).toMatchObject({
      type: 'emergency',
      status: 'in-progress',
      open: true,
      from: '2026-01-10T03:12:00.000Z',
      until: OPEN_END,
    });
    expect(toScheduleItem(doc, NOW, [])).toMatchObject({ until: null, overrunning: false });
    expect(docAfter(...declared, at(completed(), '2026-01-10T04:00:00.000Z'))).toMatchObject({
      open: false,
      until: '2026-01-10T04:00:00.000Z',
    });
  });

  it('a cancelled change stays on the calendar, no longer holding its systems', () => {
    const doc = docAfter(...normalHistory('scheduled'), cancelled('scheduled'));
    expect(doc).toMatchObject({ status: 'cancelled', listed: true, open: false });
  });

  it('an amendment of the systems is what the calendar compares', () => {
    const amended = event('ChangeAmended', actors.alice, {
      changes: { systemsAffected: [' PVE-Node-03 ', 'ceph-01\u200b'] },
      statusBefore: 'in-review',
      statusAfter: 'in-review',
      reviewsVoided: false,
    } as never);
    const doc = docAfter(normalHistory('in-review')[0], amended);
    expect(doc).toMatchObject({
      systemsAffected: [' PVE-Node-03 ', 'ceph-01\u200b'],
      systemKeys: ['pve-node-03', 'ceph-01'],
    });
  });

  it('in progress past its planned end: overrunning, and still colliding with what comes after on its systems', () => {
    const running = docAfter(...normalHistory('scheduled'), at(started(), PLANNED_START));
    const next = documents({
      'CHG-001': normalHistory('scheduled').concat(at(started(), PLANNED_START)),
      'CHG-002': asChange('CHG-002', [
        ...normalHistory('approved'),
        scheduled('2026-01-11T01:00:00.000Z', '2026-01-11T02:00:00.000Z'),
      ]),
    });
    expect(conflictsOf(next.get('CHG-002')!, [...next.values()]).map((c) => c.changeId)).toEqual(['CHG-001']);
    expect(toScheduleItem(running, NOW, [])).toMatchObject({ until: null, plannedEnd: PLANNED_END });
    expect(toScheduleItem(running, new Date('2026-01-10T23:05:00.000Z'), []).overrunning).toBe(true);
    expect(toScheduleItem(running, new Date('2026-01-10T22:55:00.000Z'), []).overrunning).toBe(false);
  });

  describe('conflicts', () => {
    const window = (start: string, end: string) => [...normalHistory('approved'), scheduled(start, end)];
    const docs = documents({
      'CHG-001': asChange('CHG-001', window('2026-01-10T22:00:00.000Z', '2026-01-10T23:00:00.000Z'), [
        'pve1',
        'switch-core',
      ]),
      // overlaps, one system in common (named in another case)
      'CHG-002': asChange('CHG-002', window('2026-01-10T22:30:00.000Z', '2026-01-11T00:00:00.000Z'), [
        'PVE1 ',
        'pve2',
      ]),
      // starts when CHG-001 ends: no overlap
      'CHG-003': asChange('CHG-003', window('2026-01-10T23:00:00.000Z', '2026-01-10T23:30:00.000Z'), [
        'pve1',
      ]),
      // overlaps, other systems
      'CHG-004': asChange('CHG-004', window('2026-01-10T22:00:00.000Z', '2026-01-10T22:45:00.000Z'), [
        'ceph-01',
      ]),
      // overlapped, on pve1, but cancelled
      'CHG-005': asChange(
        'CHG-005',
        [...window('2026-01-10T21:00:00.000Z', '2026-01-11T01:00:00.000Z'), cancelled('scheduled')],
        ['pve1'],
      ),
      // an emergency at work on switch-core since the afternoon, no end yet
      'CHG-006': asChange(
        'CHG-006',
        emergencyHistory('in-progress').map((e) =>
          e.type === 'ImplementationStarted' ? at(e, '2026-01-10T15:00:00.000Z') : e,
        ),
        ['switch-core'],
      ),
    });
    const all = [...docs.values()];

    it('are open changes whose windows overlap on a system both name', () => {
      expect(conflictsOf(docs.get('CHG-001')!, all)).toEqual([
        {
          changeId: 'CHG-006',
          title: 'Change CHG-006',
          status: 'in-progress',
          from: '2026-01-10T15:00:00.000Z',
          until: null,
          systems: ['switch-core'],
        },
        {
          changeId: 'CHG-002',
          title: 'Change CHG-002',
          status: 'scheduled',
          from: '2026-01-10T22:30:00.000Z',
          until: '2026-01-11T00:00:00.000Z',
          systems: ['PVE1 '],
        },
      ]);
      // both ways
      expect(conflictsOf(docs.get('CHG-002')!, all).map((c) => c.changeId)).toEqual(['CHG-001', 'CHG-003']);
      expect(conflictsOf(docs.get('CHG-003')!, all).map((c) => c.changeId)).toEqual(['CHG-002']);
      expect(conflictsOf(docs.get('CHG-004')!, all)).toEqual([]);
    });

    it('a change that no longer holds its systems has none', () => {
      expect(conflictsOf(docs.get('CHG-005')!, all)).toEqual([]);
    });
  });
});
