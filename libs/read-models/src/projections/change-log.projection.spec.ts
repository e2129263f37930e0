/**
 * The change log read model against the contract's "Reads" rules: the seed's row words,
 * which day a row carries, who implemented it, and the markdown / CSV renderings.
 */
import type { Actor, ChangeRequestFields, ChangeType, Outcome } from '@changeledger/domain';
import {
  actors,
  allReviewsApproved,
  approvedBy,
  cancelled,
  checklistDone,
  closed,
  completed,
  emergencyRequest,
  event,
  normalRequest,
  postImplementationReviewed,
  retrospectiveDecided,
  reviewed,
  scheduledEvent,
  standardRequest,
  started,
  templateRef,
  verified,
} from '../../../domain/src/change-request/change-request.fixtures';
import {
  type ChangeLogDocument,
  changeLogCsv,
  changeLogMarkdown,
  changeLogProjection,
  toChangeLogRow,
} from './change-log.projection';
import {
  type DomainEventLike,
  at,
  changeStream,
  eventLog,
  project,
  recordedEvent,
  stamp,
  templateStream,
} from './recorded-events.fixtures';

const SUBMITTED_AT = '2026-01-05T23:30:00.000Z';
const STARTED_AT = '2026-01-10T22:05:00.000Z';
const ENDED_AT = '2026-01-11T00:20:00.000Z';

const submission = (
  changeId: string,
  changeType: ChangeType,
  request: ChangeRequestFields,
  by: Actor = actors.alice,
  time = SUBMITTED_AT,
) =>
  at(
    event('ChangeSubmitted', by, {
      changeId,
      changeType,
      request,
      ...(changeType === 'standard' ? { standardTemplate: templateRef } : {}),
    }),
    time,
  );

const requestFor = (type: ChangeType) =>
  type === 'normal' ? normalRequest() : type === 'standard' ? standardRequest() : emergencyRequest();

/** The row of CHG-001 after these events of its stream. */
const rowAfter = (...events: DomainEventLike[]): ChangeLogDocument | undefined =>
  project(changeLogProjection, eventLog().append(changeStream('CHG-001'), ...events)).get('CHG-001');

/** Evolves an existing row by one more event, straight through `evolve`. */
const evolveOnce = (row: ChangeLogDocument, next: DomainEventLike) =>
  changeLogProjection.evolve(row, recordedEvent(changeStream('CHG-001'), next, BigInt(row._position) + 1n));

const normalUntilAwaiting = () => [
  submission('CHG-001', 'normal', normalRequest()),
  ...allReviewsApproved('low'),
];
const normalUntilScheduled = () => [
  ...normalUntilAwaiting(),
  approvedBy(actors.lena, 'low'),
  scheduledEvent(),
  ...checklistDone(),
];
const normalUntilStarted = () => [
  ...normalUntilScheduled(),
  at(started(actors.ivan), STARTED_AT),
  verified(),
];

const rowFields = (row: ChangeLogDocument | undefined) => (row ? toChangeLogRow(row) : undefined);

