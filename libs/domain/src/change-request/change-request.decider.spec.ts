/**
 * Given/when/then tests of the change-request decider.
 *
 * The expectations come from the HTTP contract (`api-contract.md`, "Commands" and "Process
 * rules") and the seed process, written down here independently of the decider's own
 * COMMAND_POLICIES table, so that a wrong policy entry makes a test fail.
 */
import { type Actor, actorRef, type Role } from '../shared/actor';
import { fold } from '../shared/decider';
import { DomainError, type DomainErrorCode } from '../shared/domain-error';
import type { StandardTemplateEvent } from '../standard-template/standard-template.events';
import type { StandardTemplateState } from '../standard-template/standard-template.state';
import type { ChangeRequestCommand, ChangeRequestCommandType, SubmitChange } from './change-request.commands';
import { changeRequestDecider, globMatches } from './change-request.decider';
import { toChangeView } from './change-request.view';
import type { ChangeRequestEvent, ChangeRequestEventType } from './change-request.events';
import {
  BASE_CHECKLIST,
  CHANGE_ID,
  EMERGENCY_STATUSES,
  type EmergencyStatus,
  NORMAL_STATUSES,
  NOW,
  type NormalStatus,
  PLANNED_END,
  PLANNED_START,
  STANDARD_STATUSES,
  T0,
  type StandardStatus,
  TEMPLATE_ID,
  activeTemplate,
  actors,
  checklistDone,
  criteriaFor,
  emergencyHistory,
  emergencyRequest,
  event,
  everyRoleExcept,
  incompleteEmergencyRequest,
  laterFields,
  normalHistory,
  normalRequest,
  postImplementationReviewed,
  retiredTemplate,
  retrospectiveDecided,
  reviewed,
  reviewerFor,
  scheduledEvent,
  standardHistory,
  standardRequest,
  TEMPLATE_PROCEDURE,
  started,
  submitted,
  templateRef,
  templateCreated,
  templateState,
  verified,
  withRoles,
} from './change-request.fixtures';
import {
  type ChangeRequestFields,
  type ChangeStatus,
  LATER_FIELDS,
  type ReviewKind,
  type RiskLevel,
} from './change-request.types';

// ---------------------------------------------------------------------------------------------
// given / when / then

interface Context {
  actor: Actor;
  now?: string;
  template?: StandardTemplateState;
}

type Outcome =
  | { events: { type: string; data: unknown }[] }
  | { error: { code: DomainErrorCode; detail: string; fields?: string[]; rule?: string } };

const stripped = (events: readonly ChangeRequestEvent[]) => events.map(({ type, data }) => ({ type, data }));

const given = (history: readonly ChangeRequestEvent[]) => {
  const state = fold(changeRequestDecider.evolve, changeRequestDecider.initialState(), history);
  return {
    state,
    when: (command: ChangeRequestCommand, context: Context) => {
      const attempt = (): Outcome => {
        try {
          return { events: stripped(changeRequestDecider.decide(command, state, { now: NOW, ...context })) };
        } catch (error) {
          if (error instanceof DomainError) {
            const fields = error.errors?.map((e) => e.field);
            return {
              error: {
                code: error.code,
                detail: error.detail,
                ...(fields ? { fields } : {}),
                ...(error.rule ? { rule: error.rule } : {}),
              },
            };
          }
          throw error;
        }
      };
      return {
        /** The exact events (type and data). */
        then: (expected: readonly ChangeRequestEvent[]) => {
          expect(attempt()).toEqual({ events: stripped(expected) });
        },
        /** Only the event types, in order. */
        thenTypes: (types: readonly ChangeRequestEventType[]) => {
          const outcome = attempt();
          expect('events' in outcome ? { types: outcome.events.map((e) => e.type) } : outcome).toEqual({
            types,
          });
        },
        /**
         * Refused with this code (and a detail matching `detail`, if given; naming exactly these
         * fields, if given, or none for `[]`; by this rule, the `rule` clients are told, if given).
         */
        thenError: (code: DomainErrorCode, detail?: RegExp, fields?: readonly string[], rule?: string) => {
          const outcome = attempt();
          expect(outcome).toMatchObject({
            error: {
              code,
              ...(detail ? { detail: expect.stringMatching(detail) } : {}),
              ...(rule ? { rule } : {}),
            },
          });
          if (fields && 'error' in outcome) expect(outcome.error.fields ?? []).toEqual(fields);
        },
        /** The events, folded onto the history, for follow-up checks. */
        events: (): ChangeRequestEvent[] =>
          changeRequestDecider.decide(command, state, { now: NOW, ...context }),
      };
    },
  };
};

/** An event as the command under test should stamp it: at NOW. */
const expected = <T extends ChangeRequestEventType>(
  type: T,
  by: Actor,
  data: Parameters<typeof event<T>>[2],
): ChangeRequestEvent => event(type, by, data, NOW);

// ---------------------------------------------------------------------------------------------
// The contract's command table, independently of the decider

type Kind = 'normal' | 'emergency' | 'standard';
type ActionableType = Exclude<ChangeRequestCommandType, 'SubmitChange'>;
type Actionable = Exclude<ChangeRequestCommand, SubmitChange>;

const historyOf = (kind: Kind, status: ChangeStatus): ChangeRequestEvent[] =>
  kind === 'normal'
    ? normalHistory(status as NormalStatus)
    : kind === 'emergency'
      ? emergencyHistory(status as EmergencyStatus)
      : standardHistory(status as StandardStatus);

const STATUSES_BY_KIND: Record<Kind, readonly ChangeStatus[]> = {
  normal: NORMAL_STATUSES,
  emergency: EMERGENCY_STATUSES,
  standard: STANDARD_STATUSES,
};

/**
 * "any status before `in-progress`" (cancel): the statuses a change passes through before its
 * implementation starts. `rejected` is an end state, not a step towards `in-progress`, so it is
 * not among them (contract ambiguity, decided this way).
 */
const BEFORE_IN_PROGRESS: readonly ChangeStatus[] = [
  'in-review',
  'changes-requested',
  'awaiting-approval',
  'approved',
  'scheduled',
];
/** "emergency: any status before `closed`": an emergency change lives in in-progress → implemented → closed. */
const EMERGENCY_BEFORE_CLOSED: readonly ChangeStatus[] = ['in-progress', 'implemented'];

interface Row {
  command: Actionable;
  /** Holds the role the command needs and is neither the requester nor the approver (unless the row needs the requester). */
  actor: Actor;
  /** The roles the contract names; an actor with every other role (and not the requester) gets FORBIDDEN. */
  roles: readonly Role[] | 'original-requester';
  allowedIn: (kind: Kind) => readonly ChangeStatus[];
  emits: readonly ChangeRequestEventType[];
  /** Prerequisites added to the history so that an allowed command can go through. */
  prerequisites?: (kind: Kind, status: ChangeStatus) => ChangeRequestEvent[];
}

const ROWS: Record<ActionableType, Row> = {
  AmendChange: {
    command: { type: 'AmendChange', fields: { title: 'Move VM and backup traffic to VLAN 20' } },
    actor: actors.alice,
    roles: 'original-requester',
    allowedIn: (kind) =>
      kind === 'emergency'
        ? EMERGENCY_BEFORE_CLOSED
        : ['in-review', 'changes-requested', 'awaiting-approval'],
    emits: ['ChangeAmended'],
  },
  RecordReview: {
    command: {
      type: 'RecordReview',
      kind: 'technical',
      verdict: 'approve',
      notes: 'Feasible',
      criteria: criteriaFor('technical'),
    },
    actor: actors.tom,
    roles: ['technical-reviewer'],
    allowedIn: () => ['in-review'],
    emits: ['ReviewRecorded'],
  },
  ApproveChange: {
    command: { type: 'ApproveChange', comment: 'Go ahead' },
    actor: actors.lena,
    roles: ['infrastructure-lead', 'management'],
    allowedIn: () => ['awaiting-approval'],
    emits: ['ChangeApproved'],
  },
  RejectChange: {
    command: { type: 'RejectChange', reason: 'Too risky this week' },
    actor: actors.lena,
    roles: ['infrastructure-lead', 'management'],
    allowedIn: () => ['awaiting-approval'],
    emits: ['ChangeRejected'],
  },
  ScheduleChange: {
    command: {
      type: 'ScheduleChange',
      plannedStart: '2026-01-12T22:00:00.000Z',
      plannedEnd: '2026-01-12T23:30:00.000Z',
      maintenanceWindow: false,
    },
    actor: actors.ines,
    roles: ['implementer', 'infrastructure-lead'],
    allowedIn: () => ['approved', 'scheduled'],
    emits: ['ChangeScheduled'],
  },
  CompleteChecklistItem: {
    command: { type: 'CompleteChecklistItem', item: 'maintenance-window-scheduled', note: 'Sunday 22:00' },
    actor: actors.ines,
    roles: ['implementer'],
    allowedIn: () => ['approved', 'scheduled', 'in-progress'],
    emits: ['ChecklistItemCompleted'],
  },
  StartImplementation: {
    command: { type: 'StartImplementation' },
    actor: actors.ines,
    roles: ['implementer'],
    allowedIn: () => ['scheduled'],
    emits: ['ImplementationStarted'],
  },
  RecordImplementationStep: {
    command: { type: 'RecordImplementationStep', description: 'Saved the switch configuration' },
    actor: actors.ines,
    roles: ['implementer'],
    allowedIn: () => ['in-progress'],
    emits: ['ImplementationStepRecorded'],
  },
  RecordImplementationIssue: {
    command: { type: 'RecordImplementationIssue', description: 'One VM lost its lease', severity: 'low' },
    actor: actors.ines,
    roles: ['implementer'],
    allowedIn: () => ['in-progress', 'implemented'],
    emits: ['ImplementationIssueRecorded'],
  },
  RecordVerification: {
    command: {
      type: 'RecordVerification',
      functionalityTested: true,
      systemHealthVerified: true,
      logsChecked: true,
    },
    actor: actors.ines,
    roles: ['implementer'],
    allowedIn: () => ['in-progress'],
    emits: ['VerificationRecorded'],
  },
  CompleteImplementation: {
    command: { type: 'CompleteImplementation', outcome: 'successful', notes: 'All VMs reachable' },
    actor: actors.ines,
    roles: ['implementer'],
    allowedIn: () => ['in-progress'],
    emits: ['ImplementationCompleted'],
  },
  RecordPostImplementationReview: {
    command: {
      type: 'RecordPostImplementationReview',
      documentationUpdated: true,
      lessonsLearned: 'Keep console access open',
      improvements: ['Script the bridge move'],
    },
    actor: actors.ines,
    roles: ['implementer', 'infrastructure-lead', 'management'],
    allowedIn: () => ['implemented'],
    emits: ['PostImplementationReviewRecorded'],
  },
  RecordRetrospectiveDecision: {
    command: { type: 'RecordRetrospectiveDecision', decision: 'approve', comment: 'The outage justified it' },
    actor: actors.max,
    roles: ['management'],
    allowedIn: (kind) => (kind === 'emergency' ? ['implemented'] : []),
    emits: ['RetrospectiveDecisionRecorded'],
    prerequisites: (_kind, status) => (status === 'implemented' ? [postImplementationReviewed()] : []),
  },
  CloseChange: {
    command: { type: 'CloseChange' },
    actor: actors.lena,
    roles: ['implementer', 'infrastructure-lead', 'management'],
    allowedIn: () => ['implemented'],
    emits: ['ChangeClosed'],
    prerequisites: (kind, status) =>
      status !== 'implemented'
        ? []
        : kind === 'emergency'
          ? [postImplementationReviewed(), retrospectiveDecided()]
          : [postImplementationReviewed()],
  },
  CancelChange: {
    command: { type: 'CancelChange', reason: 'Superseded' },
    actor: actors.lena,
    roles: ['infrastructure-lead', 'management'],
    allowedIn: () => BEFORE_IN_PROGRESS,
    emits: ['ChangeCancelled'],
  },
};

