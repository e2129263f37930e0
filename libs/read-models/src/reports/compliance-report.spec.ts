/**
 * The compliance report as a pure function of `compliance_facts` documents, a period and the
 * time of the question; and its CSV and HTML renderings.
 */
import type { ChangeRequestEvent } from '@changeledger/domain';
import {
  actors,
  approvedBy,
  completed,
  emergencyHistory,
  event,
  normalHistory,
  approvalVoidingAmendment,
  postImplementationReviewed,
  started,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type ComplianceFactsDocument,
  complianceFactsProjection,
} from '../projections/compliance-facts.projection';
import { at, changeStream, eventLog, project } from '../projections/recorded-events.fixtures';
import { buildComplianceReport, percentile, type ReportSettings } from './compliance-report';
import { complianceReportCsv } from './compliance-report.csv';
import { complianceReportHtml } from './compliance-report.html';
import {
  assertPeriodBegun,
  monthsOf,
  parseBound,
  parsePeriodLabel,
  ReportPeriodError,
  resolveReportPeriod,
} from './report-period';

const projection = complianceFactsProjection;
const Q4 = parsePeriodLabel('2026-Q4');

/** A history whose events happen at the given times (one per event, in order). */
const timed = (events: readonly ChangeRequestEvent[], times: readonly string[]) => {
  if (times.length !== events.length) throw new Error(`${events.length} events, ${times.length} times`);
  return events.map((e, i) => at(e, times[i]));
};
/** `n` times, `stepHours` apart from `start`. */
const times = (start: string, n: number, stepHours = 1) =>
  Array.from({ length: n }, (_, i) => new Date(Date.parse(start) + i * stepHours * 3_600_000).toISOString());

const facts = (...changes: (readonly ChangeRequestEvent[])[]): ComplianceFactsDocument[] => {
  const log = eventLog();
  const recorded = changes.flatMap((events, i) => {
    const id = `CHG-${String(i + 1).padStart(3, '0')}`;
    return log.append(
      changeStream(id),
      ...events.map((e) => (e.type === 'ChangeSubmitted' ? { ...e, data: { ...e.data, changeId: id } } : e)),
    );
  });
  return [...project(projection, recorded).values()];
};

/** A normal change's history up to its start, scheduled for the given window. */
const inProgressScheduled = (plannedStart: string, plannedEnd: string) =>
  normalHistory('in-progress').map((e) =>
    e.type === 'ChangeScheduled' ? { ...e, data: { ...e.data, plannedStart, plannedEnd } } : e,
  );

const report = (documents: ComplianceFactsDocument[], now = '2027-01-15T00:00:00.000Z', period = Q4) =>
  buildComplianceReport({ documents, period, now: new Date(now), readModelPosition: 42n });

