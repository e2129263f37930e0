/**
 * `GET /approvals/pending`: normal changes in `awaiting-approval`, with the approval level they
 * need and since when they wait.
 */
import type { ChangeRequestFields, ChangeType, RiskLevel } from '@changeledger/domain';
import {
  actors,
  allReviewsApproved,
  approvedBy,
  cancelled,
  emergencyRequest,
  event,
  normalRequest,
  reviewed,
  standardRequest,
  templateRef,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type PendingApprovalDocument,
  pendingApprovalsProjection,
  toPendingApproval,
} from './pending-approvals.projection';
import {
  type DomainEventLike,
  at,
  changeStream,
  eventLog,
  project,
  recordedEvent,
  templateStream,
} from './recorded-events.fixtures';

const SUBMITTED_AT = '2026-01-05T09:00:00.000Z';
const REVIEWED_AT = '2026-01-06T15:45:00.000Z';

const submission = (changeType: ChangeType, request: ChangeRequestFields, changeId = 'CHG-001') =>
  at(
    event('ChangeSubmitted', actors.alice, {
      changeId,
      changeType,
      request,
      ...(changeType === 'standard' ? { standardTemplate: templateRef } : {}),
    }),
    SUBMITTED_AT,
  );

const reviewsCompleted = (risk: RiskLevel) =>
  allReviewsApproved(risk).map((e) => (e.type === 'ReviewsCompleted' ? at(e, REVIEWED_AT) : e));

const docAfter = (...events: DomainEventLike[]): PendingApprovalDocument | undefined =>
  project(pendingApprovalsProjection, eventLog().append(changeStream('CHG-001'), ...events)).get('CHG-001');

const awaiting = (risk: RiskLevel = 'low') => [
  submission('normal', normalRequest(risk)),
  ...reviewsCompleted(risk),
];

const amended = (
  changes: Partial<ChangeRequestFields>,
  statusBefore: 'in-review' | 'changes-requested' | 'awaiting-approval' = 'awaiting-approval',
) =>
  event('ChangeAmended', actors.alice, {
    changes,
    previous: {},
    voidedReviews: statusBefore === 'in-review' ? [] : ['technical', 'business', 'security'],
    statusBefore,
    statusAfter: 'in-review',
  });

