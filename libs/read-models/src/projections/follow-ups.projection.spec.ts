/**
 * `GET /follow-ups`: approved normal and standard changes not yet closed, the step each waits
 * for, since when, and when it is due.
 */
import {
  type ChangeRequestEvent,
  evolveChangeRequest,
  initialChangeRequestState,
} from '@changeledger/domain';
import {
  actors,
  approvedBy,
  completed,
  EMERGENCY_STATUSES,
  emergencyHistory,
  event,
  NORMAL_STATUSES,
  type NormalStatus,
  normalHistory,
  PLANNED_END,
  PLANNED_START,
  postImplementationReviewed,
  scheduledEvent,
  STANDARD_STATUSES,
  type StandardStatus,
  standardHistory,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type FollowUpDocument,
  type FollowUpStep,
  followUpsProjection,
  toFollowUpItem,
} from './follow-ups.projection';
import { at, changeStream, type DomainEventLike, eventLog, project } from './recorded-events.fixtures';

const docAfter = (...events: DomainEventLike[]): FollowUpDocument | undefined =>
  project(followUpsProjection, eventLog().append(changeStream('CHG-001'), ...events)).get('CHG-001');

const statusOf = (events: readonly ChangeRequestEvent[]) =>
  events.reduce(evolveChangeRequest, initialChangeRequestState()).status;

const NORMAL_WAITS: Record<NormalStatus, FollowUpStep | null> = {
  'in-review': null,
  'changes-requested': null,
  'awaiting-approval': null,
  approved: 'schedule',
  rejected: null,
  scheduled: 'start',
  'in-progress': 'completion',
  implemented: 'post-implementation-review',
  closed: null,
  cancelled: null,
};
const STANDARD_WAITS: Record<StandardStatus, FollowUpStep | null> = {
  approved: 'schedule',
  scheduled: 'start',
  'in-progress': 'completion',
  implemented: 'post-implementation-review',
  closed: null,
  cancelled: null,
};

describe('follow-ups projection', () => {
  it.each(NORMAL_STATUSES)(
    'a normal change %s: waits for the step after it, with the status the domain folds',
    (status) => {
      const history = normalHistory(status);
      const doc = docAfter(...history)!;
      expect(doc).toMatchObject({
        type: 'normal',
        waitingFor: NORMAL_WAITS[status],
        open: NORMAL_WAITS[status] !== null,
      });
      expect(doc.status).toBe(statusOf(history));
      expect(doc.since === null).toBe(NORMAL_WAITS[status] === null);
    },
  );

  it.each(STANDARD_STATUSES)('a standard change %s: the same, from its pre-approval on', (status) => {
    const history = standardHistory(status);
    const doc = docAfter(...history)!;
    expect(doc).toMatchObject({
      type: 'standard',
      waitingFor: STANDARD_WAITS[status],
      open: STANDARD_WAITS[status] !== null,
    });
    expect(doc.status).toBe(statusOf(history));
  });

  it('a reviewed change that is not closed waits for its close', () => {
    const doc = docAfter(...normalHistory('implemented'), postImplementationReviewed())!;
    expect(doc).toMatchObject({ waitingFor: 'close', status: 'implemented', open: true });
  });

  it.each(EMERGENCY_STATUSES)(
    'an emergency change (%s) has none: its queue is the retrospective one',
    (status) => {
      expect(docAfter(...emergencyHistory(status))).toBeUndefined();
    },
  );

  it('since: when the change began to wait for its step; a reschedule moves the plan, not since', () => {
    const approvedAt = '2026-01-06T10:00:00.000Z';
    const scheduledAt = '2026-01-07T08:00:00.000Z';
    const rescheduledAt = '2026-01-08T08:00:00.000Z';
    const history = [...normalHistory('awaiting-approval'), at(approvedBy(actors.lena, 'low'), approvedAt)];
    expect(docAfter(...history)).toMatchObject({ waitingFor: 'schedule', since: approvedAt });
    const scheduled = [...history, at(scheduledEvent(), scheduledAt)];
    expect(docAfter(...scheduled)).toMatchObject({
      waitingFor: 'start',
      since: scheduledAt,
      plannedStart: PLANNED_START,
      plannedEnd: PLANNED_END,
    });
    const rescheduled = at(
      event('ChangeScheduled', actors.ivan, {
        plannedStart: '2026-01-17T22:00:00.000Z',
        plannedEnd: '2026-01-17T23:30:00.000Z',
        maintenanceWindow: false,
        rescheduled: true,
        previous: { plannedStart: PLANNED_START, plannedEnd: PLANNED_END, maintenanceWindow: false },
      }),
      rescheduledAt,
    );
    expect(docAfter(...scheduled, rescheduled)).toMatchObject({
      waitingFor: 'start',
      since: scheduledAt,
      plannedStart: '2026-01-17T22:00:00.000Z',
      plannedEnd: '2026-01-17T23:30:00.000Z',
    });
  });

  it('records the start, the end and the outcome', () => {
    const endedAt = '2026-01-10T23:40:00.000Z';
    const doc = docAfter(...normalHistory('in-progress'), at(completed('rolled-back'), endedAt))!;
    expect(doc).toMatchObject({
      waitingFor: 'post-implementation-review',
      since: endedAt,
      endedAt,
      outcome: 'rolled-back',
      startedAt: '2026-01-05T09:00:00.000Z',
    });
  });

  it('a time no Date reads (an early release took ISO week dates) is kept as sent, never thrown on', () => {
    const [submittedEvent, ...rest] = normalHistory('approved');
    const data = submittedEvent.data as { request: { timeline: object } };
    const odd = {
      ...submittedEvent,
      data: {
        ...data,
        request: { ...data.request, timeline: { proposedStart: '2026-W05', estimatedDurationMinutes: 60 } },
      },
    } as ChangeRequestEvent;
    const doc = docAfter(odd, ...rest)!;
    expect(doc).toMatchObject({ waitingFor: 'schedule', proposedStart: '2026-W05' });
    expect(toFollowUpItem(doc, new Date('2030-01-01T00:00:00.000Z'), 5)).toMatchObject({
      dueAt: '2026-W05',
      overdue: false,
    });
    // and planned times are written as toISOString writes them
    const offset = event('ChangeScheduled', actors.ivan, {
      plannedStart: '2026-01-10T23:00:00+01:00',
      plannedEnd: '2026-01-11T00:00:00+01:00',
      maintenanceWindow: false,
      rescheduled: false,
    });
    expect(docAfter(...normalHistory('approved'), offset)).toMatchObject({
      plannedStart: PLANNED_START,
      plannedEnd: PLANNED_END,
    });
  });

  it('an amendment before approval renames the change and moves its proposed start', () => {
    const doc = docAfter(
      ...normalHistory('in-review'),
      event('ChangeAmended', actors.alice, {
        changes: {
          title: 'Move VM traffic to VLAN 30',
          timeline: { proposedStart: '2026-02-01T22:00:00.000Z', estimatedDurationMinutes: 60 },
        },
        previous: {},
        voidedReviews: [],
        statusBefore: 'in-review',
        statusAfter: 'in-review',
      }),
    )!;
    expect(doc).toMatchObject({
      title: 'Move VM traffic to VLAN 30',
      proposedStart: '2026-02-01T22:00:00.000Z',
      open: false,
    });
  });
});