describe('report periods', () => {
  it.each([
    ['2026-Q4', '2026-10-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['2026-Q1', '2026-01-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z'],
    ['2026-11', '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
    ['2026-12', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['2026', '2026-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
  ])('%s is [%s, %s)', (label, from, to) => {
    expect(parsePeriodLabel(label)).toEqual({ label, from, to });
  });

  it.each(['2026-Q5', '2026-13', '26-Q1', 'Q4', '2026-Q4 ', ''])('refuses the label %j', (label) => {
    expect(() => parsePeriodLabel(label)).toThrow(ReportPeriodError);
  });

  it('takes from/to dates with the end day included, and instants as they are', () => {
    expect(resolveReportPeriod({ from: '2026-10-01', to: '2026-12-31' })).toMatchObject({
      from: '2026-10-01T00:00:00.000Z',
      to: '2027-01-01T00:00:00.000Z',
    });
    expect(
      resolveReportPeriod({ from: '2026-10-01T00:00:00+02:00', to: '2026-10-02T00:00:00Z' }),
    ).toMatchObject({
      from: '2026-09-30T22:00:00.000Z',
      to: '2026-10-02T00:00:00.000Z',
    });
  });

  it('keeps bounds past the year 9999 at its last instant (their UTC text would sort before every time)', () => {
    expect(parseBound('to', '9999-12-31').toISOString()).toBe('9999-12-31T23:59:59.999Z');
    expect(parseBound('from', '9999-12-31T23:00:00-05:00').toISOString()).toBe('9999-12-31T23:59:59.999Z');
    expect(resolveReportPeriod({ from: '9995-01-01', to: '9999-12-31' }).to).toBe('9999-12-31T23:59:59.999Z');
  });

  it.each([
    [{}, 'from'],
    [{ from: '2026-10-01' }, 'to'],
    [{ period: '2026-Q4', from: '2026-10-01' }, 'period'],
    [{ from: '2026-02-30', to: '2026-03-01' }, 'from'],
    [{ from: '2026-10-01', to: 'tomorrow' }, 'to'],
    [{ from: '2026-10-01T10:00:00', to: '2026-10-02' }, 'from'],
    // Date rolls an impossible day over (2026-02-30 → 2 March): refused in instants too
    [{ from: '2026-02-01T00:00:00Z', to: '2026-02-30T00:00:00Z' }, 'to'],
    [{ from: '2026-04-31T10:00:00+02:00', to: '2026-05-02' }, 'from'],
    [{ from: '2026-10-01T24:00:00Z', to: '2026-10-03' }, 'from'],
    [{ from: '2026-10-01T10:00:00+25:00', to: '2026-10-03' }, 'from'],
    [{ from: '2026-10-02', to: '2026-10-01' }, 'to'],
  ])('refuses %j, naming the field %s', (input, field) => {
    expect(() => resolveReportPeriod(input)).toThrow(expect.objectContaining({ field }));
  });

  it('refuses a period that has not begun, naming the field it came from', () => {
    const now = new Date('2026-09-30T23:59:59.999Z');
    expect(() =>
      assertPeriodBegun(resolveReportPeriod({ period: '2026-Q4' }), { period: '2026-Q4' }, now),
    ).toThrow(expect.objectContaining({ field: 'period', message: expect.stringMatching(/^has not begun/) }));
    const range = { from: '2026-10-01', to: '2026-10-02' };
    expect(() => assertPeriodBegun(resolveReportPeriod(range), range, now)).toThrow(
      expect.objectContaining({ field: 'from' }),
    );
    // begun a millisecond ago: the report of the quarter so far
    const begun = new Date('2026-10-01T00:00:00.000Z');
    expect(() =>
      assertPeriodBegun(resolveReportPeriod({ period: '2026-Q4' }), { period: '2026-Q4' }, begun),
    ).not.toThrow();
  });

  it('lists the calendar months a period touches', () => {
    expect(monthsOf(Q4)).toEqual(['2026-10', '2026-11', '2026-12']);
    expect(monthsOf(resolveReportPeriod({ from: '2026-10-20', to: '2026-11-03' }))).toEqual([
      '2026-10',
      '2026-11',
    ]);
  });
});

describe('percentile', () => {
  it('interpolates between ranks like PERCENTILE.INC', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([7], 90)).toBe(7);
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBeCloseTo(9.1);
    expect(percentile([10, 20], 90)).toBe(19);
  });
});

describe('compliance report', () => {
  const closedNormal = (start: string, outcome: 'successful' | 'failed' = 'successful') => {
    const h = normalHistory('closed');
    const events =
      outcome === 'successful'
        ? h
        : h.map((e) => (e.type === 'ImplementationCompleted' ? completed('failed') : e));
    return timed(events, times(start, events.length));
  };

  it('counts volumes by type and month, outcomes, rates and lead times of the period only', () => {
    const docs = facts(
      closedNormal('2026-10-05T09:00:00.000Z'), // approved 5 h after submission, started 5 h after approval
      closedNormal('2026-11-02T09:00:00.000Z', 'failed'),
      timed(emergencyHistory('closed'), [
        '2026-12-01T01:00:00.000Z',
        '2026-12-01T01:10:00.000Z',
        '2026-12-01T02:00:00.000Z',
        '2026-12-01T03:00:00.000Z', // completed Tuesday → due Thursday 03:00
        '2026-12-02T09:00:00.000Z',
        '2026-12-02T10:00:00.000Z', // retrospective approval 33 h after declaration
        '2026-12-02T11:00:00.000Z',
      ]),
      closedNormal('2026-09-01T09:00:00.000Z'), // before the period: in no figure
      timed(normalHistory('cancelled'), times('2026-12-20T09:00:00.000Z', 7)),
    );
    const r = report(docs);
    expect(r.asOf).toBe('2026-12-31T23:59:59.999Z');
    expect(r.volumes.submitted).toEqual({ total: 4, standard: 0, normal: 3, emergency: 1 });
    expect(r.volumes.byMonth).toEqual([
      { month: '2026-10', standard: 0, normal: 1, emergency: 0 },
      { month: '2026-11', standard: 0, normal: 1, emergency: 0 },
      { month: '2026-12', standard: 0, normal: 1, emergency: 1 },
    ]);
    expect(r.volumes.outcomes).toEqual({ successful: 2, failed: 1, 'rolled-back': 0 });
    expect(r.volumes.cancelled).toBe(1);
    expect(r.successRate).toBe(0.6667);
    expect(r.emergencyShare).toBe(0.25);
    // Three human approvals in Q4 (the cancelled change was approved too), each 5 h after submission.
    expect(r.leadTimes.submittedToApproved).toEqual({ count: 3, medianHours: 5, p90Hours: 5 });
    expect(r.leadTimes.approvedToImplementationStart).toEqual({ count: 2, medianHours: 5, p90Hours: 5 });
    expect(r.leadTimes.emergencyDeclaredToRetrospectiveApproval).toEqual({
      count: 1,
      medianHours: 33,
      p90Hours: 33,
    });
    expect(r.findings.lateRetrospectives).toEqual([]);
    expect(r.lessonsLearned.map((l) => l.changeId)).toEqual(['CHG-001', 'CHG-002', 'CHG-003']);
    expect(r.readModelPosition).toBe('42');
  });

  it('a failure completed before the period and still unreviewed at its end is a finding of the period, though not one of its outcomes', () => {
    const failedEarly = timed(
      [...normalHistory('in-progress'), completed('failed')],
      times('2026-08-03T09:00:00.000Z', 13),
    );
    const q4 = report(facts(failedEarly));
    expect(q4.findings.failedWithoutReview).toEqual([
      expect.objectContaining({
        changeId: 'CHG-001',
        outcome: 'failed',
        completedAt: '2026-08-03T21:00:00.000Z',
      }),
    ]);
    expect(q4.volumes.outcomes).toEqual({ successful: 0, failed: 0, 'rolled-back': 0 });
  });

  it('a failure is a finding once its review is due (POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS, as GET /follow-ups has it), not before', () => {
    // rolled back Thursday 31 December 20:00, reviewed Monday 4 January: on time
    const failure = timed(
      [...normalHistory('in-progress'), completed('rolled-back'), postImplementationReviewed()],
      [...times('2026-12-31T08:00:00.000Z', 13), '2027-01-04T10:00:00.000Z'],
    );
    const docs = facts(failure);
    expect(report(docs, '2027-02-01T00:00:00.000Z').findings.failedWithoutReview).toEqual([]); // Q4
    const q1 = parsePeriodLabel('2027-Q1');
    expect(report(docs, '2027-04-15T00:00:00.000Z', q1).findings.failedWithoutReview).toEqual([]);
    // not reviewed: a finding once the review is due (Thursday 7 January 20:00), in Q1
    const unreviewed = facts(
      timed(
        [...normalHistory('in-progress'), completed('rolled-back')],
        times('2026-12-31T08:00:00.000Z', 13),
      ),
    );
    expect(report(unreviewed, '2027-02-01T00:00:00.000Z').findings.failedWithoutReview).toEqual([]);
    expect(report(unreviewed, '2027-01-07T20:00:00.001Z', q1).findings.failedWithoutReview).toEqual([
      expect.objectContaining({ changeId: 'CHG-001', reviewDueAt: '2027-01-07T20:00:00.000Z' }),
    ]);
    expect(report(unreviewed, '2027-01-07T19:59:59.999Z', q1).findings.failedWithoutReview).toEqual([]);
  });

  it('a successful change is a finding of its own once its review is due and not recorded (the process reviews every change)', () => {
    const done = (reviewed: boolean) =>
      facts(
        timed(
          [
            ...normalHistory('in-progress'),
            completed('successful'),
            ...(reviewed ? [postImplementationReviewed()] : []),
          ],
          [...times('2026-12-31T08:00:00.000Z', 13), ...(reviewed ? ['2027-01-04T10:00:00.000Z'] : [])],
        ),
      );
    const q1 = parsePeriodLabel('2027-Q1');
    expect(report(done(true), '2027-04-15T00:00:00.000Z', q1).findings.succeededWithoutReview).toEqual([]);
    const unreviewed = report(done(false), '2027-01-07T20:00:00.001Z', q1).findings;
    expect(unreviewed.succeededWithoutReview).toEqual([
      expect.objectContaining({
        changeId: 'CHG-001',
        completedAt: '2026-12-31T20:00:00.000Z',
        reviewDueAt: '2027-01-07T20:00:00.000Z',
      }),
    ]);
    expect(unreviewed.failedWithoutReview).toEqual([]);
    expect(report(done(false), '2027-01-07T19:59:59.999Z', q1).findings.succeededWithoutReview).toEqual([]);
    // an emergency's review is part of its retrospective, which is the finding that names it
    const emergency = report(
      facts(timed(emergencyHistory('implemented'), times('2026-12-31T17:00:00.000Z', 4))),
      '2027-01-15T00:00:00.000Z',
      q1,
    ).findings;
    expect(emergency.succeededWithoutReview).toEqual([]);
    expect(emergency.overdueRetrospectives.map((f) => f.changeId)).toEqual(['CHG-001']);
  });

  it('reads facts as of the period end: what happened later does not clear a finding', () => {
    const failedLate = timed(
      [...normalHistory('in-progress'), completed('rolled-back'), postImplementationReviewed()],
      [...times('2026-12-14T09:00:00.000Z', 13), '2027-01-04T09:00:00.000Z'],
    );
    const emergency = timed(
      [
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        event('RetrospectiveDecisionRecorded', actors.max, { decision: 'approve', comment: 'ok' }),
      ],
      [
        '2026-12-28T01:00:00.000Z',
        '2026-12-28T02:00:00.000Z',
        '2026-12-28T03:00:00.000Z',
        '2026-12-28T04:00:00.000Z',
        '2027-01-05T01:00:00.000Z',
        '2027-01-05T02:00:00.000Z',
      ],
    );
    const docs = facts(failedLate, emergency);
    const q4 = report(docs, '2027-02-01T00:00:00.000Z');
    expect(q4.findings.failedWithoutReview).toEqual([
      expect.objectContaining({
        changeId: 'CHG-001',
        outcome: 'rolled-back',
        completedAt: '2026-12-14T21:00:00.000Z',
        reviewDueAt: '2026-12-21T21:00:00.000Z', // five business days on
      }),
    ]);
    // Completed Monday 04:00 → due Wednesday 04:00, undecided at the end of December.
    expect(q4.findings.overdueRetrospectives).toEqual([
      expect.objectContaining({ changeId: 'CHG-002', dueAt: '2026-12-30T04:00:00.000Z' }),
    ]);
    // In the next quarter the review and the late decision are seen.
    const q1 = report(docs, '2027-04-15T00:00:00.000Z', parsePeriodLabel('2027-Q1'));
    expect(q1.findings.failedWithoutReview).toEqual([]);
    expect(q1.findings.overdueRetrospectives).toEqual([]);
    expect(q1.findings.lateRetrospectives).toEqual([
      expect.objectContaining({
        changeId: 'CHG-002',
        dueAt: '2026-12-30T04:00:00.000Z',
        decidedAt: '2027-01-05T02:00:00.000Z',
      }),
    ]);
  });

  it('counts a retrospective approval an amendment made void until the amendment, not after, whatever is decided later', () => {
    const voidedDecision = timed(
      [
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        event('RetrospectiveDecisionRecorded', actors.max, { decision: 'approve', comment: 'ok' }),
        approvalVoidingAmendment({ comment: 'ok', at: '2026-11-03T01:00:00.000Z' }),
      ],
      [
        '2026-11-02T01:00:00.000Z',
        '2026-11-02T02:00:00.000Z',
        '2026-11-02T03:00:00.000Z',
        '2026-11-02T04:00:00.000Z', // completed Monday: due Wednesday 04:00
        '2026-11-02T05:00:00.000Z',
        '2026-11-03T01:00:00.000Z', // decided in time
        '2026-12-10T01:00:00.000Z', // amended: the decision is void
      ],
    );
    const docs = facts(voidedDecision);
    // November's report (as of its end, before the amendment): decided in time, nothing overdue
    const november = report(docs, '2026-12-05T00:00:00.000Z', parsePeriodLabel('2026-11'));
    expect(november.findings.overdueRetrospectives).toEqual([]);
    expect(november.findings.lateRetrospectives).toEqual([]);
    // the quarter's, after it: no decision stands, and it was due in November
    const q4 = report(docs);
    expect(q4.findings.overdueRetrospectives).toEqual([
      expect.objectContaining({ changeId: 'CHG-001', dueAt: '2026-11-04T04:00:00.000Z' }),
    ]);
    // decided again in December: late now, and November's report is what it was
    const redecided = facts([
      ...voidedDecision,
      at(
        event('RetrospectiveDecisionRecorded', actors.max, { decision: 'approve', comment: 'again' }),
        '2026-12-11T01:00:00.000Z',
      ),
    ]);
    const novemberAgain = report(redecided, '2026-12-05T00:00:00.000Z', parsePeriodLabel('2026-11'));
    expect(novemberAgain.findings).toEqual(november.findings);
    expect(report(redecided).findings.overdueRetrospectives).toEqual([]);
    expect(report(redecided).findings.lateRetrospectives).toEqual([
      expect.objectContaining({ changeId: 'CHG-001', decidedAt: '2026-12-11T01:00:00.000Z' }),
    ]);
  });

  it('finds implementations that ended in the period with no step recorded ("document steps taken")', () => {
    const withStep = (start: string) => {
      const events = normalHistory('closed');
      const startAt = events.findIndex((e) => e.type === 'ImplementationStarted');
      const step = event('ImplementationStepRecorded', actors.ivan, {
        sequence: 1,
        description: 'Moved the bridge',
      });
      const stepped = [...events.slice(0, startAt + 1), step, ...events.slice(startAt + 1)];
      return timed(stepped, times(start, stepped.length));
    };
    const docs = facts(
      closedNormal('2026-11-02T09:00:00.000Z', 'failed'),
      withStep('2026-11-03T09:00:00.000Z'),
    );
    const q4 = report(docs);
    const stepAt = withStep('2026-11-03T09:00:00.000Z').find((e) => e.type === 'ImplementationStepRecorded')!;
    expect(docs[1]!.firstStepAt).toBe((stepAt.data as { at: string }).at);
    expect(q4.findings.undocumentedImplementations).toEqual([
      {
        changeId: 'CHG-001',
        title: expect.any(String),
        type: 'normal',
        outcome: 'failed',
        completedAt: expect.stringMatching(/^2026-11-02T/),
      },
    ]);
    // nor emergencies, which the process lets document during or after the work
    const emergencyEvents = emergencyHistory('implemented');
    const emergency = facts(
      timed(emergencyEvents, times('2026-11-02T09:00:00.000Z', emergencyEvents.length)),
    );
    expect(emergency[0]!.firstStepAt).toBeNull();
    expect(report(emergency).findings.undocumentedImplementations).toEqual([]);
    // facts written before steps were tracked are not judged
    const older = docs.map(({ firstStepAt: _dropped, ...doc }) => doc as ComplianceFactsDocument);
    expect(report(older).findings.undocumentedImplementations).toEqual([]);
    // not in another period
    expect(
      report(docs, '2027-04-15T00:00:00.000Z', parsePeriodLabel('2027-Q1')).findings
        .undocumentedImplementations,
    ).toEqual([]);
    expect(complianceReportCsv(q4)).toContain(
      'finding,undocumentedImplementations,1,CHG-001,failed 2026-11-02T',
    );
    expect(complianceReportHtml(q4)).toContain('Implementations with no step recorded');
  });

  it('finds failed or rolled-back changes closed in the period with nothing written down about what went wrong', () => {
    const closedFailed = (start: string, issues?: string) => {
      const events = closedNormal(start, 'failed').map((e) =>
        e.type === 'PostImplementationReviewRecorded' && issues ? { ...e, data: { ...e.data, issues } } : e,
      );
      return events;
    };
    const docs = facts(
      closedNormal('2026-11-02T09:00:00.000Z'), // successful: nothing to document
      closedFailed('2026-11-03T09:00:00.000Z'),
      closedFailed('2026-11-04T09:00:00.000Z', 'the bridge came up without VLAN 30'),
      closedFailed('2026-12-31T12:00:00.000Z'), // closed in January
    );
    const q4 = report(docs);
    expect(q4.findings.failuresWithoutIssues).toEqual([
      {
        changeId: 'CHG-002',
        title: expect.any(String),
        type: 'normal',
        outcome: 'failed',
        completedAt: docs[1]!.completion!.at,
        closedAt: docs[1]!.closedAt,
      },
    ]);
    const q1 = report(docs, '2027-04-15T00:00:00.000Z', parsePeriodLabel('2027-Q1'));
    expect(q1.findings.failuresWithoutIssues.map((f) => f.changeId)).toEqual(['CHG-004']);
    // facts written before this was tracked are not judged
    const older = docs.map(({ issuesDocumentedAt: _dropped, ...doc }) => doc as ComplianceFactsDocument);
    expect(report(older).findings.failuresWithoutIssues).toEqual([]);
    expect(complianceReportCsv(q4)).toContain(
      `finding,failuresWithoutIssues,1,CHG-002,"failed ${docs[1]!.completion!.at}, closed ${docs[1]!.closedAt}"`,
    );
    expect(complianceReportHtml(q4)).toContain(
      'Failed or rolled-back changes closed with no issue written down',
    );
  });

  it('finds post-implementation reviews of the period that say the documentation was not updated', () => {
    const reviewedWithout = (start: string) => {
      const events = closedNormal(start).map((e) =>
        e.type === 'PostImplementationReviewRecorded'
          ? { ...e, data: { ...e.data, documentationUpdated: false } }
          : e,
      );
      return events;
    };
    const docs = facts(
      closedNormal('2026-11-02T09:00:00.000Z'),
      reviewedWithout('2026-11-03T09:00:00.000Z'),
      reviewedWithout('2026-12-31T12:00:00.000Z'), // reviewed in January: the next period's
    );
    const q4 = report(docs);
    const reviewedAt = docs[1]!.postImplementationReview!.at;
    expect(reviewedAt).toMatch(/^2026-11-03T/);
    expect(q4.findings.documentationNotUpdated).toEqual([
      {
        changeId: 'CHG-002',
        title: expect.any(String),
        type: 'normal',
        reviewedAt,
        by: { id: actors.ivan.id, name: actors.ivan.name },
      },
    ]);
    const q1 = report(docs, '2027-04-15T00:00:00.000Z', parsePeriodLabel('2027-Q1'));
    expect(q1.findings.documentationNotUpdated.map((f) => f.changeId)).toEqual(['CHG-003']);
    expect(complianceReportCsv(q4)).toContain(
      `finding,documentationNotUpdated,1,CHG-002,reviewed ${reviewedAt} by ${actors.ivan.name}`,
    );
    expect(complianceReportHtml(q4)).toContain(
      'Post-implementation reviews saying the documentation was not updated',
    );
  });

  it('finds emergencies implemented in the period with no record that stakeholders were notified', () => {
    const implementedAt = (notified: boolean) => {
      const [submittedEvent, startedEvent, ...rest] = emergencyHistory('implemented');
      const notice = event('ChecklistItemCompleted', actors.ivan, { item: 'stakeholders-notified' });
      const other = event('ChecklistItemCompleted', actors.ivan, { item: 'backups-verified' });
      const events = [submittedEvent, startedEvent, notified ? notice : other, ...rest];
      return timed(events, times('2026-11-02T09:00:00.000Z', events.length));
    };
    const docs = facts(implementedAt(true), implementedAt(false), closedNormal('2026-11-03T09:00:00.000Z'));
    const q4 = report(docs);
    expect(q4.findings.unnotifiedEmergencies).toEqual([
      {
        changeId: 'CHG-002',
        title: expect.any(String),
        type: 'emergency',
        startedAt: '2026-11-02T10:00:00.000Z',
        completedAt: '2026-11-02T13:00:00.000Z',
      },
    ]);
    // the earliest record counts, whatever order the events came in (an import)
    const [submittedEvent, startedEvent, ...rest] = emergencyHistory('implemented');
    const notice = event('ChecklistItemCompleted', actors.ivan, { item: 'stakeholders-notified' });
    const twice = facts(
      timed(
        [submittedEvent, startedEvent, notice, notice, ...rest],
        [
          '2026-11-02T09:00:00.000Z',
          '2026-11-02T10:00:00.000Z',
          '2026-11-02T13:30:00.000Z',
          '2026-11-02T10:30:00.000Z',
          '2026-11-02T11:00:00.000Z',
          '2026-11-02T12:00:00.000Z',
        ],
      ),
    );
    expect(twice[0]!.stakeholdersNotifiedAt).toBe('2026-11-02T10:30:00.000Z');
    expect(report(twice).findings.unnotifiedEmergencies).toEqual([]);
    // facts written before notification was tracked are not judged
    const older = docs.map(({ stakeholdersNotifiedAt: _dropped, ...doc }) => doc as ComplianceFactsDocument);
    expect(report(older).findings.unnotifiedEmergencies).toEqual([]);
    // not in another period
    expect(
      report(docs, '2027-04-15T00:00:00.000Z', parsePeriodLabel('2027-Q1')).findings.unnotifiedEmergencies,
    ).toEqual([]);
    // and in the CSV and HTML renderings
    expect(complianceReportCsv(q4)).toContain('finding,unnotifiedEmergencies,1,CHG-002,');
    expect(complianceReportHtml(q4)).toContain(
      'Emergency changes with no record that stakeholders were notified',
    );
  });

  it('finds emergencies left at work past the time a retrospective would have been due, whichever period they were declared in', () => {
    // declared Monday 09:00:30, never completed
    const atWork = timed(emergencyHistory('in-progress'), times('2026-12-28T09:00:30.000Z', 3));
    const docs = facts(atWork);
    // → flagged after Wednesday 09:00:30 (RETROSPECTIVE_DUE_BUSINESS_DAYS 2)
    expect(report(docs, '2026-12-30T09:00:00.000Z').findings.emergenciesStillAtWork).toEqual([]);
    const q4 = report(docs, '2026-12-30T09:01:00.000Z');
    expect(q4.findings.emergenciesStillAtWork).toEqual([
      {
        changeId: 'CHG-001',
        title: expect.any(String),
        type: 'emergency',
        declaredAt: '2026-12-28T09:00:30.000Z',
        flaggedAfter: '2026-12-30T09:00:30.000Z',
        completedAt: null,
      },
    ]);
    // no retrospective is due yet: the implementation has not ended
    expect(q4.findings.overdueRetrospectives).toEqual([]);
    // still a finding in the next quarter while it is at work
    const q1 = parsePeriodLabel('2027-Q1');
    expect(report(docs, '2027-04-15T00:00:00.000Z', q1).findings.emergenciesStillAtWork).toHaveLength(1);
    // completed in January: no longer at work in Q1, its retrospective overdue instead
    const completedLater = facts(
      timed(emergencyHistory('implemented'), [
        ...times('2026-12-28T09:00:30.000Z', 3),
        '2027-01-05T09:00:00.000Z',
      ]),
    );
    const later = report(completedLater, '2027-04-15T00:00:00.000Z', q1);
    expect(later.findings.emergenciesStillAtWork).toEqual([]);
    expect(later.findings.overdueRetrospectives.map((x) => x.changeId)).toEqual(['CHG-001']);
    // at work for weeks and completed within the period the limit passed in: a finding of that
    // period, though no longer at work at its end (its retrospective, due from the completion,
    // may well be on time)
    const weeksAtWork = facts(
      timed(emergencyHistory('implemented'), [
        ...times('2026-10-05T09:00:00.000Z', 3),
        '2026-10-30T17:00:00.000Z',
      ]),
    );
    const october = buildComplianceReport({
      documents: weeksAtWork,
      period: parsePeriodLabel('2026-10'),
      now: new Date('2027-01-10T00:00:00.000Z'),
      readModelPosition: 42n,
      settings: { retrospectiveDueBusinessDays: 2, postImplementationReviewDueBusinessDays: 5 },
    });
    expect(october.findings.emergenciesStillAtWork).toEqual([
      expect.objectContaining({
        changeId: 'CHG-001',
        flaggedAfter: '2026-10-07T09:00:00.000Z',
        completedAt: '2026-10-30T17:00:00.000Z',
      }),
    ]);
    expect(report(weeksAtWork, '2027-01-10T00:00:00.000Z').findings.emergenciesStillAtWork).toHaveLength(1); // Q4
    expect(complianceReportCsv(october)).toContain(
      'declared 2026-10-05T09:00:00.000Z, completed 2026-10-30T17:00:00.000Z, after 2026-10-07T09:00:00.000Z',
    );
    // completed within the limit: none
    const quick = facts(
      timed(emergencyHistory('implemented'), [
        ...times('2026-10-05T09:00:00.000Z', 3),
        '2026-10-06T17:00:00.000Z',
      ]),
    );
    expect(report(quick, '2027-01-10T00:00:00.000Z').findings.emergenciesStillAtWork).toEqual([]);
    // declared in September, limit passed in September, completed in October: September's
    const september = facts(
      timed(emergencyHistory('implemented'), [
        ...times('2026-09-28T09:00:00.000Z', 3),
        '2026-10-02T17:00:00.000Z',
      ]),
    );
    expect(report(september, '2027-01-10T00:00:00.000Z').findings.emergenciesStillAtWork).toEqual([]);
    const sep = report(september, '2027-01-10T00:00:00.000Z', parsePeriodLabel('2026-09'));
    expect(sep.findings.emergenciesStillAtWork).toEqual([
      expect.objectContaining({ flaggedAfter: '2026-09-30T09:00:00.000Z', completedAt: null }), // at work at its end
    ]);
    // a longer setting flags later, and the report says which setting it used
    const patient = buildComplianceReport({
      documents: docs,
      period: Q4,
      now: new Date('2026-12-30T09:01:00.000Z'),
      readModelPosition: 42n,
      // as the service hands it: its whole configuration, which fits the type
      settings: {
        retrospectiveDueBusinessDays: 5,
        postImplementationReviewDueBusinessDays: 5,
        auth: { jwtSecret: 's3cret' },
      } as ReportSettings,
    });
    expect(patient.findings.emergenciesStillAtWork).toEqual([]);
    // the one setting, not the secrets beside it
    expect(patient.settings).toEqual({
      retrospectiveDueBusinessDays: 5,
      postImplementationReviewDueBusinessDays: 5,
    });
    expect(q4.settings).toEqual({
      retrospectiveDueBusinessDays: 2,
      postImplementationReviewDueBusinessDays: 5,
    });
    // and in the CSV (with the setting and the definitions) and the HTML (seconds where they count)
    const csv = complianceReportCsv(q4);
    expect(csv).toContain('finding,emergenciesStillAtWork,1,CHG-001,');
    expect(csv).toContain('setting,retrospective-due-business-days,2,,');
    expect(csv).toContain('period,generated-at,2026-12-30T09:01:00.000Z,,');
    expect(csv).toMatch(/\r\ndefinition,emergenciesStillAtWork,,,"?Emergency changes at work more than/);
    const html = complianceReportHtml(q4);
    expect(html).toContain(
      'Emergency changes at work past the time a retrospective would have been due (still, or until they were completed)',
    );
    expect(html).toContain('2026-12-28 09:00:30 UTC');
    expect(html).toContain('retrospectives due 2 business days after implementation');
  });

  it('reports a report of the running quarter as of now', () => {
    const docs = facts(timed(emergencyHistory('implemented'), times('2026-11-02T09:00:00.000Z', 4)));
    // Completed Monday 12:00 → due Wednesday 12:00.
    expect(report(docs, '2026-11-04T11:59:00.000Z').findings.overdueRetrospectives).toEqual([]);
    const later = report(docs, '2026-11-04T12:01:00.000Z');
    expect(later.asOf).toBe('2026-11-04T12:01:00.000Z');
    expect(later.findings.overdueRetrospectives.map((f) => f.changeId)).toEqual(['CHG-001']);
  });

  it('finds implementations outside their window, with the reason', () => {
    // The histories' window is 2026-01-10 22:00–23:00; move it into Q4 by scheduling explicitly.
    const withWindow = (startedAt: string, completedAt: string | null) => {
      const scheduled = inProgressScheduled('2026-10-10T22:00:00.000Z', '2026-10-10T23:00:00.000Z');
      const before = scheduled.slice(0, 10); // up to the checklist
      const events = [...before, started(), ...(completedAt ? [completed()] : [])];
      return timed(events, [
        ...times('2026-10-05T09:00:00.000Z', 10),
        startedAt,
        ...(completedAt ? [completedAt] : []),
      ]);
    };
    const docs = facts(
      withWindow('2026-10-10T22:05:00.000Z', '2026-10-10T22:50:00.000Z'), // inside
      withWindow('2026-10-10T21:00:00.000Z', '2026-10-10T22:30:00.000Z'), // early
      withWindow('2026-10-11T08:00:00.000Z', '2026-10-11T09:00:00.000Z'), // late
      withWindow('2026-10-10T22:30:00.000Z', '2026-10-11T01:00:00.000Z'), // overran
      withWindow('2026-10-10T22:30:00.000Z', null), // still running after the window
    );
    expect(
      report(docs).findings.implementedOutsideWindow.map((f) => [f.changeId, f.reasons, f.completedAt]),
    ).toEqual([
      ['CHG-002', ['started-early'], '2026-10-10T22:30:00.000Z'],
      ['CHG-003', ['started-late'], '2026-10-11T09:00:00.000Z'],
      ['CHG-004', ['overran'], '2026-10-11T01:00:00.000Z'],
      ['CHG-005', ['overran'], null],
    ]);
  });

  it('an overrun that crosses into the next period is reported there, once', () => {
    // window 2026-09-30 20:00 – 2026-10-01 02:00, started inside it in Q3, completed in Q4 at 06:00
    const h = inProgressScheduled('2026-09-30T20:00:00.000Z', '2026-10-01T02:00:00.000Z');
    const events = [...h.slice(0, 10), started(), completed()];
    const docs = facts(
      timed(events, [
        ...times('2026-09-28T09:00:00.000Z', 10),
        '2026-09-30T20:05:00.000Z',
        '2026-10-01T06:00:00.000Z',
      ]),
    );
    const q3 = report(docs, '2027-01-15T00:00:00.000Z', parsePeriodLabel('2026-Q3'));
    expect(q3.findings.implementedOutsideWindow).toEqual([]); // at the end of Q3 it was still inside its window
    expect(report(docs).findings.implementedOutsideWindow.map((f) => [f.changeId, f.reasons])).toEqual([
      ['CHG-001', ['overran']],
    ]);
  });

  it("an overrun is reported in the period of the window's end, when the implementation ends later or not at all", () => {
    // window 2026-09-30 22:00 – 2026-10-01 01:00, started inside it in Q3
    const h = inProgressScheduled('2026-09-30T22:00:00.000Z', '2026-10-01T01:00:00.000Z');
    const begun = [...times('2026-09-28T09:00:00.000Z', 10), '2026-09-30T23:00:00.000Z'];
    const endedInQ1 = facts(
      timed([...h.slice(0, 10), started(), completed()], [...begun, '2027-01-05T09:00:00.000Z']),
    );
    const stillRunning = facts(timed([...h.slice(0, 10), started()], begun));
    const q3 = parsePeriodLabel('2026-Q3');
    const q1 = parsePeriodLabel('2027-Q1');
    const asOf = '2027-02-01T00:00:00.000Z';
    for (const docs of [endedInQ1, stillRunning]) {
      expect(report(docs, asOf, q3).findings.implementedOutsideWindow).toEqual([]);
      expect(report(docs, asOf, q1).findings.implementedOutsideWindow).toEqual([]);
    }
    const q4 = (docs: typeof endedInQ1) =>
      report(docs, asOf).findings.implementedOutsideWindow.map((f) => [f.changeId, f.reasons, f.completedAt]);
    // as of the end of Q4 neither had ended
    expect(q4(endedInQ1)).toEqual([['CHG-001', ['overran'], null]]);
    expect(q4(stillRunning)).toEqual([['CHG-001', ['overran'], null]]);
  });

  it('lists segregation-of-duties exceptions of the period, and stale review waits overlapping it', () => {
    const selfApproved = timed(
      [...normalHistory('awaiting-approval'), approvedBy(actors.alice, 'low')],
      times('2026-10-05T09:00:00.000Z', 6),
    );
    const stuck = timed(normalHistory('in-review'), ['2026-12-01T09:00:00.000Z']);
    const slowButDone = timed(normalHistory('approved'), [
      '2026-09-20T09:00:00.000Z',
      ...times('2026-10-06T09:00:00.000Z', 5),
    ]);
    const quick = timed(normalHistory('approved'), times('2026-10-06T09:00:00.000Z', 6, 24));
    const r = report(facts(selfApproved, stuck, slowButDone, quick));
    expect(r.findings.segregationOfDutiesExceptions).toEqual([
      expect.objectContaining({
        changeId: 'CHG-001',
        rule: 'requester-decided-approval',
        revision: '5',
        eventType: 'ChangeApproved',
      }),
    ]);
    expect(r.findings.staleInReview.map((f) => [f.changeId, f.since, f.until, f.days])).toEqual([
      ['CHG-002', '2026-12-01T09:00:00.000Z', null, 30.7], // 30.625 days, rounded up
      ['CHG-003', '2026-09-20T09:00:00.000Z', '2026-10-06T13:00:00.000Z', 16.2],
    ]);
    // What the check covered: three reviews and an approval each (the stuck change has none yet).
    expect(r.segregationOfDutiesChecks).toEqual({ changes: 3, controlEvents: 4 + 4 + 4 });
    // The same exception is not in the next quarter's report.
    expect(
      report(facts(selfApproved), '2027-04-15T00:00:00.000Z', parsePeriodLabel('2027-Q1')).findings
        .segregationOfDutiesExceptions,
    ).toEqual([]);
    // A wait that ended at the very start of a quarter is the previous quarter's only.
    const endedAtQ4 = facts(
      timed(normalHistory('approved'), ['2026-09-01T00:00:00.000Z', ...times('2026-09-30T20:00:00.000Z', 5)]),
    );
    const staleIn = (period: string) =>
      report(endedAtQ4, '2027-01-15T00:00:00.000Z', parsePeriodLabel(period)).findings.staleInReview.map(
        (f) => f.until,
      );
    expect(staleIn('2026-Q3')).toEqual([null]); // as of the quarter's end, still waiting
    expect(staleIn('2026-Q4')).toEqual([]);
  });

  it('renders CSV for spreadsheets without letting a typed formula run', () => {
    const evil = normalHistory('closed').map((e) =>
      e.type === 'PostImplementationReviewRecorded'
        ? {
            ...e,
            data: {
              ...e.data,
              lessonsLearned: '=HYPERLINK("http://x","y")',
              // stored before requests refused control characters: no escape reaches a terminal
              improvements: ['+1, "quoted"', 'clear\u001b[2Jscreen\u009b'],
            },
          }
        : e,
    );
    const csv = complianceReportCsv(
      report(facts(timed(evil, times('2026-10-05T09:00:00.000Z', evil.length)))),
    );
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe('section,metric,value,changeId,detail');
    expect(lines).toContain('volume,submitted.total,1,,');
    expect(lines).toContain('rate,success-rate,1,,');
    expect(lines).toContain(
      `lesson,lessons-learned,2026-10-05T22:00:00.000Z,CHG-001,"'=HYPERLINK(""http://x"",""y"")"`,
    );
    expect(lines).toContain(`lesson,improvement,2026-10-05T22:00:00.000Z,CHG-001,"'+1, ""quoted"""`);
    expect(lines).toContain('lesson,improvement,2026-10-05T22:00:00.000Z,CHG-001,clear\ufffd[2Jscreen\ufffd');
    expect(csv.includes('\u001b') || csv.includes('\u009b')).toBe(false);
    expect(lines).toContain('finding-count,segregationOfDutiesExceptions,0,,');
    // zero exceptions, and what was checked to find them
    expect(lines).toContain('sod-checked,changes,1,,');
    expect(lines.some((l) => /^sod-checked,control-events,[1-9]\d*,,$/.test(l))).toBe(true);
  });

  it('renders a self-contained HTML page with two charts and the users’ text escaped', () => {
    const docs = facts(
      timed(
        normalHistory('closed').map((e): ChangeRequestEvent =>
          e.type === 'ChangeSubmitted'
            ? {
                ...e,
                data: {
                  ...e.data,
                  request: { ...e.data.request, title: '<script>alert(1)</script>\u001b[2J' },
                },
              }
            : e,
        ),
        times('2026-10-05T09:00:00.000Z', 15),
      ),
    );
    const html = complianceReportHtml(report(docs));
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;\ufffd[2J');
    expect(html).not.toContain('\u001b');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/(src|href)=["']?https?:/i);
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain('id="chart-changes-per-month"');
    expect(html).toContain('id="chart-outcomes"');
    expect(html).toContain('Change compliance report: 2026-Q4');
    expect(html).toMatch(/Checked: [1-9]\d* control events of 1 changes in the period\./);
  });
});