const ROW_ENTRIES = Object.entries(ROWS) as [ActionableType, Row][];

const prepared = (row: Row, kind: Kind, status: ChangeStatus) => [
  ...historyOf(kind, status),
  ...(row.prerequisites?.(kind, status) ?? []),
];

/** A kind and status in which the contract allows the command. */
const allowedSetting = (row: Row): { kind: Kind; status: ChangeStatus } => {
  for (const kind of ['normal', 'emergency', 'standard'] as const) {
    const status = STATUSES_BY_KIND[kind].find((s) => row.allowedIn(kind).includes(s));
    if (status) return { kind, status };
  }
  throw new Error('the command is allowed nowhere');
};

// ---------------------------------------------------------------------------------------------

describe('change-request decider', () => {
  describe('fixtures', () => {
    it.each([
      ...NORMAL_STATUSES.map((s) => ['normal', s] as const),
      ...EMERGENCY_STATUSES.map((s) => ['emergency', s] as const),
      ...STANDARD_STATUSES.map((s) => ['standard', s] as const),
    ])('the %s history for %s reaches that status', (kind, status) => {
      const { state } = given(historyOf(kind, status));
      expect(state).toMatchObject({ exists: true, id: CHANGE_ID, type: kind, status });
    });
  });

  describe('status table: every command in every status (contract "Commands")', () => {
    const cases = ROW_ENTRIES.flatMap(([type, row]) =>
      (['normal', 'emergency', 'standard'] as const).flatMap((kind) =>
        STATUSES_BY_KIND[kind].map((status) => {
          const allowed = row.allowedIn(kind).includes(status);
          return {
            title: `${type} on a ${kind} change in ${status} → ${allowed ? row.emits.join(' + ') : 'INVALID_STATE'}`,
            type,
            row,
            kind,
            status,
            allowed,
          };
        }),
      ),
    );

    it.each(cases)('$title', ({ row, kind, status, allowed }) => {
      const when = given(prepared(row, kind, status)).when(row.command, { actor: row.actor });
      if (allowed) when.thenTypes(row.emits);
      else
        when.thenError(
          'INVALID_STATE',
          new RegExp(`^${row.command.type} is not allowed in status ${status} `),
        );
    });

    it.each([
      ...NORMAL_STATUSES.map((s) => ['normal', s] as const),
      ...EMERGENCY_STATUSES.map((s) => ['emergency', s] as const),
      ...STANDARD_STATUSES.map((s) => ['standard', s] as const),
    ])('SubmitChange onto an existing %s change in %s → INVALID_STATE', (kind, status) => {
      given(historyOf(kind, status))
        .when(
          { type: 'SubmitChange', changeId: CHANGE_ID, changeType: 'normal', fields: normalRequest() },
          { actor: actors.rita },
        )
        .thenError('INVALID_STATE');
    });
  });

  describe('each command, where allowed, records exactly these events', () => {
    const ines = actors.ines;
    it.each<[string, ChangeRequestEvent[], Actionable, Actor, ChangeRequestEvent[]]>([
      [
        'AmendChange (normal, in review)',
        normalHistory('in-review'),
        { type: 'AmendChange', fields: { priority: 'high' } },
        actors.alice,
        [
          expected('ChangeAmended', actors.alice, {
            changes: { priority: 'high' },
            previous: { priority: 'medium' },
            voidedReviews: [],
            statusBefore: 'in-review',
            statusAfter: 'in-review',
          }),
        ],
      ],
      [
        'RecordReview',
        normalHistory('in-review'),
        ROWS.RecordReview.command,
        actors.tom,
        [
          expected('ReviewRecorded', actors.tom, {
            kind: 'technical',
            verdict: 'approve',
            notes: 'Feasible',
            criteria: criteriaFor('technical'),
          }),
        ],
      ],
      [
        'ApproveChange',
        normalHistory('awaiting-approval'),
        ROWS.ApproveChange.command,
        actors.lena,
        [
          expected('ChangeApproved', actors.lena, {
            level: 'infrastructure-lead',
            riskLevel: 'low',
            rule: 'normal-change-needs-infrastructure-lead',
            comment: 'Go ahead',
          }),
        ],
      ],
      [
        'RejectChange',
        normalHistory('awaiting-approval'),
        ROWS.RejectChange.command,
        actors.lena,
        [
          expected('ChangeRejected', actors.lena, {
            stage: 'approval',
            level: 'infrastructure-lead',
            riskLevel: 'low',
            rule: 'normal-change-needs-infrastructure-lead',
            reason: 'Too risky this week',
          }),
        ],
      ],
      [
        'ScheduleChange (first time)',
        normalHistory('approved'),
        ROWS.ScheduleChange.command,
        ines,
        [
          expected('ChangeScheduled', ines, {
            plannedStart: '2026-01-12T22:00:00.000Z',
            plannedEnd: '2026-01-12T23:30:00.000Z',
            maintenanceWindow: false,
            rescheduled: false,
          }),
        ],
      ],
      [
        'ScheduleChange (again)',
        normalHistory('scheduled'),
        ROWS.ScheduleChange.command,
        actors.lena,
        [
          expected('ChangeScheduled', actors.lena, {
            plannedStart: '2026-01-12T22:00:00.000Z',
            plannedEnd: '2026-01-12T23:30:00.000Z',
            maintenanceWindow: false,
            rescheduled: true,
            previous: { plannedStart: PLANNED_START, plannedEnd: PLANNED_END, maintenanceWindow: false },
          }),
        ],
      ],
      [
        'CompleteChecklistItem',
        normalHistory('approved'),
        ROWS.CompleteChecklistItem.command,
        ines,
        [
          expected('ChecklistItemCompleted', ines, {
            item: 'maintenance-window-scheduled',
            note: 'Sunday 22:00',
          }),
        ],
      ],
      [
        'CompleteChecklistItem (ticked again: confirmed anew)',
        normalHistory('scheduled'),
        { type: 'CompleteChecklistItem', item: 'backups-verified' },
        ines,
        [
          expected('ChecklistItemCompleted', ines, {
            item: 'backups-verified',
            previous: { by: actorRef(actors.ivan), at: T0 }, // who ticked it before
          }),
        ],
      ],
      [
        'StartImplementation',
        normalHistory('scheduled'),
        ROWS.StartImplementation.command,
        ines,
        [
          expected('ImplementationStarted', ines, {
            emergency: false,
            scheduledStart: PLANNED_START,
            scheduledEnd: PLANNED_END,
          }),
        ],
      ],
      [
        'RecordImplementationStep (numbered in order)',
        [
          ...normalHistory('in-progress'),
          event('ImplementationStepRecorded', ines, { sequence: 1, description: 'Saved the configuration' }),
        ],
        { type: 'RecordImplementationStep', description: 'Added VLAN 20' },
        ines,
        [expected('ImplementationStepRecorded', ines, { sequence: 2, description: 'Added VLAN 20' })],
      ],
      [
        'RecordImplementationIssue (after completion)',
        normalHistory('implemented'),
        ROWS.RecordImplementationIssue.command,
        ines,
        [
          expected('ImplementationIssueRecorded', ines, {
            description: 'One VM lost its lease',
            severity: 'low',
          }),
        ],
      ],
      [
        'RecordVerification (failing)',
        normalHistory('in-progress'),
        {
          type: 'RecordVerification',
          functionalityTested: true,
          systemHealthVerified: true,
          logsChecked: false,
          notes: 'x',
        },
        ines,
        [
          expected('VerificationRecorded', ines, {
            functionalityTested: true,
            systemHealthVerified: true,
            logsChecked: false,
            passed: false,
            notes: 'x',
            // the passing one it replaces (by Ivan): a successful outcome no longer rests on it
            previous: { passed: true, by: actorRef(actors.ivan), at: T0 },
          }),
        ],
      ],
      [
        'RecordVerification (the first)',
        [...normalHistory('scheduled'), started()],
        ROWS.RecordVerification.command,
        ines,
        [
          expected('VerificationRecorded', ines, {
            functionalityTested: true,
            systemHealthVerified: true,
            logsChecked: true,
            passed: true,
          }),
        ],
      ],
      [
        'CompleteImplementation',
        normalHistory('in-progress'),
        ROWS.CompleteImplementation.command,
        ines,
        [expected('ImplementationCompleted', ines, { outcome: 'successful', notes: 'All VMs reachable' })],
      ],
      [
        'RecordPostImplementationReview',
        normalHistory('implemented'),
        {
          type: 'RecordPostImplementationReview',
          documentationUpdated: true,
          lessonsLearned: 'Keep console access open',
          improvements: ['Script the bridge move'],
          issues: 'The bridge flapped twice',
        },
        actors.max,
        [
          expected('PostImplementationReviewRecorded', actors.max, {
            documentationUpdated: true,
            lessonsLearned: 'Keep console access open',
            improvements: ['Script the bridge move'],
            issues: 'The bridge flapped twice',
          }),
        ],
      ],
      [
        'RecordRetrospectiveDecision',
        [...emergencyHistory('implemented'), postImplementationReviewed()],
        { type: 'RecordRetrospectiveDecision', decision: 'reject', comment: 'Could have waited' },
        actors.max,
        [
          expected('RetrospectiveDecisionRecorded', actors.max, {
            decision: 'reject',
            comment: 'Could have waited',
            rule: 'emergency-needs-retrospective-approval-by-management',
          }),
        ],
      ],
      [
        'CloseChange',
        [...normalHistory('implemented'), postImplementationReviewed()],
        ROWS.CloseChange.command,
        ines,
        [expected('ChangeClosed', ines, { rule: 'close-needs-post-implementation-review' })],
      ],
      [
        'CancelChange',
        normalHistory('scheduled'),
        ROWS.CancelChange.command,
        actors.max,
        [expected('ChangeCancelled', actors.max, { reason: 'Superseded', statusBefore: 'scheduled' })],
      ],
    ])('%s', (_name, history, command, actor, events) => {
      given(history).when(command, { actor }).then(events);
    });
  });

  describe('NOT_FOUND: a command on a change that does not exist', () => {
    it.each(ROW_ENTRIES)('%s', (_type, row) => {
      given([]).when(row.command, { actor: row.actor }).thenError('NOT_FOUND');
    });
  });

  describe('FORBIDDEN: the actor lacks the role the command needs', () => {
    it.each(ROW_ENTRIES)('%s by someone with every other role', (_type, row) => {
      const { kind, status } = allowedSetting(row);
      const actor = row.roles === 'original-requester' ? everyRoleExcept() : everyRoleExcept(...row.roles);
      // Sanity: the right actor would get through here.
      given(prepared(row, kind, status))
        .when(row.command, { actor: row.actor })
        .thenTypes(row.emits);
      given(prepared(row, kind, status))
        .when(row.command, { actor })
        .thenError('FORBIDDEN');
    });

    it.each([
      ['an auditor', actors.audrey],
      ['a different reviewer', actors.bea],
    ])('RecordReview by %s', (_name, actor) => {
      given(normalHistory('in-review')).when(ROWS.RecordReview.command, { actor }).thenError('FORBIDDEN');
    });

    it('RecordReview of another kind by the requester who is a reviewer: FORBIDDEN, not SoD', () => {
      // the role is missing whoever asks; segregation of duties is only the next question
      given(normalHistory('in-review'))
        .when(ROWS.RecordReview.command, { actor: withRoles(actors.alice, 'requester', 'security-reviewer') })
        .thenError('FORBIDDEN', /technical review needs the role technical-reviewer/);
    });

    it.each<[string, Actor]>([
      ['normal by a non-requester', everyRoleExcept('requester')],
      ['standard by a non-requester', everyRoleExcept('requester')],
      ['emergency by neither requester nor implementer', everyRoleExcept('requester', 'implementer')],
    ])('SubmitChange %s', (name, actor) => {
      const changeType = name.split(' ')[0] as 'normal' | 'standard' | 'emergency';
      const fields =
        changeType === 'emergency'
          ? emergencyRequest()
          : changeType === 'standard'
            ? standardRequest()
            : normalRequest();
      given([])
        .when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType,
            fields,
            ...(changeType === 'standard' ? { standardTemplateId: TEMPLATE_ID } : {}),
          },
          { actor, template: activeTemplate() },
        )
        .thenError('FORBIDDEN');
    });
  });

  describe('submission', () => {
    it('a normal change → ChangeSubmitted (in review)', () => {
      const events = given([])
        .when(
          { type: 'SubmitChange', changeId: CHANGE_ID, changeType: 'normal', fields: normalRequest() },
          { actor: actors.alice },
        )
        .events();
      expect(stripped(events)).toEqual(
        stripped([
          expected('ChangeSubmitted', actors.alice, {
            changeId: CHANGE_ID,
            changeType: 'normal',
            request: normalRequest(),
          }),
        ]),
      );
      expect(given(events).state.status).toBe('in-review');
    });

    it('a standard change → ChangeSubmitted + ChangePreApproved (approved, no person approves)', () => {
      const when = given([]).when(
        {
          type: 'SubmitChange',
          changeId: CHANGE_ID,
          changeType: 'standard',
          fields: standardRequest(),
          standardTemplateId: TEMPLATE_ID,
        },
        { actor: actors.alice, template: activeTemplate() },
      );
      when.then([
        expected('ChangeSubmitted', actors.alice, {
          changeId: CHANGE_ID,
          changeType: 'standard',
          request: standardRequest(),
          standardTemplate: templateRef,
        }),
        expected('ChangePreApproved', actors.alice, {
          templateId: TEMPLATE_ID,
          rule: 'standard-change-template',
        }),
      ]);
      const state = given(when.events()).state;
      expect(state.status).toBe('approved');
      expect(state.approval).toMatchObject({ by: null, level: 'standard-template' });
    });

    it.each<[string, StandardTemplateState | undefined, string]>([
      ['a retired template', retiredTemplate(), TEMPLATE_ID],
      ['an unknown template', undefined, 'STD-404'],
      ['a template other than the one named', activeTemplate(), 'STD-002'],
      ['a template that never existed (empty state)', templateState([]), TEMPLATE_ID],
    ])('a standard change naming %s → RULE_VIOLATION', (_name, template, standardTemplateId) => {
      given([])
        .when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType: 'standard',
            fields: standardRequest(),
            standardTemplateId,
          },
          { actor: actors.alice, template },
        )
        .thenError('RULE_VIOLATION', undefined, undefined, 'standard-template-active');
    });

    it.each<RiskLevel>(['medium', 'high'])('a standard change of %s risk → RULE_VIOLATION', (risk) => {
      given([])
        .when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType: 'standard',
            fields: standardRequest(risk),
            standardTemplateId: TEMPLATE_ID,
          },
          { actor: actors.alice, template: activeTemplate() },
        )
        .thenError('RULE_VIOLATION', /low risk/);
    });

    describe("a standard change's systems and its template's scope (pve-node-01, pve-node-02)", () => {
      const submitStandard = (systemsAffected: string[], template = activeTemplate()) =>
        given([]).when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType: 'standard',
            fields: { ...standardRequest(), systemsAffected },
            standardTemplateId: TEMPLATE_ID,
          },
          { actor: actors.alice, template },
        );

      it.each([[['pve-node-01']], [['pve-node-02', 'PVE-Node-01']]])(
        'within it %j → pre-approved',
        (systems) => {
          expect(
            submitStandard(systems)
              .events()
              .map((e) => e.type),
          ).toEqual(['ChangeSubmitted', 'ChangePreApproved']);
        },
      );

      it('a system outside it → RULE_VIOLATION naming it, nothing recorded', () => {
        submitStandard(['pve-node-01', 'ceph-osd-3', 'core-switch']).thenError(
          'RULE_VIOLATION',
          /covers pve-node-01, pve-node-02; not ceph-osd-3, core-switch/,
        );
      });

      it.each<[string, string, boolean]>([
        ['pve-node-*', 'pve-node-07', true],
        ['pve-node-*', 'pve-node-', true],
        ['*-core', 'switch-core', true],
        ['a*b*c', 'abc', true],
        ['a*b*c', 'axxbyyc', true],
        ['a*b*c', 'acb', false],
        ['ab*b', 'ab', false],
        ['*', '', true],
        ['pve1', 'pve12', false],
        // a * stands for part of one name: not for spaces, commas or semicolons
        ['pve-node-*', 'pve-node-03, prod-db-01', false],
        ['pve-node-*', 'pve-node-03;prod-db-01', false],
        ['pve-node-*', 'pve-node-1 and the database cluster', false],
        ['*-core', 'db, switch-core', false],
        ['a*b*c', 'a b c', false],
        ['rack 3 node-*', 'rack 3 node-7', true],
      ])('globMatches(%j, %j) is %s', (pattern, text, matches) => {
        expect(globMatches(pattern, text)).toBe(matches);
      });

      // A regular expression of many .* backtracks for hours on such a near miss: the test's
      // time-out would end it.
      it('a near miss against a pattern of many * is a plain no', () => {
        expect(globMatches(`*${'a*'.repeat(200)}b`, 'a'.repeat(500))).toBe(false);
      });

      const templateWithScope = (systemsScope: string[]) => {
        const created = templateCreated();
        return templateState([
          { ...created, data: { ...created.data, systemsScope } } as StandardTemplateEvent,
        ]);
      };

      it('a scope entry with * covers the names it matches, and only those', () => {
        const template = templateWithScope(['pve-node-*', 'vm-1.2']);
        expect(submitStandard(['pve-node-07', 'PVE-NODE-1', 'vm-1.2'], template).events()).toHaveLength(2);
        // the rest of a name is literal: "." is a dot, not any character
        submitStandard(['vm-1x2'], template).thenError('RULE_VIOLATION', /not vm-1x2/);
        submitStandard(['old-pve-node-1'], template).thenError('RULE_VIOLATION', /not old-pve-node-1/);
        // several systems, or more than one, written as one name: not pre-approved
        submitStandard(['pve-node-03, prod-db-01'], template).thenError(
          'RULE_VIOLATION',
          /not pve-node-03, prod-db-01/,
        );
      });

      it('spaces or zero-width characters around a scope entry or a system name do not matter, as they do not when the template is created', () => {
        const template = templateWithScope([' pve-node-01 ', 'vm-* ', 'ceph-01\u200b']);
        expect(
          submitStandard(['pve-node-01', ' vm-7', 'PVE-NODE-01 ', '\u200bCEPH-01'], template).events(),
        ).toHaveLength(2);
        submitStandard(['pve-node-02'], template).thenError('RULE_VIOLATION', /not pve-node-02/);
      });

      it('a scope entry that names no systems (a template stored before such were refused) covers none', () => {
        const template = templateWithScope(['*', '*-*', '\u200b*db*\u200b', 'pve-node-01']);
        expect(submitStandard(['pve-node-01'], template).events()).toHaveLength(2);
        submitStandard(['core-db-prod'], template).thenError('RULE_VIOLATION', /not core-db-prod/);
      });
    });

    describe("a standard change's plan and its template's procedure (Clone the golden image; Set resources; Start and register in monitoring)", () => {
      const submitPlan = (implementationPlan: string[]) =>
        given([]).when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType: 'standard',
            fields: { ...standardRequest(), implementationPlan },
            standardTemplateId: TEMPLATE_ID,
          },
          { actor: actors.alice, template: activeTemplate() },
        );

      it("the procedure, spaces and zero-width characters aside → pre-approved, with the template's steps as its plan", () => {
        expect(submitPlan([...TEMPLATE_PROCEDURE]).events()).toHaveLength(2);
        const spaced = [
          '  Clone the golden\nimage ',
          'Set\u200b resources',
          'Start and register  in monitoring',
        ];
        const [submittedEvent] = submitPlan(spaced).events();
        // stored as the template has them, not as sent (a line break is a command in a shell)
        expect((submittedEvent.data as { request: ChangeRequestFields }).request.implementationPlan).toEqual(
          TEMPLATE_PROCEDURE,
        );
      });

      it.each<[string, string[], RegExp]>([
        [
          'another plan (the template as a pass for any work)',
          ['Destroy and recreate the Ceph OSDs', 'Move vmbr0 to VLAN 20'],
          /step 1 of STD-001's procedure is "Clone the golden image"/,
        ],
        [
          'a step changed',
          ['Clone the golden image', 'Set resources to 64 cores', 'Start and register in monitoring'],
          /step 2 of STD-001's procedure is "Set resources"/,
        ],
        [
          'a step of its own added',
          [...TEMPLATE_PROCEDURE, 'Open port 22 to the world'],
          /the plan has 4 steps, the procedure of STD-001 3/,
        ],
        [
          'a step left out',
          ['Clone the golden image', 'Set resources'],
          /step 3 of STD-001's procedure is "Start and register in monitoring", and the plan stops at step 2/,
        ],
        ['the steps in another order', [...TEMPLATE_PROCEDURE].reverse(), /step 1 of STD-001's procedure/],
        [
          'a step in other case (another command)',
          ['clone the golden image', 'Set resources', 'Start and register in monitoring'],
          /step 1/,
        ],
      ])(
        '%s → RULE_VIOLATION standard-change-follows-template-procedure, nothing recorded',
        (_name, plan, detail) => {
          submitPlan(plan).thenError(
            'RULE_VIOLATION',
            detail,
            undefined,
            'standard-change-follows-template-procedure',
          );
        },
      );

      it.each([
        ['a blank step', ['Clone the golden image', ' \u200b ']],
        ['a step with a control character', ['Clone the golden image', 'Set\u000bresources']],
      ])(
        'a template stored with %s (before such text was refused) → RULE_VIOLATION: retire it',
        (_name, procedure) => {
          const created = templateCreated();
          const template = templateState([
            { ...created, data: { ...created.data, procedure } } as StandardTemplateEvent,
          ]);
          given([])
            .when(
              {
                type: 'SubmitChange',
                changeId: CHANGE_ID,
                changeType: 'standard',
                fields: {
                  ...standardRequest(),
                  implementationPlan: ['Clone the golden image', 'Set resources'],
                },
                standardTemplateId: TEMPLATE_ID,
              },
              { actor: actors.alice, template },
            )
            .thenError(
              'RULE_VIOLATION',
              /step 2 of standard template STD-001's procedure .* retire the template/,
              undefined,
              'standard-template-procedure-usable',
            );
        },
      );

      it('quotes at most 200 characters of a long step', () => {
        const created = templateCreated();
        const long = 'x'.repeat(20_000);
        const template = templateState([
          { ...created, data: { ...created.data, procedure: [long] } } as StandardTemplateEvent,
        ]);
        const error = given([]).when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType: 'standard',
            fields: { ...standardRequest(), implementationPlan: ['y'] },
            standardTemplateId: TEMPLATE_ID,
          },
          { actor: actors.alice, template },
        );
        error.thenError('RULE_VIOLATION', new RegExp(`"${'x'.repeat(199)}…"$`));
      });
    });

    it('a standard change without a template id → VALIDATION_FAILED', () => {
      given([])
        .when(
          { type: 'SubmitChange', changeId: CHANGE_ID, changeType: 'standard', fields: standardRequest() },
          { actor: actors.alice, template: activeTemplate() },
        )
        .thenError('VALIDATION_FAILED', undefined, ['standardTemplateId']);
    });

    it.each<[string, Actor, boolean]>([
      ['a requester', actors.alice, false],
      ['an implementer', actors.ivan, true],
    ])(
      'an emergency change by %s → ChangeSubmitted + ImplementationStarted (in progress), saying whether the declarer implements',
      (_name, actor, byImplementer) => {
        const when = given([]).when(
          { type: 'SubmitChange', changeId: CHANGE_ID, changeType: 'emergency', fields: emergencyRequest() },
          { actor },
        );
        when.then([
          expected('ChangeSubmitted', actor, {
            changeId: CHANGE_ID,
            changeType: 'emergency',
            request: emergencyRequest(),
          }),
          expected('ImplementationStarted', actor, { emergency: true, byImplementer }),
        ]);
        expect(given(when.events()).state.status).toBe('in-progress');
      },
    );

    it('an emergency: no checklist item is required (it never starts); approved by its retrospective approval', () => {
      const view = (events: ChangeRequestEvent[]) => toChangeView(given(events).state);
      const declared = view(emergencyHistory('in-progress'));
      expect(declared.checklist.filter((i) => i.required)).toEqual([]);
      expect(declared).toMatchObject({ approvedBy: null, timestamps: { approvedAt: null } });
      const decided = view([
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        retrospectiveDecided(),
      ]);
      expect(decided.approvedBy).toEqual({ id: actors.max.id, name: actors.max.name });
      expect(decided.timestamps.approvedAt).toBe(decided.retrospectiveDecision?.at);
      const rejected = event('RetrospectiveDecisionRecorded', actors.max, {
        decision: 'reject',
        comment: 'Not justified',
      });
      expect(
        view([...emergencyHistory('implemented'), postImplementationReviewed(), rejected]).approvedBy,
      ).toBeNull();
      // a normal change still needs its checklist
      expect(view(normalHistory('approved')).checklist.filter((i) => i.required).length).toBeGreaterThan(0);
    });

    it('every template field is in the view: those an emergency has not filled in yet are null, not left out', () => {
      const view = (events: ChangeRequestEvent[]) => toChangeView(given(events).state);
      const declared = view([submitted('emergency', incompleteEmergencyRequest())]);
      for (const field of LATER_FIELDS) expect(declared).toHaveProperty(field, null);
      expect(declared.emergency).toEqual(incompleteEmergencyRequest().emergency);
      const amended = view([
        submitted('emergency', incompleteEmergencyRequest()),
        event('ChangeAmended', actors.alice, {
          changes: laterFields(),
          previous: {},
          voidedReviews: [],
          statusBefore: 'in-progress',
          statusAfter: 'in-progress',
        }),
      ]);
      expect(amended).toMatchObject(laterFields());
      const normal = view(normalHistory('in-review'));
      expect(normal.emergency).toBeNull();
      expect(normal.risk).toEqual(normalRequest('low').risk);
    });

    it('an emergency declared by a requester is implemented by the first implementer to record work on it, not by the requester', () => {
      const declared = given([]).when(
        { type: 'SubmitChange', changeId: CHANGE_ID, changeType: 'emergency', fields: emergencyRequest() },
        { actor: actors.alice },
      );
      const view = (events: ChangeRequestEvent[]) => toChangeView(given(events).state);
      expect(view(declared.events())).toMatchObject({
        requestedBy: { id: actors.alice.id },
        implementedBy: null,
      });
      for (const work of [
        event('ImplementationStepRecorded', actors.ivan, { sequence: 1, description: 'Patched' }),
        event('ImplementationIssueRecorded', actors.ivan, { description: 'Slow', severity: 'low' }),
        verified(),
        event('ImplementationCompleted', actors.ivan, { outcome: 'successful' }),
      ]) {
        const after = view([...declared.events(), work]);
        expect(after.implementedBy).toEqual({ id: actors.ivan.id, name: actors.ivan.name });
        // and the first stays: later work by another implementer does not take it over
        const ines = { ...work, data: { ...work.data, by: { id: actors.ines.id, name: actors.ines.name } } };
        expect(view([...declared.events(), work, ines as ChangeRequestEvent]).implementedBy?.id).toBe(
          actors.ivan.id,
        );
      }
      // declared by an implementer: that implementer, whoever records the work
      const byIvan = given([]).when(
        { type: 'SubmitChange', changeId: CHANGE_ID, changeType: 'emergency', fields: emergencyRequest() },
        { actor: actors.ivan },
      );
      const ines = event('ImplementationStepRecorded', actors.ines, { sequence: 1, description: 'Patched' });
      expect(view([...byIvan.events(), ines]).implementedBy?.id).toBe(actors.ivan.id);
      // a normal change: whoever started it, whoever records work later
      const normal = [...normalHistory('in-progress')];
      const stepByInes = event('ImplementationStepRecorded', actors.ines, { sequence: 1, description: 'x' });
      expect(view(normal).implementedBy?.id).toBe(actors.ivan.id);
      expect(view([...normal, stepByInes]).implementedBy?.id).toBe(actors.ivan.id);
      // a state the read models stored before schema 3 (JSON, no implementer fields) folds on as
      // before: its starter stays its implementer
      const stored = JSON.parse(JSON.stringify(given(normal).state)) as ReturnType<typeof given>['state'];
      expect(stored.implementation).not.toHaveProperty('implementerPending');
      const folded = changeRequestDecider.evolve(stored, stepByInes);
      expect(toChangeView(folded).implementedBy?.id).toBe(actors.ivan.id);
      // events of schema 2 (no byImplementer): the declarer, as they were read then
      expect(
        view([
          submitted('emergency', emergencyRequest()),
          event('ImplementationStarted', actors.alice, { emergency: true }),
        ]).implementedBy?.id,
      ).toBe(actors.alice.id);
    });

    it('an emergency change may leave out the "later" fields', () => {
      given([])
        .when(
          {
            type: 'SubmitChange',
            changeId: CHANGE_ID,
            changeType: 'emergency',
            fields: incompleteEmergencyRequest(),
          },
          { actor: actors.alice },
        )
        .thenTypes(['ChangeSubmitted', 'ImplementationStarted']);
    });

    it.each([
      [
        'a normal change without a rollback plan',
        'normal',
        normalRequest('low', { rollbackPlan: undefined }),
        ['rollbackPlan'],
      ],
      [
        'a normal change without a risk assessment',
        'normal',
        normalRequest('low', { risk: undefined }),
        ['risk'],
      ],
      ['a normal change with emergency details', 'normal', emergencyRequest(), ['emergency']],
      ['an emergency change without emergency details', 'emergency', normalRequest(), ['emergency']],
      // every type needs the base fields (the API's DTOs check them too: this is the rule)
      ['a normal change without a title', 'normal', normalRequest('low', { title: undefined }), ['title']],
      [
        'an emergency change without systems',
        'emergency',
        { ...emergencyRequest(), systemsAffected: [] },
        ['systemsAffected'],
      ],
      [
        'an emergency change with a null description',
        'emergency',
        { ...incompleteEmergencyRequest(), description: null as unknown as string },
        ['description'],
      ],
      ['a normal change with a null risk', 'normal', normalRequest('low', { risk: null as never }), ['risk']],
    ] as const)('%s → VALIDATION_FAILED naming the fields', (_name, changeType, fields, named) => {
      given([])
        .when({ type: 'SubmitChange', changeId: CHANGE_ID, changeType, fields }, { actor: actors.alice })
        .thenError('VALIDATION_FAILED', undefined, named);
    });
  });

  describe('reviews', () => {
    it.each<[RiskLevel, 'infrastructure-lead' | 'management', string]>([
      ['low', 'infrastructure-lead', 'normal-change-needs-infrastructure-lead'],
      ['medium', 'infrastructure-lead', 'normal-change-needs-infrastructure-lead'],
      ['high', 'management', 'high-risk-needs-management'],
    ])(
      'the third approving review of a %s-risk change → ReviewsCompleted needing %s',
      (risk, requiredApproval, rule) => {
        const history = [
          ...normalHistory('in-review', { risk }),
          reviewed('technical'),
          reviewed('business'),
        ];
        const when = given(history).when(
          {
            type: 'RecordReview',
            kind: 'security',
            verdict: 'approve',
            notes: 'ok',
            criteria: criteriaFor('security'),
          },
          { actor: actors.sid },
        );
        when.then([
          expected('ReviewRecorded', actors.sid, {
            kind: 'security',
            verdict: 'approve',
            notes: 'ok',
            criteria: criteriaFor('security'),
          }),
          expected('ReviewsCompleted', actors.sid, { riskLevel: risk, requiredApproval, rule }),
        ]);
        expect(given([...history, ...when.events()]).state).toMatchObject({
          status: 'awaiting-approval',
          requiredApproval,
        });
      },
    );

    it('two approving reviews leave the change in review', () => {
      given([...normalHistory('in-review'), reviewed('security')])
        .when(
          {
            type: 'RecordReview',
            kind: 'business',
            verdict: 'approve',
            notes: 'ok',
            criteria: criteriaFor('business'),
          },
          { actor: actors.bea },
        )
        .thenTypes(['ReviewRecorded']);
    });

    it.each<ReviewKind>(['technical', 'business', 'security'])(
      'a %s review "reject" → ChangeRejected (rejected)',
      (kind) => {
        const reviewer = reviewerFor[kind];
        const history = [
          ...normalHistory('in-review'),
          ...(kind === 'technical' ? [] : [reviewed('technical')]),
        ];
        const when = given(history).when(
          {
            type: 'RecordReview',
            kind,
            verdict: 'reject',
            notes: 'Not acceptable',
            criteria: criteriaFor(kind),
          },
          { actor: reviewer },
        );
        when.then([
          expected('ReviewRecorded', reviewer, {
            kind,
            verdict: 'reject',
            notes: 'Not acceptable',
            criteria: criteriaFor(kind),
          }),
          expected('ChangeRejected', reviewer, { stage: 'review', kind, reason: 'Not acceptable' }),
        ]);
        expect(given([...history, ...when.events()]).state.status).toBe('rejected');
      },
    );

    it('a "request-changes" review → ChangesRequested (changes-requested)', () => {
      const history = [...normalHistory('in-review'), reviewed('technical')];
      const when = given(history).when(
        {
          type: 'RecordReview',
          kind: 'business',
          verdict: 'request-changes',
          notes: 'Pick a quieter week',
          criteria: criteriaFor('business'),
        },
        { actor: actors.bea },
      );
      when.then([
        expected('ReviewRecorded', actors.bea, {
          kind: 'business',
          verdict: 'request-changes',
          notes: 'Pick a quieter week',
          criteria: criteriaFor('business'),
        }),
        expected('ChangesRequested', actors.bea, { kind: 'business', notes: 'Pick a quieter week' }),
      ]);
      expect(given([...history, ...when.events()]).state.status).toBe('changes-requested');
    });

    it.each<[string, ReviewKind, Record<string, string>, string[]]>([
      [
        'no criteria',
        'technical',
        {},
        ['criteria.feasibility', 'criteria.impactAssessment', 'criteria.riskEvaluation'],
      ],
      [
        'a criterion missing',
        'technical',
        { feasibility: 'ok', impactAssessment: 'ok' },
        ['criteria.riskEvaluation'],
      ],
      [
        'a criterion left blank',
        'security',
        { ...criteriaFor('security'), riskAssessment: '  ' },
        ['criteria.riskAssessment'],
      ],
      ['an unknown criterion', 'business', { ...criteriaFor('business'), vibes: 'good' }, ['criteria.vibes']],
      [
        'the criteria of another kind',
        'technical',
        criteriaFor('security'),
        [
          'criteria.feasibility',
          'criteria.impactAssessment',
          'criteria.riskEvaluation',
          ...Object.keys(criteriaFor('security')).map((k) => `criteria.${k}`),
        ],
      ],
    ])('a review with %s → VALIDATION_FAILED naming the criteria', (_name, kind, criteria, fields) => {
      given(normalHistory('in-review'))
        .when(
          { type: 'RecordReview', kind, verdict: 'approve', notes: 'ok', criteria },
          { actor: reviewerFor[kind] },
        )
        .thenError('VALIDATION_FAILED', undefined, fields);
    });
  });

  describe('approval levels', () => {
    it.each<[RiskLevel, string, Actor, 'infrastructure-lead' | 'management']>([
      ['low', 'the infrastructure lead', actors.lena, 'infrastructure-lead'],
      ['low', 'management', actors.max, 'infrastructure-lead'],
      ['medium', 'the infrastructure lead', actors.lena, 'infrastructure-lead'],
      ['medium', 'management', actors.max, 'infrastructure-lead'],
      ['high', 'management', actors.max, 'management'],
    ])('a %s-risk change may be approved by %s', (risk, _who, approver, level) => {
      const history = normalHistory('awaiting-approval', { risk });
      const when = given(history).when({ type: 'ApproveChange' }, { actor: approver });
      const rule =
        level === 'management' ? 'high-risk-needs-management' : 'normal-change-needs-infrastructure-lead';
      when.then([expected('ChangeApproved', approver, { level, riskLevel: risk, rule })]);
      expect(given([...history, ...when.events()]).state).toMatchObject({
        status: 'approved',
        approval: { by: { id: approver.id }, level },
      });
    });

    it.each<[RiskLevel, string, Actor, 'infrastructure-lead' | 'management', string]>([
      [
        'low',
        'the infrastructure lead',
        actors.lena,
        'infrastructure-lead',
        'normal-change-needs-infrastructure-lead',
      ],
      ['low', 'management', actors.max, 'infrastructure-lead', 'normal-change-needs-infrastructure-lead'],
      ['high', 'management', actors.max, 'management', 'high-risk-needs-management'],
    ])(
      'a %s-risk change may be rejected by %s, the event naming the level and its rule',
      (risk, _who, actor, level, rule) => {
        given(normalHistory('awaiting-approval', { risk }))
          .when({ type: 'RejectChange', reason: 'No' }, { actor })
          .then([
            expected('ChangeRejected', actor, {
              stage: 'approval',
              level,
              riskLevel: risk,
              rule,
              reason: 'No',
            }),
          ]);
      },
    );

    it.each<[string, Actionable]>([
      ['ApproveChange', { type: 'ApproveChange' }],
      ['RejectChange', { type: 'RejectChange', reason: 'No' }],
    ])('a high-risk change: %s by the infrastructure lead → FORBIDDEN', (_name, command) => {
      given(normalHistory('awaiting-approval', { risk: 'high' }))
        .when(command, { actor: actors.lena })
        .thenError('FORBIDDEN');
    });
  });

  describe('segregation of duties', () => {
    it.each<[string, ChangeRequestEvent[], Actionable, Actor, string]>([
      [
        'reviewing own change',
        normalHistory('in-review'),
        ROWS.RecordReview.command,
        withRoles(actors.alice, 'requester', 'technical-reviewer'),
        'requester-is-not-approver',
      ],
      [
        'approving own change',
        normalHistory('awaiting-approval'),
        { type: 'ApproveChange' },
        withRoles(actors.alice, 'requester', 'infrastructure-lead'),
        'requester-is-not-approver',
      ],
      [
        'approving own high-risk change as management',
        normalHistory('awaiting-approval', { risk: 'high' }),
        { type: 'ApproveChange' },
        withRoles(actors.alice, 'management'),
        'requester-is-not-approver',
      ],
      [
        'rejecting own change',
        normalHistory('awaiting-approval'),
        { type: 'RejectChange', reason: 'x' },
        withRoles(actors.alice, 'management'),
        'requester-is-not-approver',
      ],
      [
        'retrospectively approving own emergency change',
        [...emergencyHistory('implemented'), postImplementationReviewed()],
        ROWS.RecordRetrospectiveDecision.command,
        withRoles(actors.alice, 'requester', 'management'),
        'requester-is-not-approver',
      ],
      [
        'retrospectively rejecting own emergency change',
        [...emergencyHistory('implemented'), postImplementationReviewed()],
        { type: 'RecordRetrospectiveDecision', decision: 'reject', comment: 'x' },
        withRoles(actors.alice, 'management'),
        'requester-is-not-approver',
      ],
      [
        'the approver starting the implementation',
        normalHistory('scheduled'),
        { type: 'StartImplementation' },
        withRoles(actors.lena, 'implementer'),
        'approver-is-not-implementer',
      ],
      [
        'the management approver of a high-risk change starting it',
        normalHistory('scheduled', { risk: 'high' }),
        { type: 'StartImplementation' },
        withRoles(actors.max, 'implementer', 'management'),
        'approver-is-not-implementer',
      ],
    ])('%s → SEGREGATION_OF_DUTIES', (_name, history, command, actor, rule) => {
      given(history).when(command, { actor }).thenError('SEGREGATION_OF_DUTIES', undefined, undefined, rule);
    });

    // Someone else pressed start: the work is still the approver's to keep out of.
    it.each([
      [
        'RecordImplementationStep',
        'in-progress',
        /does not record its implementation steps/,
        'ImplementationStepRecorded',
      ],
      [
        'RecordImplementationIssue',
        'in-progress',
        /does not record issues of its implementation/,
        'ImplementationIssueRecorded',
      ],
      ['RecordImplementationIssue', 'implemented', /does not record issues/, 'ImplementationIssueRecorded'],
      ['RecordVerification', 'in-progress', /does not verify its implementation/, 'VerificationRecorded'],
      [
        'CompleteImplementation',
        'in-progress',
        /does not complete its implementation/,
        'ImplementationCompleted',
      ],
    ] as const)(
      'the approver, with the implementer role, recording %s (in %s) after another started it → SEGREGATION_OF_DUTIES',
      (command, status, detail, recorded) => {
        const started = [
          ...normalHistory('scheduled'),
          event('ImplementationStarted', actors.ines, { emergency: false }),
          verified(),
        ];
        const history =
          status === 'implemented'
            ? [...started, event('ImplementationCompleted', actors.ines, { outcome: 'successful' })]
            : started;
        const approver = withRoles(actors.lena, 'infrastructure-lead', 'implementer');
        given(history)
          .when(ROWS[command].command, { actor: approver })
          .thenError('SEGREGATION_OF_DUTIES', detail, undefined, 'approver-is-not-implementer');
        // the implementer who started it may
        given(history).when(ROWS[command].command, { actor: actors.ines }).thenTypes([recorded]);
      },
    );

    it('the requester may implement an approved change (only the approver may not)', () => {
      given(normalHistory('scheduled'))
        .when({ type: 'StartImplementation' }, { actor: withRoles(actors.alice, 'requester', 'implementer') })
        .thenTypes(['ImplementationStarted']);
    });

    describe('an emergency declared by a requester, then worked on by implementers, one of whom also holds management', () => {
      const implemented = [
        submitted('emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true, byImplementer: false }),
        event('ImplementationStepRecorded', actors.ines, { sequence: 1, description: 'Failed over to pve2' }),
        verified(), // by Ivan
        event('ImplementationCompleted', actors.ines, { outcome: 'successful' }),
        postImplementationReviewed(),
      ];
      const managing = (actor: Actor) => withRoles(actor, 'implementer', 'management');

      it.each<[string, Actor, 'approve' | 'reject']>([
        ['its implementer (the first to record work)', actors.ines, 'approve'],
        ['its implementer', actors.ines, 'reject'],
        ['another who recorded part of the work (a verification)', actors.ivan, 'approve'],
      ])('%s may not %s it retrospectively → SEGREGATION_OF_DUTIES', (_name, actor, decision) => {
        expect(toChangeView(given(implemented).state).implementedBy?.id).toBe(actors.ines.id);
        given(implemented)
          .when({ type: 'RecordRetrospectiveDecision', decision, comment: 'x' }, { actor: managing(actor) })
          .thenError(
            'SEGREGATION_OF_DUTIES',
            /worked on/,
            undefined,
            'implementer-is-not-retrospective-approver',
          );
      });

      it('a manager who did none of the work may', () => {
        given(implemented)
          .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
          .thenTypes(['RetrospectiveDecisionRecorded']);
      });

      it('the manager who approved it retrospectively does not record its issues afterwards; who rejected it, or anyone else, may', () => {
        const decided = (decision: 'approve' | 'reject') => [
          ...implemented,
          event('RetrospectiveDecisionRecorded', actors.max, {
            decision,
            comment: 'x',
            rule: 'emergency-needs-retrospective-approval-by-management',
          }),
        ];
        const issue = ROWS.RecordImplementationIssue.command;
        given(decided('approve'))
          .when(issue, { actor: managing(actors.max) })
          .thenError(
            'SEGREGATION_OF_DUTIES',
            /does not record issues of its implementation/,
            undefined,
            'approver-is-not-implementer',
          );
        given(decided('approve'))
          .when(issue, { actor: actors.ines })
          .thenTypes(['ImplementationIssueRecorded']);
        given(decided('reject'))
          .when(issue, { actor: managing(actors.max) })
          .thenTypes(['ImplementationIssueRecorded']);
      });

      it('the declarer without the implementer role did not start the work (only the requester rule applies)', () => {
        expect(given(implemented).state.implementation.workedBy).toEqual([actors.ines.id, actors.ivan.id]);
      });
    });

    it('a standard change has no approver, so anyone with the implementer role may start it', () => {
      given(standardHistory('scheduled'))
        .when({ type: 'StartImplementation' }, { actor: actors.ivan })
        .thenTypes(['ImplementationStarted']);
    });
  });

  describe('amendments', () => {
    it.each<['changes-requested' | 'awaiting-approval', ReviewKind[]]>([
      ['changes-requested', ['technical']],
      ['awaiting-approval', ['technical', 'business', 'security']],
    ])('of a normal change in %s void its reviews and return it to in-review', (status, voidedReviews) => {
      const history = normalHistory(status);
      const when = given(history).when(
        {
          type: 'AmendChange',
          fields: { rollbackPlan: 'Restore from the nightly backup', priority: 'medium' },
        },
        { actor: actors.alice },
      );
      when.then([
        expected('ChangeAmended', actors.alice, {
          // priority is unchanged, so it is not part of the amendment
          changes: { rollbackPlan: 'Restore from the nightly backup' },
          previous: { rollbackPlan: normalRequest().rollbackPlan },
          voidedReviews,
          statusBefore: status,
          statusAfter: 'in-review',
        }),
      ]);
      const after = [...history, ...when.events()];
      const state = given(after).state;
      expect(state).toMatchObject({ status: 'in-review', reviews: {}, requiredApproval: undefined });
      expect(state.voidedReviews.map((r) => r.kind)).toEqual(voidedReviews);
      expect(state.request.rollbackPlan).toBe('Restore from the nightly backup');
      // It must be reviewed again: the voided kinds can be reviewed anew.
      given(after).when(ROWS.RecordReview.command, { actor: actors.tom }).thenTypes(['ReviewRecorded']);
    });

    it('of a normal change in review with one review voids that review', () => {
      given([...normalHistory('in-review'), reviewed('security')])
        .when({ type: 'AmendChange', fields: { title: 'New title' } }, { actor: actors.alice })
        .then([
          expected('ChangeAmended', actors.alice, {
            changes: { title: 'New title' },
            previous: { title: normalRequest().title },
            voidedReviews: ['security'],
            statusBefore: 'in-review',
            statusAfter: 'in-review',
          }),
        ]);
    });

    it.each<EmergencyStatus>(['in-progress', 'implemented'])(
      'of an emergency change in %s keep its status',
      (status) => {
        const history = emergencyHistory(status);
        const when = given(history).when(
          { type: 'AmendChange', fields: { testingPlan: 'Run the ssh audit' } },
          { actor: actors.alice },
        );
        when.then([
          expected('ChangeAmended', actors.alice, {
            changes: { testingPlan: 'Run the ssh audit' },
            previous: { testingPlan: emergencyRequest().testingPlan },
            voidedReviews: [],
            statusBefore: status,
            statusAfter: status,
          }),
        ]);
        expect(given([...history, ...when.events()]).state.status).toBe(status);
      },
    );

    it.each<[string, Actor]>([
      ['another requester', actors.rita],
      ['the infrastructure lead', actors.lena],
      ['management', actors.max],
      ['a reviewer', actors.tom],
    ])('by %s (not the original requester) → FORBIDDEN', (_name, actor) => {
      given(normalHistory('changes-requested'))
        .when({ type: 'AmendChange', fields: { title: 'Hijacked' } }, { actor })
        .thenError('FORBIDDEN');
    });

    it.each<[string, Role[]]>([
      ['now an auditor only', ['auditor']],
      ['now holding no role', []],
      ['now a reviewer only', ['technical-reviewer']],
    ])('by the original requester %s → FORBIDDEN (amend and cancel)', (_name, roles) => {
      const actor = withRoles(actors.alice, ...roles);
      given(normalHistory('changes-requested'))
        .when({ type: 'AmendChange', fields: { title: 'Changed' } }, { actor })
        .thenError('FORBIDDEN');
      given(normalHistory('changes-requested'))
        .when({ type: 'CancelChange', reason: 'x' }, { actor })
        .thenError('FORBIDDEN');
    });

    it('of an emergency change by someone else than its declarer → FORBIDDEN', () => {
      given(emergencyHistory('implemented'))
        .when({ type: 'AmendChange', fields: laterFields() }, { actor: actors.ivan })
        .thenError('FORBIDDEN');
    });

    it('of an emergency change declared by an implementer, by that implementer', () => {
      const history = [
        submitted('emergency', incompleteEmergencyRequest(), actors.ivan),
        event('ImplementationStarted', actors.ivan, { emergency: true }),
      ];
      given(history)
        .when({ type: 'AmendChange', fields: laterFields() }, { actor: actors.ivan })
        .thenTypes(['ChangeAmended']);
    });
  });

  describe('what is recorded once', () => {
    it('a second post-implementation review → RULE_VIOLATION', () => {
      given([...normalHistory('implemented'), postImplementationReviewed()])
        .when(ROWS.RecordPostImplementationReview.command, { actor: actors.ines })
        .thenError(
          'RULE_VIOLATION',
          /post-implementation review is already recorded/,
          undefined,
          'one-post-implementation-review',
        );
    });

    it.each(['approve', 'reject'] as const)(
      'a second retrospective decision (%s) → RULE_VIOLATION',
      (decision) => {
        given([...emergencyHistory('implemented'), postImplementationReviewed(), retrospectiveDecided()])
          .when({ type: 'RecordRetrospectiveDecision', decision, comment: 'again' }, { actor: actors.max })
          .thenError(
            'RULE_VIOLATION',
            /retrospective decision is already recorded/,
            undefined,
            'one-retrospective-decision',
          );
      },
    );
  });

  describe('emergency changes: the "later" fields and the retrospective', () => {
    const incomplete = () => [
      ...emergencyHistory('implemented', incompleteEmergencyRequest()),
      postImplementationReviewed(),
    ];

    it('a "later" field amended to null counts as missing, not as filled in', () => {
      const nulled = given(incomplete())
        .when(
          { type: 'AmendChange', fields: { ...laterFields(), rollbackPlan: null as unknown as string } },
          { actor: actors.alice },
        )
        .events();
      given([...incomplete(), ...nulled])
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .thenError('RULE_VIOLATION', /complete change request.*rollbackPlan/);
    });

    it.each<[string, Record<string, unknown>, RegExp]>([
      ['text of only spaces', { rollbackPlan: '   ' }, /rollbackPlan/],
      ['a plan of blank steps', { implementationPlan: [' ', '\t'] }, /implementationPlan/],
      ['a plan with one blank step', { implementationPlan: ['Drain pve1', ' '] }, /implementationPlan/],
      [
        'a risk with blank impact and mitigation',
        { risk: { level: 'low', potentialImpact: ' ', mitigation: '\n' } },
        /risk/,
      ],
    ])('a "later" field amended to %s counts as missing, not as filled in', (_name, blanks, field) => {
      const blanked = given(incomplete())
        .when({ type: 'AmendChange', fields: { ...laterFields(), ...blanks } }, { actor: actors.alice })
        .events();
      given([...incomplete(), ...blanked])
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .thenError('RULE_VIOLATION', new RegExp(`complete change request.*${field.source}`));
    });

    it('a normal change with a blank base or later field is refused at submission', () => {
      for (const blanks of [{ title: ' ' }, { testingPlan: '\t' }, { systemsAffected: [' '] }]) {
        given([])
          .when(
            {
              type: 'SubmitChange',
              changeId: CHANGE_ID,
              changeType: 'normal',
              fields: { ...normalRequest(), ...blanks },
            },
            { actor: actors.rita },
          )
          .thenError('VALIDATION_FAILED', /needs (title|testingPlan|systemsAffected)/, Object.keys(blanks));
      }
    });

    it('an amendment after the retrospective approval makes it void: management decides again before the close', () => {
      const decision = 'approve';
      const decided = [
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        event('RetrospectiveDecisionRecorded', actors.max, { decision, comment: 'seen' }),
      ];
      const amendment = given(decided)
        .when({ type: 'AmendChange', fields: { rollbackPlan: 'Something else' } }, { actor: actors.alice })
        .events();
      expect(amendment).toEqual([
        {
          type: 'ChangeAmended',
          data: expect.objectContaining({
            changes: { rollbackPlan: 'Something else' },
            voidedReviews: [],
            voidedRetrospectiveDecision: {
              decision,
              comment: 'seen',
              by: { id: actors.max.id, name: actors.max.name },
              at: expect.any(String),
            },
            statusBefore: 'implemented',
            statusAfter: 'implemented',
          }),
        },
      ]);
      const amended = [...decided, ...amendment];
      expect(given(amended).state.retrospectiveDecision).toBeUndefined();
      given(amended)
        .when({ type: 'CloseChange' }, { actor: actors.lena })
        .thenError('RULE_VIOLATION', /retrospective/);
      const again = given(amended)
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .events();
      expect(again.map((e) => e.type)).toEqual(['RetrospectiveDecisionRecorded']);
      given([...amended, ...again])
        .when({ type: 'CloseChange' }, { actor: actors.lena })
        .thenTypes(['ChangeClosed']);
    });

    it('an amendment after a retrospective rejection leaves the rejection standing (a rejected change is final)', () => {
      const rejected = [
        ...emergencyHistory('implemented'),
        postImplementationReviewed(),
        event('RetrospectiveDecisionRecorded', actors.max, { decision: 'reject', comment: 'not justified' }),
      ];
      const amendment = given(rejected)
        .when({ type: 'AmendChange', fields: { rollbackPlan: 'Something else' } }, { actor: actors.alice })
        .events();
      expect(amendment.map((e) => e.type)).toEqual(['ChangeAmended']);
      expect(amendment[0].data).not.toHaveProperty('voidedRetrospectiveDecision');
      const amended = [...rejected, ...amendment];
      expect(given(amended).state.retrospectiveDecision).toMatchObject({ decision: 'reject' });
      given(amended).when({ type: 'CloseChange' }, { actor: actors.lena }).thenTypes(['ChangeClosed']);
    });

    it('an amendment before the retrospective decision voids nothing', () => {
      const amendment = given([...emergencyHistory('implemented'), postImplementationReviewed()])
        .when({ type: 'AmendChange', fields: { rollbackPlan: 'Something else' } }, { actor: actors.alice })
        .events();
      expect(amendment[0].data).not.toHaveProperty('voidedRetrospectiveDecision');
    });

    it('an incomplete emergency change cannot be decided retrospectively, until amended', () => {
      given(incomplete())
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .thenError('RULE_VIOLATION', /complete change request/);

      const amendment = given(incomplete())
        .when({ type: 'AmendChange', fields: laterFields() }, { actor: actors.alice })
        .events();
      expect(amendment.map((e) => e.type)).toEqual(['ChangeAmended']);
      const amended = [...incomplete(), ...amendment];

      const decision = given(amended)
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .events();
      expect(decision.map((e) => e.type)).toEqual(['RetrospectiveDecisionRecorded']);

      const closed = given([...amended, ...decision])
        .when({ type: 'CloseChange' }, { actor: actors.lena })
        .events();
      expect(closed.map((e) => e.type)).toEqual(['ChangeClosed']);
      // an emergency's close names the rule it met, which is not the normal change's
      expect(closed[0].data).toMatchObject({
        rule: 'emergency-close-needs-post-implementation-review-and-retrospective-decision',
      });
    });

    it('a partly completed emergency change is still refused', () => {
      const { risk, timeline } = laterFields();
      given([
        ...incomplete(),
        event('ChangeAmended', actors.alice, {
          changes: { risk, timeline },
          previous: {},
          voidedReviews: [],
          statusBefore: 'implemented',
          statusAfter: 'implemented',
        }),
      ])
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .thenError('RULE_VIOLATION', undefined, undefined, 'retrospective-prerequisites');
    });

    it('the retrospective decision needs the post-implementation review', () => {
      given(emergencyHistory('implemented'))
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .thenError('RULE_VIOLATION', /post-implementation review/);
    });

    it('an emergency change cannot be closed without the retrospective decision', () => {
      given([...emergencyHistory('implemented'), postImplementationReviewed()])
        .when({ type: 'CloseChange' }, { actor: actors.lena })
        .thenError('RULE_VIOLATION', /retrospective decision/);
    });

    it('retrospective approval is for emergency changes only', () => {
      given([...normalHistory('implemented'), postImplementationReviewed()])
        .when(ROWS.RecordRetrospectiveDecision.command, { actor: actors.max })
        .thenError('INVALID_STATE');
    });
  });

  describe('implementation prerequisites', () => {
    const approvedThenScheduled = (maintenanceWindow: boolean) => [
      ...normalHistory('approved'),
      scheduledEvent(maintenanceWindow),
    ];

    it.each([
      ['no checklist item', []],
      ['backups not verified', ['rollback-plan-prepared', 'stakeholders-notified']],
      ['stakeholders not notified', ['backups-verified', 'rollback-plan-prepared']],
    ] as const)('start with %s → RULE_VIOLATION', (_name, items) => {
      given([...approvedThenScheduled(false), ...checklistDone(items)])
        .when({ type: 'StartImplementation' }, { actor: actors.ivan })
        .thenError('RULE_VIOLATION', undefined, undefined, 'checklist-complete');
    });

    it('start with a maintenance window but without its checklist item → RULE_VIOLATION', () => {
      given([...approvedThenScheduled(true), ...checklistDone(BASE_CHECKLIST)])
        .when({ type: 'StartImplementation' }, { actor: actors.ivan })
        .thenError('RULE_VIOLATION', /maintenance-window-scheduled/);
    });

    it('start with a maintenance window and every item → ImplementationStarted', () => {
      given(normalHistory('scheduled', { maintenanceWindow: true }))
        .when({ type: 'StartImplementation' }, { actor: actors.ivan })
        .thenTypes(['ImplementationStarted']);
    });

    it('start without a maintenance window needs no maintenance-window item', () => {
      given([...approvedThenScheduled(false), ...checklistDone(BASE_CHECKLIST)])
        .when({ type: 'StartImplementation' }, { actor: actors.ivan })
        .thenTypes(['ImplementationStarted']);
    });

    it('a checklist done before a rescheduling still counts', () => {
      given([...normalHistory('approved'), ...checklistDone(BASE_CHECKLIST), scheduledEvent(false)])
        .when({ type: 'StartImplementation' }, { actor: actors.ivan })
        .thenTypes(['ImplementationStarted']);
    });

    const inProgressWithout = () => [...normalHistory('scheduled'), started()];

    it.each<[string, ChangeRequestEvent[]]>([
      ['no verification', []],
      ['a failing verification', [verified(false)]],
      ['a passing verification followed by a failing one', [verified(true), verified(false)]],
    ])('complete "successful" with %s → RULE_VIOLATION', (_name, extra) => {
      given([...inProgressWithout(), ...extra])
        .when({ type: 'CompleteImplementation', outcome: 'successful' }, { actor: actors.ivan })
        .thenError('RULE_VIOLATION', undefined, undefined, 'successful-needs-verification');
    });

    it.each(['failed', 'rolled-back'] as const)('complete "%s" needs no passing verification', (outcome) => {
      const history = [...inProgressWithout(), verified(false)];
      const when = given(history).when({ type: 'CompleteImplementation', outcome }, { actor: actors.ivan });
      when.then([expected('ImplementationCompleted', actors.ivan, { outcome })]);
      expect(given([...history, ...when.events()]).state).toMatchObject({
        status: 'implemented',
        implementation: { outcome },
      });
    });

    it('an emergency change completes "successful" after a passing verification', () => {
      given([
        submitted('emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true }),
        verified(),
      ])
        .when({ type: 'CompleteImplementation', outcome: 'successful' }, { actor: actors.ivan })
        .thenTypes(['ImplementationCompleted']);
    });

    it('an emergency change cannot complete "successful" without verification', () => {
      given([
        submitted('emergency', emergencyRequest()),
        event('ImplementationStarted', actors.alice, { emergency: true }),
      ])
        .when({ type: 'CompleteImplementation', outcome: 'successful' }, { actor: actors.ivan })
        .thenError('RULE_VIOLATION', undefined, undefined, 'successful-needs-verification');
    });

    it.each<[string, ChangeRequestEvent[]]>([
      ['a normal change', normalHistory('implemented')],
      ['a standard change', standardHistory('implemented')],
      ['an emergency change', emergencyHistory('implemented')],
      [
        'an emergency change with its retrospective decision',
        [...emergencyHistory('implemented'), retrospectiveDecided()],
      ],
    ])('close %s without post-implementation review → RULE_VIOLATION', (_name, history) => {
      given(history)
        .when({ type: 'CloseChange' }, { actor: actors.ivan })
        .thenError('RULE_VIOLATION', /post-implementation review/);
    });

    it.each<[string, Actor]>([
      ['an implementer', actors.ivan],
      ['the infrastructure lead', actors.lena],
      ['management', actors.max],
    ])('close after the post-implementation review by %s → ChangeClosed', (_name, actor) => {
      given([...standardHistory('implemented'), postImplementationReviewed()])
        .when({ type: 'CloseChange' }, { actor })
        .then([expected('ChangeClosed', actor, { rule: 'close-needs-post-implementation-review' })]);
    });
  });

  describe('cancellation', () => {
    it.each<[string, Actor]>([
      ['the original requester', actors.alice],
      ['the infrastructure lead', actors.lena],
      ['management', actors.max],
    ])('by %s → ChangeCancelled', (_name, actor) => {
      const history = normalHistory('awaiting-approval');
      const when = given(history).when({ type: 'CancelChange', reason: 'Not needed' }, { actor });
      when.then([
        expected('ChangeCancelled', actor, { reason: 'Not needed', statusBefore: 'awaiting-approval' }),
      ]);
      expect(given([...history, ...when.events()]).state.status).toBe('cancelled');
    });

    it.each<[string, Actor]>([
      ['another requester', actors.rita],
      ['an implementer', actors.ivan],
      ['a reviewer', actors.tom],
      ['an auditor', actors.audrey],
    ])('by %s → FORBIDDEN', (_name, actor) => {
      given(normalHistory('approved'))
        .when({ type: 'CancelChange', reason: 'Not needed' }, { actor })
        .thenError('FORBIDDEN');
    });

    it('a standard change may be cancelled by its requester before it starts', () => {
      given(standardHistory('scheduled'))
        .when({ type: 'CancelChange', reason: 'Done another way' }, { actor: actors.alice })
        .thenTypes(['ChangeCancelled']);
    });
  });

  describe('one-off records', () => {
    it('an approval of a review kind already recorded → RULE_VIOLATION', () => {
      given([...normalHistory('in-review'), reviewed('technical')])
        .when(ROWS.RecordReview.command, { actor: withRoles(actors.ines, 'technical-reviewer') })
        .thenError('RULE_VIOLATION', /may only reject or request changes/);
    });

    it.each([
      ['reject', ['ReviewRecorded', 'ChangeRejected'], 'rejected'],
      ['request-changes', ['ReviewRecorded', 'ChangesRequested'], 'changes-requested'],
    ] as const)(
      'a later %s of an approved kind, still in review, overrules the approval (named in the event)',
      (verdict, types, status) => {
        const history = [...normalHistory('in-review'), reviewed('technical'), reviewed('business')];
        const actor = withRoles(actors.ines, 'technical-reviewer');
        const command: ChangeRequestCommand = {
          type: 'RecordReview',
          kind: 'technical',
          verdict,
          notes: 'found a flaw',
          criteria: criteriaFor('technical'),
        };
        given(history).when(command, { actor }).thenTypes(types);
        const [recorded] = changeRequestDecider.decide(command, given(history).state, { now: NOW, actor });
        const approval = history.find((e) => e.type === 'ReviewRecorded' && e.data.kind === 'technical')!;
        expect(recorded.data).toMatchObject({
          kind: 'technical',
          verdict,
          by: { id: actors.ines.id },
          supersedes: { verdict: 'approve', by: (approval.data as { by: unknown }).by },
        });
        const after = given([
          ...history,
          ...changeRequestDecider.decide(command, given(history).state, { now: NOW, actor }),
        ]).state;
        expect(after.status).toBe(status);
        expect(after.reviews.technical).toMatchObject({ verdict, by: { id: actors.ines.id } });
        expect(after.voidedReviews).toEqual([
          expect.objectContaining({ kind: 'technical', verdict: 'approve' }),
        ]);
      },
    );

    it('the requester may not overrule a review either → SEGREGATION_OF_DUTIES', () => {
      given([...normalHistory('in-review'), reviewed('technical')])
        .when(
          {
            type: 'RecordReview',
            kind: 'technical',
            verdict: 'reject',
            notes: 'no',
            criteria: criteriaFor('technical'),
          },
          { actor: withRoles(actors.alice, 'technical-reviewer') },
        )
        .thenError('SEGREGATION_OF_DUTIES');
    });

    it('an amendment that changes nothing → VALIDATION_FAILED', () => {
      given(normalHistory('in-review'))
        .when({ type: 'AmendChange', fields: { title: normalRequest().title } }, { actor: actors.alice })
        .thenError('VALIDATION_FAILED', /changes nothing/, []);
    });

    it('a schedule that ends before it starts → VALIDATION_FAILED', () => {
      given(normalHistory('approved'))
        .when(
          {
            type: 'ScheduleChange',
            plannedStart: PLANNED_END,
            plannedEnd: PLANNED_START,
            maintenanceWindow: false,
          },
          { actor: actors.ivan },
        )
        .thenError('VALIDATION_FAILED', undefined, ['plannedEnd']);
    });
  });

  it('a closed normal change keeps who approved and who implemented it', () => {
    expect(given(normalHistory('closed')).state).toMatchObject({
      status: 'closed',
      approval: { by: { id: actors.lena.id }, level: 'infrastructure-lead' },
      implementation: { startedBy: { id: actors.ivan.id }, outcome: 'successful' },
      postImplementationReview: { by: { id: actors.ivan.id } },
      closedBy: { id: actors.lena.id },
    });
  });
});
