/**
 * `GET /retrospectives/queue`: emergency changes not yet closed, what is still outstanding for
 * each, and when its retrospective is due (implementation end + N business days).
 */
import type { ChangeRequestFields, ChangeType } from '@changeledger/domain';
import {
  actors,
  completed,
  emergencyHistory,
  emergencyRequest,
  event,
  incompleteEmergencyRequest,
  laterFields,
  normalHistory,
  normalRequest,
  approvalVoidingAmendment,
  postImplementationReviewed,
  standardHistory,
  templateRef,
  verified,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type DomainEventLike,
  at,
  changeStream,
  eventLog,
  project,
  recordedEvent,
  templateStream,
} from './recorded-events.fixtures';
import {
  type RetrospectiveDocument,
  retrospectiveQueueProjection,
  toRetrospectiveItem,
} from './retrospective-queue.projection';

const DECLARED_AT = '2026-01-09T03:00:00.000Z'; // a Friday
const ENDED_AT = '2026-01-09T17:30:00.000Z'; // the same Friday
const DUE_AT = '2026-01-13T17:30:00.000Z'; // Tuesday, two business days later

const declared = (request: ChangeRequestFields = emergencyRequest(), changeType: ChangeType = 'emergency') =>
  at(
    event('ChangeSubmitted', actors.ivan, {
      changeId: 'CHG-001',
      changeType,
      request,
      ...(changeType === 'standard' ? { standardTemplate: templateRef } : {}),
    }),
    DECLARED_AT,
  );
const startedNow = () => at(event('ImplementationStarted', actors.ivan, { emergency: true }), DECLARED_AT);
const ended = () => at(completed('successful'), ENDED_AT);
const decided = (decision: 'approve' | 'reject' = 'approve') =>
  event('RetrospectiveDecisionRecorded', actors.max, { decision, comment: 'Reviewed in the CAB' });
/** Declared, implemented, reviewed and decided: nothing outstanding. */
const decidedHistory = (decision: 'approve' | 'reject' = 'approve') => [
  declared(),
  startedNow(),
  verified(),
  ended(),
  postImplementationReviewed(),
  decided(decision),
];
const amended = (changes: Partial<ChangeRequestFields>) =>
  event('ChangeAmended', actors.ivan, {
    changes,
    previous: {},
    voidedReviews: [],
    statusBefore: 'in-progress',
    statusAfter: 'in-progress',
  });

const queue = retrospectiveQueueProjection;
/** The queue item with the default RETROSPECTIVE_DUE_BUSINESS_DAYS (2). */
const itemOf = (doc: RetrospectiveDocument, now: Date, days = 2) => toRetrospectiveItem(doc, now, days);
const docAfter = (...events: DomainEventLike[]): RetrospectiveDocument | undefined =>
  project(queue, eventLog().append(changeStream('CHG-001'), ...events)).get('CHG-001');

