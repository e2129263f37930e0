/**
 * `compliance_facts`: the times and actors of every control-relevant step of a change, and the
 * segregation-of-duties rules checked against the events themselves.
 */
import type { ChangeRequestEvent } from '@changeledger/domain';
import {
  actors,
  allReviewsApproved,
  approvedBy,
  closed,
  completed,
  emergencyHistory,
  emergencyRequest,
  event,
  normalHistory,
  normalRequest,
  approvalVoidingAmendment,
  postImplementationReviewed,
  standardHistory,
  started,
  submitted,
  templateCreated,
} from '../../../domain/src/change-request/change-request.fixtures';
import { type ComplianceFactsDocument, complianceFactsProjection } from './compliance-facts.projection';
import { at, changeStream, eventLog, project, templateStream } from './recorded-events.fixtures';

const projection = complianceFactsProjection;

/** The events, one hour apart from Monday 2026-10-05 09:00 UTC. */
const hourly = (events: readonly ChangeRequestEvent[], start = '2026-10-05T09:00:00.000Z') =>
  events.map((e, i) => at(e, new Date(Date.parse(start) + i * 3_600_000).toISOString()));

const hour = (n: number, start = '2026-10-05T09:00:00.000Z') =>
  new Date(Date.parse(start) + n * 3_600_000).toISOString();

const factsOf = (events: readonly ChangeRequestEvent[]): ComplianceFactsDocument => {
  const log = eventLog();
  const docs = project(projection, log.append(changeStream('CHG-001'), ...events));
  const doc = docs.get('CHG-001');
  if (!doc) throw new Error('no document');
  return doc;
};