describe('pending approvals projection', () => {
  it('documentId is the change id of a change stream, and nothing for template streams', () => {
    expect(
      pendingApprovalsProjection.documentId(
        recordedEvent(changeStream('CHG-012'), submission('normal', normalRequest())),
      ),
    ).toBe('CHG-012');
    expect(
      pendingApprovalsProjection.documentId(
        recordedEvent(templateStream('STD-001'), { type: 'StandardTemplateCreated', data: {} }),
      ),
    ).toBeUndefined();
  });

  describe('only normal changes', () => {
    it('a submitted normal change has a document, not pending yet', () => {
      expect(docAfter(submission('normal', normalRequest('medium')))).toMatchObject({
        id: 'CHG-001',
        changeId: 'CHG-001',
        title: 'Move VM traffic to VLAN 20',
        riskLevel: 'medium',
        priority: 'medium',
        requestedBy: { id: 'u-alice', name: 'Alice Requester' },
        proposedStart: '2026-01-10T22:00:00.000Z',
        pending: false,
        requiredApproval: null,
        awaitingSince: null,
      });
    });

    it.each<[ChangeType, ChangeRequestFields]>([
      ['standard', standardRequest()],
      ['emergency', emergencyRequest()],
    ])('a %s change never gets one', (type, request) => {
      expect(
        docAfter(
          submission(type, request),
          ...(type === 'standard'
            ? [
                event('ChangePreApproved', actors.alice, {
                  templateId: 'STD-001',
                  rule: 'standard-change-template',
                }),
              ]
            : [event('ImplementationStarted', actors.alice, { emergency: true })]),
          // Even events that would enter or leave the queue for a normal change.
          ...reviewsCompleted('low'),
          approvedBy(actors.lena, 'low'),
        ),
      ).toBeUndefined();
    });
  });

  describe('entering the queue', () => {
    it.each<[RiskLevel, string]>([
      ['low', 'infrastructure-lead'],
      ['medium', 'infrastructure-lead'],
      ['high', 'management'],
    ])('ReviewsCompleted on a %s-risk change: pending for %s since the completion', (risk, level) => {
      const doc = docAfter(...awaiting(risk));
      expect(doc).toMatchObject({
        pending: true,
        requiredApproval: level,
        awaitingSince: REVIEWED_AT,
        riskLevel: risk,
      });
      expect(toPendingApproval(doc!)).toEqual({
        changeId: 'CHG-001',
        title: 'Move VM traffic to VLAN 20',
        riskLevel: risk,
        priority: 'medium',
        requiredApproval: level,
        requestedBy: { id: 'u-alice', name: 'Alice Requester' },
        awaitingSince: REVIEWED_AT,
        proposedStart: '2026-01-10T22:00:00.000Z',
      });
    });

    it('single reviews do not put it in the queue', () => {
      const doc = docAfter(
        submission('normal', normalRequest()),
        reviewed('technical'),
        reviewed('business'),
      );
      expect(doc?.pending).toBe(false);
    });

    it('a change without a proposed start has proposedStart null', () => {
      const { timeline: _timeline, ...noTimeline } = normalRequest();
      expect(docAfter(submission('normal', noTimeline as ChangeRequestFields))?.proposedStart).toBeNull();
    });
  });

  describe('leaving the queue', () => {
    it.each<[string, DomainEventLike]>([
      ['ChangeApproved', approvedBy(actors.lena, 'low')],
      [
        'ChangeRejected',
        event('ChangeRejected', actors.lena, { stage: 'approval', reason: 'Not this quarter' }),
      ],
      ['ChangeCancelled', cancelled('awaiting-approval')],
      ['ChangesRequested', event('ChangesRequested', actors.tom, { kind: 'technical', notes: 'redo' })],
    ])('%s → not pending', (_name, leave) => {
      expect(docAfter(...awaiting(), leave)?.pending).toBe(false);
    });

    it('an amendment sends it back to review and clears the approval fields', () => {
      const doc = docAfter(...awaiting('high'), amended({ description: 'More detail' }));
      expect(doc).toMatchObject({
        pending: false,
        requiredApproval: null,
        awaitingSince: null,
        riskLevel: 'high',
      });
    });

    it('after an amendment, completed reviews put it back with the new time and level', () => {
      const doc = docAfter(
        ...awaiting('high'),
        amended({ risk: { level: 'medium', potentialImpact: 'Less', mitigation: 'Console' } }),
        ...allReviewsApproved('medium').map((e) =>
          e.type === 'ReviewsCompleted' ? at(e, '2026-01-08T10:00:00.000Z') : e,
        ),
      );
      expect(doc).toMatchObject({
        pending: true,
        riskLevel: 'medium',
        requiredApproval: 'infrastructure-lead',
        awaitingSince: '2026-01-08T10:00:00.000Z',
      });
    });

    it('leaving events of a change that is not pending change nothing', () => {
      const inReview = docAfter(submission('normal', normalRequest()))!;
      const reject = recordedEvent(
        changeStream('CHG-001'),
        event('ChangeRejected', actors.sid, { stage: 'review', kind: 'security', reason: 'No' }),
        5n,
      );
      expect(pendingApprovalsProjection.evolve(inReview, reject)).toBeUndefined();
      const requested = recordedEvent(
        changeStream('CHG-001'),
        event('ChangesRequested', actors.tom, { kind: 'technical', notes: 'redo' }),
        5n,
      );
      expect(pendingApprovalsProjection.evolve(inReview, requested)).toBeUndefined();
    });
  });

  describe('amendment updates the shown fields', () => {
    it('title, risk, priority and proposed start', () => {
      const doc = docAfter(
        submission('normal', normalRequest('low')),
        amended(
          {
            title: 'Move VM traffic to VLAN 30',
            risk: { level: 'high', potentialImpact: 'Cluster outage', mitigation: 'Out-of-band access' },
            priority: 'critical',
            timeline: { proposedStart: '2026-02-01T22:00:00.000Z', estimatedDurationMinutes: 90 },
          },
          'in-review',
        ),
      );
      expect(doc).toMatchObject({
        title: 'Move VM traffic to VLAN 30',
        riskLevel: 'high',
        priority: 'critical',
        proposedStart: '2026-02-01T22:00:00.000Z',
        pending: false,
      });
    });

    it('fields the amendment leaves out are kept', () => {
      const doc = docAfter(
        submission('normal', normalRequest('medium')),
        amended({ rollbackPlan: 'Restore' }, 'in-review'),
      );
      expect(doc).toMatchObject({
        title: 'Move VM traffic to VLAN 20',
        riskLevel: 'medium',
        priority: 'medium',
      });
    });
  });

  it('events that do not concern approval → undefined', () => {
    const doc = docAfter(...awaiting())!;
    for (const e of [
      reviewed('technical'),
      event('ChecklistItemCompleted', actors.ivan, { item: 'backups-verified' }),
    ]) {
      expect(
        pendingApprovalsProjection.evolve(doc, recordedEvent(changeStream('CHG-001'), e, 99n)),
      ).toBeUndefined();
    }
  });

  it('events of a change with no document → undefined', () => {
    const e = recordedEvent(changeStream('CHG-001'), reviewsCompleted('low').at(-1)!);
    expect(pendingApprovalsProjection.evolve(undefined, e)).toBeUndefined();
  });
});