describe('retrospective queue projection', () => {
  it('documentId is the change id of a change stream, nothing for template streams', () => {
    expect(queue.documentId(recordedEvent(changeStream('CHG-009'), declared()))).toBe('CHG-009');
    expect(
      queue.documentId(
        recordedEvent(templateStream('STD-001'), { type: 'StandardTemplateCreated', data: {} }),
      ),
    ).toBeUndefined();
  });

  describe('only emergency changes', () => {
    it.each([
      ['normal', normalHistory('closed')],
      ['standard', standardHistory('closed')],
    ])('a %s change never gets a document', (_type, history) => {
      expect(docAfter(...history)).toBeUndefined();
    });

    it('a declared emergency is open, waiting for its review and decision, not yet due', () => {
      const doc = docAfter(declared(), startedNow());
      expect(doc).toMatchObject({
        id: 'CHG-001',
        changeId: 'CHG-001',
        title: 'Patch OpenSSH on every node',
        category: 'security',
        declaredAt: DECLARED_AT,
        implementedAt: null,
        open: true,
        outstanding: ['post-implementation-review', 'retrospective-approval'],
      });
    });
  });

  describe('outstanding items and how each is cleared', () => {
    it('an emergency declared without the "later" fields needs a complete request', () => {
      const doc = docAfter(declared(incompleteEmergencyRequest()), startedNow());
      expect(doc?.category).toBe('outage');
      expect(doc?.outstanding).toEqual([
        'complete-request',
        'post-implementation-review',
        'retrospective-approval',
      ]);
      expect([...(doc?.missingFields ?? [])].sort()).toEqual(
        ['expectedImpact', 'implementationPlan', 'risk', 'rollbackPlan', 'testingPlan', 'timeline'].sort(),
      );
    });

    it('complete-request stays while some "later" field is still missing', () => {
      const { timeline: _timeline, ...someLater } = laterFields();
      const doc = docAfter(declared(incompleteEmergencyRequest()), startedNow(), amended(someLater));
      expect(doc?.missingFields).toEqual(['timeline']);
      expect(doc?.outstanding).toContain('complete-request');
    });

    it('complete-request is cleared once amendments have filled in every "later" field', () => {
      const { timeline, ...rest } = laterFields();
      const doc = docAfter(
        declared(incompleteEmergencyRequest()),
        startedNow(),
        amended(rest),
        amended({ timeline }),
      );
      expect(doc?.missingFields).toEqual([]);
      expect(doc?.outstanding).toEqual(['post-implementation-review', 'retrospective-approval']);
    });

    it('an amendment with blank text leaves the field missing, and blanking a filled field makes it missing', () => {
      const { timeline, ...rest } = laterFields();
      const doc = docAfter(
        declared(incompleteEmergencyRequest()),
        startedNow(),
        amended({ ...rest, rollbackPlan: '   ' }),
        amended({ timeline, testingPlan: '\t' }),
      );
      expect(doc?.missingFields).toEqual(['rollbackPlan', 'testingPlan']);
      expect(doc?.outstanding).toContain('complete-request');
    });

    it('text that shows nothing (braille blank, zero-width space) is missing too (version 3)', () => {
      const { timeline, ...rest } = laterFields();
      const doc = docAfter(
        declared({ ...emergencyRequest(), rollbackPlan: '\u2800' }),
        startedNow(),
        amended({ ...rest, rollbackPlan: '\u2800', testingPlan: '\u200b' }),
        amended({ timeline }),
      );
      expect(doc?.missingFields).toEqual(['rollbackPlan', 'testingPlan']);
      expect(retrospectiveQueueProjection.version).toBe(3);
    });

    it('an amendment updates title and category', () => {
      const doc = docAfter(
        declared(),
        startedNow(),
        amended({
          title: 'Patch OpenSSH and restart sshd',
          emergency: { category: 'regulatory', justification: 'Audit' },
        }),
      );
      expect(doc).toMatchObject({ title: 'Patch OpenSSH and restart sshd', category: 'regulatory' });
    });

    it('the post-implementation review clears post-implementation-review', () => {
      const doc = docAfter(declared(), startedNow(), verified(), ended(), postImplementationReviewed());
      expect(doc?.outstanding).toEqual(['retrospective-approval']);
    });

    it.each(['approve', 'reject'] as const)(
      'a retrospective decision (%s) clears retrospective-approval',
      (decision) => {
        const doc = docAfter(...decidedHistory(decision));
        expect(doc?.outstanding).toEqual([]);
        expect(doc?.open).toBe(true);
      },
    );

    it('an amendment that made the approval void (schema 6) puts retrospective-approval back', () => {
      const doc = docAfter(
        ...decidedHistory(),
        approvalVoidingAmendment({ comment: 'Reviewed in the CAB', at: ENDED_AT }),
      );
      expect(doc).toMatchObject({ decided: false, outstanding: ['retrospective-approval'], open: true });
    });

    it('closing takes it out of the queue (open false)', () => {
      const doc = docAfter(...emergencyHistory('closed'));
      expect(doc).toMatchObject({ open: false, outstanding: [] });
    });
  });

  describe('due date', () => {
    const NOW = new Date(DECLARED_AT);
    it('is the implementation end (a Friday) + 2 business days: Tuesday, same time of day', () => {
      const doc = docAfter(declared(), startedNow(), verified(), ended())!;
      expect(doc).toMatchObject({ implementedAt: ENDED_AT });
      expect(itemOf(doc, NOW).dueAt).toBe(DUE_AT);
    });

    it('follows the configured number of business days, as set when asked (not when projected)', () => {
      const doc = docAfter(declared(), startedNow(), verified(), ended())!;
      expect(itemOf(doc, NOW, 0).dueAt).toBe(ENDED_AT);
      expect(itemOf(doc, NOW, 1).dueAt).toBe('2026-01-12T17:30:00.000Z');
      expect(itemOf(doc, NOW, 5).dueAt).toBe('2026-01-16T17:30:00.000Z');
    });

    it('does not move once the implementation has ended', () => {
      const doc = docAfter(
        declared(),
        startedNow(),
        verified(),
        ended(),
        at(postImplementationReviewed(), '2026-01-12T09:00:00.000Z'),
        at(amended(laterFields()), '2026-01-12T10:00:00.000Z'),
      );
      expect(itemOf(doc!, NOW).dueAt).toBe(DUE_AT);
    });
  });

  describe('events that do not change the document → undefined', () => {
    const open = () => docAfter(declared(), startedNow())!;
    it.each<[string, DomainEventLike]>([
      ['ImplementationStarted', startedNow()],
      ['VerificationRecorded', verified()],
      [
        'ImplementationStepRecorded',
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'apt upgrade' }),
      ],
      [
        'ImplementationIssueRecorded',
        event('ImplementationIssueRecorded', actors.ivan, { description: 'x', severity: 'low' }),
      ],
    ])('%s', (_name, e) => {
      expect(queue.evolve(open(), recordedEvent(changeStream('CHG-001'), e, 999n))).toBeUndefined();
    });

    it('any event of a change without a document', () => {
      expect(queue.evolve(undefined, recordedEvent(changeStream('CHG-001'), ended()))).toBeUndefined();
    });
  });

  describe('toRetrospectiveItem', () => {
    const implemented = () => docAfter(declared(), startedNow(), verified(), ended())!;
    const DUE = Date.parse(DUE_AT);

    it('has the contract fields', () => {
      expect(itemOf(implemented(), new Date(DUE - 1))).toEqual({
        changeId: 'CHG-001',
        title: 'Patch OpenSSH on every node',
        category: 'security',
        declaredAt: DECLARED_AT,
        implementedAt: ENDED_AT,
        outstanding: ['post-implementation-review', 'retrospective-approval'],
        dueAt: DUE_AT,
        overdue: false,
      });
    });

    it('leaves implementedAt out while it is still being implemented, and is not overdue', () => {
      const item = itemOf(docAfter(declared(), startedNow())!, new Date('2030-01-01T00:00:00.000Z'));
      expect(item.implementedAt).toBeUndefined();
      expect(item.dueAt).toBeNull();
      expect(item.overdue).toBe(false);
    });

    it('is overdue only once dueAt has passed and something is outstanding', () => {
      expect(itemOf(implemented(), new Date(DUE - 1)).overdue).toBe(false);
      expect(itemOf(implemented(), new Date(DUE)).overdue).toBe(false);
      expect(itemOf(implemented(), new Date(DUE + 1)).overdue).toBe(true);
    });

    it('one outstanding item is enough to be overdue', () => {
      const doc = docAfter(declared(), startedNow(), verified(), ended(), postImplementationReviewed());
      expect(itemOf(doc!, new Date(DUE + 1)).overdue).toBe(true);
    });

    it('is not overdue after dueAt when nothing is outstanding', () => {
      const doc = docAfter(...decidedHistory());
      expect(itemOf(doc!, new Date(DUE + 86_400_000)).overdue).toBe(false);
    });

    it('a closed change is not overdue', () => {
      const doc = docAfter(...decidedHistory(), event('ChangeClosed', actors.max, {}));
      expect(doc?.open).toBe(false);
      expect(itemOf(doc!, new Date(DUE + 86_400_000)).overdue).toBe(false);
    });
  });

  it('an emergency declared with every field needs no complete-request, and keeps its category', () => {
    const doc = docAfter(
      declared({
        ...normalRequest('high'),
        emergency: { category: 'data-loss-prevention', justification: 'Disk failing' },
      }),
    );
    expect(doc?.category).toBe('data-loss-prevention');
    expect(doc?.missingFields).toEqual([]);
    expect(doc?.outstanding).toEqual(['post-implementation-review', 'retrospective-approval']);
  });
});