describe('compliance facts projection', () => {
  it('records every step of a closed normal change with its time and actor', () => {
    const doc = factsOf(hourly(normalHistory('closed', { risk: 'medium' })));
    // submitted(0) 3 reviews(1-3) completed(4) approved(5) scheduled(6) checklist(7-9) started(10)
    // verified(11) completed(12) PIR(13) closed(14)
    expect(doc).toMatchObject({
      changeId: 'CHG-001',
      type: 'normal',
      status: 'closed',
      riskLevel: 'medium',
      requestedBy: { id: actors.alice.id },
      submittedAt: hour(0),
      approval: { at: hour(5), by: { id: actors.lena.id }, level: 'infrastructure-lead' },
      schedule: { plannedStart: '2026-01-10T22:00:00.000Z', plannedEnd: '2026-01-10T23:00:00.000Z' },
      implementationStart: { at: hour(10), by: { id: actors.ivan.id } },
      completion: { at: hour(12), outcome: 'successful' },
      postImplementationReview: {
        at: hour(13),
        lessonsLearned: 'Save the switch configuration before every change',
        improvements: ['Automate the connectivity check'],
      },
      retrospective: null,
      // In review and then awaiting approval: one wait, until the approval.
      reviewIntervals: [{ from: hour(0), to: hour(5) }],
      // Three reviews, the approval, the start and the implementation work (the verification and
      // the completion) are what segregation of duties applies to.
      controlEvents: [hour(1), hour(2), hour(3), hour(5), hour(10), hour(11), hour(12)],
      dutyExceptions: [],
      closedAt: hour(14),
      lastActivityAt: hour(14),
      open: false,
    });
  });

  it('records when issues were first written down: an issue, notes on a failed verification or the completion, or issues named by the review', () => {
    const closedWith = (
      replace: (e: ChangeRequestEvent) => ChangeRequestEvent,
      extra: ChangeRequestEvent[] = [],
    ) => {
      const events = normalHistory('closed').map(replace);
      const completion = events.findIndex((e) => e.type === 'ImplementationCompleted');
      return factsOf(hourly([...events.slice(0, completion), ...extra, ...events.slice(completion)]));
    };
    const same = (e: ChangeRequestEvent) => e;
    expect(closedWith(same).issuesDocumentedAt).toBeNull();
    const issue = event('ImplementationIssueRecorded', actors.ivan, {
      description: 'pve2 lost quorum',
      severity: 'high',
    });
    // submitted(0) 3 reviews(1-3) completed(4) approved(5) scheduled(6) checklist(7-9) started(10)
    // verified(11), then the issue (12)
    expect(closedWith(same, [issue]).issuesDocumentedAt).toBe(hour(12));
    const withNotes = closedWith((e) =>
      e.type === 'ImplementationCompleted'
        ? event('ImplementationCompleted', actors.ivan, {
            outcome: 'failed',
            notes: 'rolled the bridge back',
          })
        : e,
    );
    expect(withNotes.issuesDocumentedAt).toBe(hour(12));
    const blankNotes = closedWith((e) =>
      e.type === 'ImplementationCompleted'
        ? event('ImplementationCompleted', actors.ivan, { outcome: 'failed', notes: ' \u200b\u2800 ' })
        : e,
    );
    expect(blankNotes.issuesDocumentedAt).toBeNull(); // nothing visible written
    const failedVerification = (notes: string) =>
      closedWith((e) =>
        e.type === 'VerificationRecorded' ? { ...e, data: { ...e.data, passed: false, notes } } : e,
      );
    expect(failedVerification('VM 123 did not boot after the resize').issuesDocumentedAt).toBe(hour(11));
    expect(failedVerification('\u200b').issuesDocumentedAt).toBeNull();
    // an issue recorded after the completion, before the close, counts
    const history = normalHistory('closed');
    const review = history.findIndex((e) => e.type === 'PostImplementationReviewRecorded');
    const late = factsOf(hourly([...history.slice(0, review), issue, ...history.slice(review)]));
    expect(late.status).toBe('closed');
    expect(late.issuesDocumentedAt).toBe(hour(13));
    // imported out of time order: the earliest record stands
    const events = hourly([...history.slice(0, review), issue, issue, ...history.slice(review)]);
    const [first, second] = [events[review], events[review + 1]];
    const swapped = [
      ...events.slice(0, review),
      at(second, hour(20)),
      at(first, hour(13)),
      ...events.slice(review + 2),
    ];
    expect(factsOf(swapped).issuesDocumentedAt).toBe(hour(13));
    const reviewNamesThem = closedWith((e) =>
      e.type === 'PostImplementationReviewRecorded'
        ? { ...e, data: { ...e.data, issues: 'quorum lost for 2 min' } }
        : e,
    );
    expect(reviewNamesThem.issuesDocumentedAt).toBe(hour(13));
  });

  it('counts as control events only those a segregation-of-duties rule judges', () => {
    // a review that rejects: ReviewRecorded (judged) and ChangeRejected at stage review (not again)
    const rejectedInReview = factsOf(
      hourly([
        submitted('normal', normalRequest('low')),
        event('ReviewRecorded', actors.tom, {
          kind: 'technical',
          verdict: 'reject',
          notes: 'no',
          criteria: { feasibility: 'no', impactAssessment: 'no', riskEvaluation: 'no' },
        }),
        event('ChangeRejected', actors.tom, { stage: 'review', reason: 'no' }),
      ]),
    );
    expect(rejectedInReview.controlEvents).toEqual([hour(1)]);
    // an emergency's start has no approver to compare with; a standard change's neither
    expect(factsOf(hourly(emergencyHistory('in-progress'))).controlEvents).toEqual([]);
    expect(factsOf(hourly(standardHistory('in-progress'))).controlEvents).toEqual([]);
  });

  it('keeps a change open until it is closed, cancelled or rejected', () => {
    expect(factsOf(hourly(normalHistory('implemented'))).open).toBe(true);
    expect(factsOf(hourly(normalHistory('cancelled'))).open).toBe(false);
    const rejected = factsOf(hourly(normalHistory('rejected')));
    expect(rejected.open).toBe(false);
    expect(rejected.rejection).toEqual({ at: hour(5), stage: 'approval' });
  });

  it('counts changes requested and awaiting approval as one wait, until it leaves for good', () => {
    const history = hourly([
      ...normalHistory('changes-requested'), // 0 submit, 1 review, 2 changes requested
      event('ChangeAmended', actors.alice, {
        changes: { description: 'More detail' },
        previous: {},
        voidedReviews: ['technical'],
        statusBefore: 'changes-requested',
        statusAfter: 'in-review',
      }), // 3
      ...allReviewsApproved('low'), // 4-7
      event('ChangeAmended', actors.alice, {
        changes: { title: 'Renamed' },
        previous: {},
        voidedReviews: ['technical', 'business', 'security'],
        statusBefore: 'awaiting-approval',
        statusAfter: 'in-review',
      }), // 8
    ]);
    const doc = factsOf(history);
    expect(doc.reviewIntervals).toEqual([{ from: hour(0), to: null }]);
    const approved = factsOf([...history, ...hourly(normalHistory('approved').slice(1), hour(9))]);
    expect(approved.reviewIntervals).toEqual([{ from: hour(0), to: hour(13) }]);
    expect(doc.title).toBe('Renamed');
    expect(doc.status).toBe('in-review');
  });

  it('records an emergency change from declaration to retrospective decision', () => {
    const history = emergencyHistory('closed').map((e, i) =>
      at(e, i < 4 ? `2026-10-09T1${i}:00:00.000Z` : `2026-10-14T1${i}:00:00.000Z`),
    );
    const doc = factsOf(history);
    expect(doc).toMatchObject({
      type: 'emergency',
      category: 'security',
      completion: { at: '2026-10-09T13:00:00.000Z', outcome: 'successful' },
      retrospective: { at: '2026-10-14T15:00:00.000Z', decision: 'approve', by: { id: actors.max.id } },
      reviewIntervals: [],
      dutyExceptions: [],
    });
  });

  it('keeps a retrospective approval an amendment made void with the time it did (schema 6), beside the one taken again', () => {
    const amendment = approvalVoidingAmendment({ comment: 'fine', at: hour(5) });
    const decision = event('RetrospectiveDecisionRecorded', actors.max, {
      decision: 'approve',
      comment: 'fine',
    });
    const history = hourly([
      ...emergencyHistory('implemented'),
      postImplementationReviewed(),
      decision,
      amendment,
    ]);
    const voided = factsOf(history);
    const first = {
      at: hour(history.length - 2),
      by: expect.objectContaining({ id: actors.max.id }),
      decision: 'approve',
    };
    expect(voided.retrospective).toBeNull();
    expect(voided.voidedRetrospectives).toEqual([{ ...first, voidedAt: hour(history.length - 1) }]);
    const again = factsOf([...history, at(decision, hour(history.length))]);
    expect(again.retrospective).toEqual({ ...first, at: hour(history.length) });
    expect(again.voidedRetrospectives).toEqual([{ ...first, voidedAt: hour(history.length - 1) }]);
  });

  it('records a standard change as approved by its template, with no review wait', () => {
    const doc = factsOf(hourly(standardHistory('closed')));
    expect(doc.approval).toEqual({ at: hour(1), by: null, level: 'standard-template' });
    expect(doc.reviewIntervals).toEqual([]);
    expect(doc.dutyExceptions).toEqual([]);
  });

  it.each([
    [
      'requester-reviewed',
      [
        submitted('normal', normalRequest()),
        event('ReviewRecorded', actors.alice, {
          kind: 'technical',
          verdict: 'approve',
          notes: 'mine',
          criteria: {},
        }),
      ],
      'ReviewRecorded',
      1,
      actors.alice.id,
    ],
    [
      'requester-decided-approval',
      [...normalHistory('awaiting-approval'), approvedBy(actors.alice, 'low')],
      'ChangeApproved',
      5,
      actors.alice.id,
    ],
    [
      'requester-decided-approval',
      [
        ...normalHistory('awaiting-approval'),
        event('ChangeRejected', actors.alice, { stage: 'approval', reason: 'x' }),
      ],
      'ChangeRejected',
      5,
      actors.alice.id,
    ],
    [
      'approver-started-implementation',
      [...normalHistory('approved'), started(actors.lena)],
      'ImplementationStarted',
      6,
      actors.lena.id,
    ],
    [
      'approver-implemented',
      [
        ...normalHistory('approved'),
        started(actors.ivan),
        event('ImplementationStepRecorded', actors.lena, { sequence: 1, description: 'Moved the bridge' }),
      ],
      'ImplementationStepRecorded',
      7,
      actors.lena.id,
    ],
    [
      'approver-implemented',
      [
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        event('RetrospectiveDecisionRecorded', actors.max, { decision: 'approve', comment: 'fine' }),
        event('ImplementationIssueRecorded', actors.max, { description: 'Found later', severity: 'low' }),
      ],
      'ImplementationIssueRecorded',
      6,
      actors.max.id,
    ],
    [
      'requester-decided-retrospective',
      [
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        event('RetrospectiveDecisionRecorded', actors.alice, { decision: 'approve', comment: 'fine by me' }),
      ],
      'RetrospectiveDecisionRecorded',
      5,
      actors.alice.id,
    ],
    [
      'implementer-decided-retrospective',
      [
        submitted('emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true, byImplementer: false }),
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'Failed over' }),
        event('ImplementationCompleted', actors.ivan, { outcome: 'successful' }),
        event('RetrospectiveDecisionRecorded', actors.ivan, { decision: 'approve', comment: 'mine' }),
      ],
      'RetrospectiveDecisionRecorded',
      4,
      actors.ivan.id,
    ],
    [
      'implementer-decided-retrospective',
      [
        submitted('emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true, byImplementer: false }),
        event('ImplementationStepRecorded', actors.ines, { sequence: 1, description: 'Failed over' }),
        event('ImplementationStepRecorded', actors.ivan, { sequence: 2, description: 'Checked' }),
        event('RetrospectiveDecisionRecorded', actors.ivan, { decision: 'reject', comment: 'mine' }),
      ],
      'RetrospectiveDecisionRecorded',
      4,
      actors.ivan.id,
    ],
  ] as const)(
    'finds the segregation-of-duties exception %s (%#)',
    (rule, history, eventType, revision, actorId) => {
      const doc = factsOf(hourly(history as readonly ChangeRequestEvent[]));
      expect(doc.dutyExceptions).toEqual([
        {
          rule,
          actor: { id: actorId, name: expect.any(String) },
          eventType,
          revision: String(revision),
          at: hour(revision),
        },
      ]);
    },
  );

  it('lets anyone who did none of the work, and is not the requester, decide an emergency retrospectively', () => {
    const history = hourly([
      submitted('emergency', emergencyRequest()),
      event('ImplementationStarted', actors.alice, { emergency: true, byImplementer: false }),
      event('ImplementationStepRecorded', actors.ines, { sequence: 1, description: 'Failed over' }),
      event('ImplementationStepRecorded', actors.ivan, { sequence: 2, description: 'Checked' }),
      event('RetrospectiveDecisionRecorded', actors.max, { decision: 'approve', comment: 'fine' }),
    ]);
    const doc = factsOf(history);
    // the declarer without the implementer role did not start the work
    expect(doc.implementationWorkers).toEqual([actors.ines.id, actors.ivan.id]);
    expect(doc.dutyExceptions).toEqual([]);
    expect(doc.controlEvents).toHaveLength(1);
  });

  it('counts a rejecting review once: by its ReviewRecorded, not again by the ChangeRejected', () => {
    const history = hourly([
      submitted('normal', normalRequest()),
      event('ReviewRecorded', actors.alice, {
        kind: 'business',
        verdict: 'reject',
        notes: 'mine',
        criteria: {},
      }),
      event('ChangeRejected', actors.alice, { stage: 'review', kind: 'business', reason: 'x' }),
    ]);
    expect(factsOf(history).dutyExceptions.map((e) => [e.rule, e.eventType])).toEqual([
      ['requester-reviewed', 'ReviewRecorded'],
    ]);
  });

  it('judges by the authenticated sender, and flags an event naming someone else', () => {
    const log = eventLog();
    const recorded = log.append(
      changeStream('CHG-001'),
      ...hourly([...normalHistory('awaiting-approval'), approvedBy(actors.lena, 'low')]),
    );
    // The data says Lena approved; the token that sent it was Alice's (the requester).
    const forged = recorded.map((e) =>
      e.type === 'ChangeApproved'
        ? {
            ...e,
            metadata: { ...e.metadata, actor: { id: actors.alice.id, name: actors.alice.name, roles: [] } },
          }
        : e,
    );
    const doc = project(projection, forged).get('CHG-001')!;
    expect(doc.dutyExceptions.map((e) => [e.rule, e.actor.id, e.revision])).toEqual([
      ['recorded-actor-mismatch', actors.alice.id, '5'],
    ]);
  });

  it('keeps schedules as instants, whatever ISO form they were given in', () => {
    const history = hourly(normalHistory('scheduled')).map((e) =>
      e.type === 'ChangeScheduled'
        ? {
            ...e,
            data: {
              ...e.data,
              plannedStart: '2026-10-10T23:00:00+01:00',
              plannedEnd: '2026-10-11T00:00:00Z',
            },
          }
        : e,
    );
    expect(factsOf(history).schedule).toEqual({
      plannedStart: '2026-10-10T22:00:00.000Z',
      plannedEnd: '2026-10-11T00:00:00.000Z',
    });
  });

  it('finds no exception when the same people act on other people’s changes', () => {
    // Lena approved CHG-001; starting the implementation of a change she did not approve is fine.
    const history = hourly([
      ...normalHistory('approved'),
      started(actors.ivan),
      completed('failed'),
      postImplementationReviewed(),
      closed(),
    ]);
    expect(factsOf(history).dutyExceptions).toEqual([]);
  });

  it('ignores template streams and events of changes it never saw submitted', () => {
    const log = eventLog();
    const docs = project(projection, [
      ...log.append(templateStream('STD-001'), templateCreated()),
      ...log.append(changeStream('CHG-009'), completed()),
    ]);
    expect(docs.size).toBe(0);
  });

  it('applies a replayed log once: the same documents', () => {
    const log = eventLog();
    const events = log.append(changeStream('CHG-001'), ...hourly(normalHistory('closed')));
    const once = project(projection, events);
    expect(project(projection, events, once)).toEqual(once);
  });
});