describe('change log projection', () => {
  describe('documentId', () => {
    it('is the change id of a change stream', () => {
      const e = recordedEvent(changeStream('CHG-042'), submission('CHG-042', 'normal', normalRequest()));
      expect(changeLogProjection.documentId(e)).toBe('CHG-042');
    });

    it('ignores template streams', () => {
      const e = recordedEvent(templateStream('STD-001'), { type: 'StandardTemplateCreated', data: {} });
      expect(changeLogProjection.documentId(e)).toBeUndefined();
    });
  });

  describe('submission', () => {
    it.each<[ChangeType, string, string]>([
      ['normal', 'Normal', 'In review'],
      ['standard', 'Standard', 'Approved'],
      ['emergency', 'Emergency', 'In progress'],
    ])('a %s change gets the type word %s and the status %s', (type, typeWord, statusWord) => {
      const row = rowAfter(submission('CHG-001', type, requestFor(type)));
      expect(rowFields(row)).toEqual({
        date: '2026-01-05',
        changeId: 'CHG-001',
        description: requestFor(type).title,
        type: typeWord,
        status: statusWord,
        implementedBy: '',
      });
    });

    it('dates the row by the UTC day of the submission', () => {
      const row = rowAfter(
        submission('CHG-001', 'normal', normalRequest(), actors.alice, '2026-03-01T00:00:00.000Z'),
      );
      expect(row?.date).toBe('2026-03-01');
      const late = rowAfter(
        submission('CHG-001', 'normal', normalRequest(), actors.alice, '2026-02-28T23:59:59.999Z'),
      );
      expect(late?.date).toBe('2026-02-28');
    });

    it('uses the change id from the submission', () => {
      const e = recordedEvent(changeStream('CHG-007'), submission('CHG-007', 'normal', normalRequest()));
      expect(changeLogProjection.evolve(undefined, e)).toMatchObject({ id: 'CHG-007', changeId: 'CHG-007' });
    });
  });

  describe('status words before implementation ends', () => {
    it('ReviewsCompleted → Pending approval', () => {
      expect(rowAfter(...normalUntilAwaiting())?.status).toBe('Pending approval');
    });

    it('ChangesRequested → Changes requested', () => {
      const row = rowAfter(
        submission('CHG-001', 'normal', normalRequest()),
        reviewed('technical', 'request-changes'),
        event('ChangesRequested', actors.tom, { kind: 'technical', notes: 'needs a rollback test' }),
      );
      expect(row?.status).toBe('Changes requested');
    });

    it('ChangeRejected at review → Rejected', () => {
      const row = rowAfter(
        submission('CHG-001', 'normal', normalRequest()),
        reviewed('security', 'reject'),
        event('ChangeRejected', actors.sid, { stage: 'review', kind: 'security', reason: 'Opens port 22' }),
      );
      expect(row?.status).toBe('Rejected');
    });

    it('ChangeRejected at approval → Rejected', () => {
      const row = rowAfter(
        ...normalUntilAwaiting(),
        event('ChangeRejected', actors.lena, { stage: 'approval', reason: 'Not this quarter' }),
      );
      expect(row?.status).toBe('Rejected');
    });

    it('ChangeApproved → Approved', () => {
      expect(rowAfter(...normalUntilAwaiting(), approvedBy(actors.lena, 'low'))?.status).toBe('Approved');
    });

    it('ChangePreApproved → Approved', () => {
      const row = rowAfter(
        submission('CHG-001', 'standard', standardRequest()),
        event('ChangePreApproved', actors.alice, { templateId: 'STD-001', rule: 'standard-change-template' }),
      );
      expect(rowFields(row)).toMatchObject({ type: 'Standard', status: 'Approved', date: '2026-01-05' });
    });

    it('ChangeScheduled → Scheduled, still dated by the submission day', () => {
      const row = rowAfter(...normalUntilScheduled());
      expect(rowFields(row)).toMatchObject({ status: 'Scheduled', date: '2026-01-05', implementedBy: '' });
    });

    it('ChangeCancelled → Cancelled', () => {
      const row = rowAfter(...normalUntilAwaiting(), approvedBy(actors.lena, 'low'), cancelled('approved'));
      expect(rowFields(row)).toMatchObject({ status: 'Cancelled', date: '2026-01-05', implementedBy: '' });
    });
  });

  describe('amendment', () => {
    it('a new title becomes the description, and the change is back In review', () => {
      const row = rowAfter(
        ...normalUntilAwaiting(),
        event('ChangeAmended', actors.alice, {
          changes: { title: 'Move VM traffic to VLAN 30' },
          previous: { title: 'Move VM traffic to VLAN 20' },
          voidedReviews: ['technical', 'business', 'security'],
          statusBefore: 'awaiting-approval',
          statusAfter: 'in-review',
        }),
      );
      expect(rowFields(row)).toMatchObject({
        description: 'Move VM traffic to VLAN 30',
        status: 'In review',
        date: '2026-01-05',
      });
    });

    it('an amendment without a title keeps the description', () => {
      const row = rowAfter(
        submission('CHG-001', 'normal', normalRequest()),
        reviewed('technical', 'request-changes'),
        event('ChangesRequested', actors.tom, { kind: 'technical', notes: 'more detail' }),
        event('ChangeAmended', actors.alice, {
          changes: { rollbackPlan: 'Restore from the saved config' },
          previous: { rollbackPlan: normalRequest().rollbackPlan },
          voidedReviews: ['technical'],
          statusBefore: 'changes-requested',
          statusAfter: 'in-review',
        }),
      );
      expect(rowFields(row)).toMatchObject({ description: normalRequest().title, status: 'In review' });
    });

    it('an emergency amended after implementation keeps its outcome word', () => {
      const row = rowAfter(
        submission('CHG-001', 'emergency', emergencyRequest(), actors.ivan),
        at(event('ImplementationStarted', actors.ivan, { emergency: true }), SUBMITTED_AT),
        at(completed('rolled-back'), ENDED_AT),
        event('ChangeAmended', actors.ivan, {
          changes: { title: 'Patch OpenSSH (rolled back)' },
          previous: { title: 'Patch OpenSSH on every node' },
          voidedReviews: [],
          statusBefore: 'implemented',
          statusAfter: 'implemented',
        }),
      );
      expect(rowFields(row)).toMatchObject({
        description: 'Patch OpenSSH (rolled back)',
        status: 'Rolled back',
        date: '2026-01-11',
      });
    });
  });

  describe('implementation', () => {
    it('ImplementationStarted → In progress, dated by the start day, implemented by the starter', () => {
      const row = rowAfter(...normalUntilStarted());
      expect(rowFields(row)).toMatchObject({
        status: 'In progress',
        date: '2026-01-10',
        implementedBy: 'Ivan Implementer',
      });
    });

    it.each<[Outcome, string]>([
      ['successful', 'Completed'],
      ['failed', 'Failed'],
      ['rolled-back', 'Rolled back'],
    ])('ImplementationCompleted %s → %s, dated by the end day', (outcome, word) => {
      const row = rowAfter(...normalUntilStarted(), at(completed(outcome), ENDED_AT));
      expect(rowFields(row)).toMatchObject({
        status: word,
        date: '2026-01-11',
        implementedBy: 'Ivan Implementer',
      });
    });

    it.each<[Outcome, string]>([
      ['successful', 'Completed'],
      ['failed', 'Failed'],
      ['rolled-back', 'Rolled back'],
    ])('ChangeClosed keeps the outcome word %s → %s and the end day', (outcome, word) => {
      const row = rowAfter(
        ...normalUntilStarted(),
        at(completed(outcome), ENDED_AT),
        postImplementationReviewed(),
        at(closed(), '2026-01-14T08:00:00.000Z'),
      );
      expect(rowFields(row)).toMatchObject({
        status: word,
        date: '2026-01-11',
        implementedBy: 'Ivan Implementer',
      });
    });

    it('an emergency declared by an implementer is implemented by that implementer', () => {
      const declared = rowAfter(
        submission('CHG-001', 'emergency', emergencyRequest(), actors.ines, '2026-01-09T03:00:00.000Z'),
        at(
          event('ImplementationStarted', actors.ines, { emergency: true, byImplementer: true }),
          '2026-01-09T03:00:00.000Z',
        ),
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'Patched' }),
      );
      expect(rowFields(declared)).toMatchObject({
        type: 'Emergency',
        status: 'In progress',
        date: '2026-01-09',
        implementedBy: 'Ines Implementer',
      });
    });

    it('an emergency declared by a requester is implemented by the first implementer to record work on it', () => {
      const declared = [
        submission('CHG-001', 'emergency', emergencyRequest(), actors.alice, '2026-01-09T03:00:00.000Z'),
        at(
          event('ImplementationStarted', actors.alice, { emergency: true, byImplementer: false }),
          '2026-01-09T03:00:00.000Z',
        ),
      ];
      expect(rowFields(rowAfter(...declared))).toMatchObject({ status: 'In progress', implementedBy: '' });
      for (const work of [
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'Patched' }),
        event('ImplementationIssueRecorded', actors.ivan, { description: 'Slow', severity: 'low' }),
        verified(),
        at(completed(), ENDED_AT),
      ]) {
        const later = event('ImplementationIssueRecorded', actors.ines, {
          description: 'Noted',
          severity: 'low',
        });
        expect(rowFields(rowAfter(...declared, work, later))).toMatchObject({
          implementedBy: 'Ivan Implementer',
        });
      }
    });

    it('an emergency of schema 2 (no byImplementer) keeps its declarer, as it was read then', () => {
      const row = rowAfter(
        submission('CHG-001', 'emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true }),
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'Patched' }),
      );
      expect(rowFields(row)).toMatchObject({ implementedBy: 'Alice Requester' });
    });

    it('an emergency closed after its retrospective stays Completed', () => {
      const row = rowAfter(
        submission('CHG-001', 'emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true, byImplementer: false }),
        verified(),
        at(completed(), ENDED_AT),
        postImplementationReviewed(),
        retrospectiveDecided(),
        closed(),
      );
      expect(rowFields(row)).toMatchObject({
        type: 'Emergency',
        status: 'Completed',
        date: '2026-01-11',
        implementedBy: 'Ivan Implementer', // verified() is Ivan's
      });
    });
  });

  describe('events that do not change the row', () => {
    const inProgress = () => stamp(rowAfter(...normalUntilStarted()), 1000n);

    it.each<[string, DomainEventLike]>([
      ['ReviewRecorded', reviewed('technical')],
      ['ChecklistItemCompleted', event('ChecklistItemCompleted', actors.ivan, { item: 'backups-verified' })],
      [
        'ImplementationStepRecorded',
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'Saved the config' }),
      ],
      [
        'ImplementationIssueRecorded',
        event('ImplementationIssueRecorded', actors.ivan, { description: 'Slow switch', severity: 'low' }),
      ],
      ['VerificationRecorded', verified()],
      ['PostImplementationReviewRecorded', postImplementationReviewed()],
      ['RetrospectiveDecisionRecorded', retrospectiveDecided()],
      ['an unknown (newer) event type', { type: 'SomethingNew', data: { at: ENDED_AT } }],
    ])('%s → undefined', (_name, e) => {
      expect(evolveOnce(inProgress(), e)).toBeUndefined();
    });

    it('an event of a change without a row (no submission seen) → undefined', () => {
      const e = recordedEvent(changeStream('CHG-001'), approvedBy(actors.lena, 'low'));
      expect(changeLogProjection.evolve(undefined, e)).toBeUndefined();
    });
  });

  describe('renderings', () => {
    /** The seed's two example rows, made by events (the implementer is called "[Name]"). */
    const seedRows = () => {
      const name: Actor = { id: 'u-name', name: '[Name]', roles: ['implementer'] };
      const log = eventLog();
      const events = [
        ...log.append(
          changeStream('CHG-001'),
          submission(
            'CHG-001',
            'normal',
            normalRequest('low', { title: 'Network VLAN configuration' }),
            actors.alice,
            '2025-01-14T09:00:00.000Z',
          ),
          ...allReviewsApproved('low'),
          approvedBy(actors.lena, 'low'),
          scheduledEvent(false, name),
          ...checklistDone(),
          at(started(name), '2025-01-19T22:00:00.000Z'),
          verified(),
          at(completed('successful'), '2025-01-20T01:15:00.000Z'),
        ),
        ...log.append(
          changeStream('CHG-002'),
          submission(
            'CHG-002',
            'emergency',
            { ...emergencyRequest(), title: 'Security patch deployment' },
            name,
            '2025-01-19T14:00:00.000Z',
          ),
          at(event('ImplementationStarted', name, { emergency: true }), '2025-01-19T14:00:00.000Z'),
          verified(),
          at(completed('successful'), '2025-01-19T16:30:00.000Z'),
          postImplementationReviewed(),
          retrospectiveDecided(),
          closed(),
        ),
      ];
      const docs = project(changeLogProjection, events);
      return [docs.get('CHG-001')!, docs.get('CHG-002')!].map(toChangeLogRow);
    };

    it('markdown is byte for byte the seed table for its two example rows', () => {
      expect(changeLogMarkdown(seedRows())).toBe(
        '| Date | Change ID | Description | Type | Status | Implemented By |\n' +
          '|------|-----------|-------------|------|--------|----------------|\n' +
          '| 2025-01-20 | CHG-001 | Network VLAN configuration | Normal | Completed | [Name] |\n' +
          '| 2025-01-19 | CHG-002 | Security patch deployment | Emergency | Completed | [Name] |\n',
      );
    });

    it('markdown of no rows is the header and separator', () => {
      expect(changeLogMarkdown([])).toBe(
        '| Date | Change ID | Description | Type | Status | Implemented By |\n' +
          '|------|-----------|-------------|------|--------|----------------|\n',
      );
    });

    const row = (description: string, implementedBy = '') => ({
      date: '2026-01-05',
      changeId: 'CHG-003',
      description,
      type: 'Normal',
      status: 'In review',
      implementedBy,
    });

    it('markdown escapes pipes (and backslashes) and keeps a cell on one line', () => {
      const text = changeLogMarkdown([row('Split a|b \\ c\nnext line')]);
      expect(text.split('\n')[2]).toBe(
        '| 2026-01-05 | CHG-003 | Split a\\|b \\\\ c next line | Normal | In review |  |',
      );
      expect(text.split('\n')).toHaveLength(4);
    });

    it('CSV has a header, CRLF line ends and leaves plain cells unquoted', () => {
      expect(changeLogCsv(seedRows())).toBe(
        'date,changeId,description,type,status,implementedBy\r\n' +
          '2025-01-20,CHG-001,Network VLAN configuration,Normal,Completed,[Name]\r\n' +
          '2025-01-19,CHG-002,Security patch deployment,Emergency,Completed,[Name]\r\n',
      );
    });

    it('CSV quotes cells with commas, quotes or line breaks (RFC 4180)', () => {
      const csv = changeLogCsv([
        row('VLAN 20, 30 and 40', 'Smith, Jo'),
        row('Use the "fast" path'),
        row('two\nlines'),
        row('cr\rlf'),
      ]);
      expect(csv.split('\r\n')).toEqual([
        'date,changeId,description,type,status,implementedBy',
        '2026-01-05,CHG-003,"VLAN 20, 30 and 40",Normal,In review,"Smith, Jo"',
        '2026-01-05,CHG-003,"Use the ""fast"" path",Normal,In review,',
        '2026-01-05,CHG-003,"two\nlines",Normal,In review,',
        '2026-01-05,CHG-003,"cr\rlf",Normal,In review,',
        '',
      ]);
    });

    it('CSV defuses cells a spreadsheet would run as formulas (a leading apostrophe)', () => {
      const csv = changeLogCsv([
        row('=HYPERLINK("http://x","click")', '@SUM(A1)'),
        row('+1-2'),
        row('-rf'),
        row('a=b'),
      ]);
      expect(csv.split('\r\n')).toEqual([
        'date,changeId,description,type,status,implementedBy',
        `2026-01-05,CHG-003,"'=HYPERLINK(""http://x"",""click"")",Normal,In review,'@SUM(A1)`,
        "2026-01-05,CHG-003,'+1-2,Normal,In review,",
        "2026-01-05,CHG-003,'-rf,Normal,In review,",
        '2026-01-05,CHG-003,a=b,Normal,In review,',
        '',
      ]);
    });
  });
});