describe('toFollowUpItem', () => {
  const base = docAfter(...normalHistory('approved'))!;
  const item = (doc: Partial<FollowUpDocument>, now: string, reviewDays = 5) =>
    toFollowUpItem({ ...base, ...doc }, new Date(now), reviewDays);

  it('scheduling is due by the proposed start, the start by the planned start, the completion by the planned end', () => {
    expect(
      item({ waitingFor: 'schedule', proposedStart: '2026-01-10T22:00:00.000Z' }, '2026-01-10T21:59:59.999Z'),
    ).toMatchObject({
      dueAt: '2026-01-10T22:00:00.000Z',
      overdue: false,
    });
    expect(
      item({ waitingFor: 'schedule', proposedStart: '2026-01-10T22:00:00.000Z' }, '2026-01-10T22:00:00.001Z')
        .overdue,
    ).toBe(true);
    expect(item({ waitingFor: 'schedule', proposedStart: null }, '2030-01-01T00:00:00.000Z')).toMatchObject({
      dueAt: null,
      overdue: false,
    });
    expect(
      item({ waitingFor: 'start', plannedStart: PLANNED_START }, '2026-01-10T22:30:00.000Z'),
    ).toMatchObject({ dueAt: PLANNED_START, overdue: true });
    expect(
      item({ waitingFor: 'completion', plannedEnd: PLANNED_END }, '2026-01-10T22:30:00.000Z'),
    ).toMatchObject({ dueAt: PLANNED_END, overdue: false });
  });

  it('the review and the close are due the given business days after the end (weekends skipped)', () => {
    const endedAt = '2026-01-09T23:00:00.000Z'; // a Friday
    expect(
      item({ waitingFor: 'post-implementation-review', endedAt }, '2026-01-12T00:00:00.000Z'),
    ).toMatchObject({
      dueAt: '2026-01-16T23:00:00.000Z',
      overdue: false,
    });
    expect(item({ waitingFor: 'close', endedAt }, '2026-01-17T00:00:00.000Z')).toMatchObject({
      dueAt: '2026-01-16T23:00:00.000Z',
      overdue: true,
    });
    expect(item({ waitingFor: 'close', endedAt }, '2026-01-13T00:00:00.000Z', 1)).toMatchObject({
      dueAt: '2026-01-12T23:00:00.000Z',
      overdue: true,
    });
  });

  it('answers the contract-style item, without the document internals', () => {
    expect(
      Object.keys(
        item({ waitingFor: 'schedule', since: '2026-01-06T10:00:00.000Z' }, '2026-01-06T11:00:00.000Z'),
      ).sort(),
    ).toEqual([
      'changeId',
      'dueAt',
      'endedAt',
      'outcome',
      'overdue',
      'plannedEnd',
      'plannedStart',
      'priority',
      'proposedStart',
      'riskLevel',
      'since',
      'startedAt',
      'status',
      'title',
      'type',
      'waitingFor',
    ]);
  });
});
