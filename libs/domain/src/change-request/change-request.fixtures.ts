/**
 * Test fixtures for the change-request decider: actors, request bodies, event factories and
 * histories that bring a change into each status. Pure data, no test framework, so it also
 * compiles in the production build (which leaves the jest types out).
 */
import { type Actor, type Role, ROLES, actorRef } from '../shared/actor';
import { fold } from '../shared/decider';
import type { StandardTemplateEvent } from '../standard-template/standard-template.events';
import {
  type StandardTemplateState,
  evolveStandardTemplate,
  initialStandardTemplateState,
} from '../standard-template/standard-template.state';
import type { ChangeRequestEvent, ChangeRequestEventType } from './change-request.events';
import {
  type ChangeRequestFields,
  type ChangeStatus,
  type ChangeType,
  type ChecklistItem,
  type Outcome,
  REVIEW_CRITERIA,
  type ReviewKind,
  type ReviewVerdict,
  type RiskLevel,
} from './change-request.types';

/** Time of every event in a history; commands under test run at NOW. */
export const T0 = '2026-01-05T09:00:00.000Z';
export const NOW = '2026-01-06T10:00:00.000Z';

export const CHANGE_ID = 'CHG-001';
export const TEMPLATE_ID = 'STD-001';

const person = (id: string, name: string, ...roles: Role[]): Actor => ({ id, name, roles });

export const actors = {
  /** The original requester of every change in the histories below. */
  alice: person('u-alice', 'Alice Requester', 'requester'),
  /** Another requester, who did not request the change. */
  rita: person('u-rita', 'Rita Requester', 'requester'),
  tom: person('u-tom', 'Tom Technical', 'technical-reviewer'),
  bea: person('u-bea', 'Bea Business', 'business-reviewer'),
  sid: person('u-sid', 'Sid Security', 'security-reviewer'),
  /** Approves the low/medium-risk changes in the histories. */
  lena: person('u-lena', 'Lena Lead', 'infrastructure-lead'),
  /** Approves the high-risk changes and decides retrospectives in the histories. */
  max: person('u-max', 'Max Management', 'management'),
  /** Implements every change in the histories (never its approver). */
  ivan: person('u-ivan', 'Ivan Implementer', 'implementer'),
  ines: person('u-ines', 'Ines Implementer', 'implementer'),
  audrey: person('u-audrey', 'Audrey Auditor', 'auditor'),
};

/** The same person (same id) holding other roles. */
export const withRoles = (actor: Actor, ...roles: Role[]): Actor => ({ ...actor, roles });

/** A stranger to the change holding every role except the given ones. */
export const everyRoleExcept = (...excluded: Role[]): Actor =>
  person('u-everyone-else', 'Everyone Else', ...ROLES.filter((role) => !excluded.includes(role)));

export const reviewerFor: Record<ReviewKind, Actor> = {
  technical: actors.tom,
  business: actors.bea,
  security: actors.sid,
};

/** Every criterion of the seed's review for that kind, answered. */
export const criteriaFor = (kind: ReviewKind): Record<string, string> =>
  Object.fromEntries(REVIEW_CRITERIA[kind].map((key) => [key, `${key} assessed: acceptable`]));

// ---------------------------------------------------------------------------------------------
// Request bodies

export const normalRequest = (
  risk: RiskLevel = 'low',
  overrides: Partial<ChangeRequestFields> = {},
): ChangeRequestFields => ({
  title: 'Move VM traffic to VLAN 20',
  description: 'Configure VLAN 20 on the core switch and the Proxmox bridges',
  reason: 'Separate storage traffic from VM traffic',
  expectedImpact: 'Short loss of connectivity for VMs on node 2',
  priority: 'medium',
  systemsAffected: ['core-switch-01', 'pve-node-02'],
  implementationPlan: [
    'Save the switch configuration',
    'Add VLAN 20',
    'Move the bridge',
    'Check connectivity',
  ],
  rollbackPlan: 'Restore the saved switch configuration and the previous bridge',
  testingPlan: 'Ping every VM on VLAN 20 and run the storage benchmark',
  risk: { level: risk, potentialImpact: 'Network outage on node 2', mitigation: 'Console access kept open' },
  timeline: { proposedStart: '2026-01-10T22:00:00.000Z', estimatedDurationMinutes: 60 },
  ...overrides,
});

/** The procedure of the template `templateCreated` makes: a standard change's plan. */
export const TEMPLATE_PROCEDURE = [
  'Clone the golden image',
  'Set resources',
  'Start and register in monitoring',
];

export const standardRequest = (risk: RiskLevel = 'low'): ChangeRequestFields =>
  normalRequest(risk, {
    title: 'Deploy an LXC container for the wiki',
    systemsAffected: ['pve-node-01'],
    implementationPlan: [...TEMPLATE_PROCEDURE],
  });

export const emergencyRequest = (): ChangeRequestFields => ({
  ...normalRequest('high', { title: 'Patch OpenSSH on every node', priority: 'critical' }),
  emergency: { category: 'security', justification: 'Actively exploited remote code execution' },
});

/** An emergency declared with none of the fields that may come "later". */
export const incompleteEmergencyRequest = (): ChangeRequestFields => ({
  title: 'Restore the failed storage pool',
  description: 'Replace the failed disk and resilver the pool',
  reason: 'Storage outage on node 3',
  priority: 'critical',
  systemsAffected: ['pve-node-03'],
  emergency: { category: 'outage', justification: 'VMs on node 3 are down' },
});

/** The "later" fields of an emergency change, as the requester fills them in afterwards. */
export const laterFields = (): Partial<ChangeRequestFields> => {
  const { expectedImpact, implementationPlan, rollbackPlan, testingPlan, risk, timeline } =
    normalRequest('high');
  return { expectedImpact, implementationPlan, rollbackPlan, testingPlan, risk, timeline };
};

// ---------------------------------------------------------------------------------------------
// Events

type EventOf<T extends ChangeRequestEventType> = Extract<ChangeRequestEvent, { type: T }>;
type DataOf<T extends ChangeRequestEventType> = Omit<EventOf<T>['data'], 'by' | 'at'>;

/** A change event stamped with who and when (T0 unless told). */
export const event = <T extends ChangeRequestEventType>(
  type: T,
  by: Actor,
  data: DataOf<T>,
  at: string = T0,
): EventOf<T> => ({ type, data: { ...data, by: actorRef(by), at } }) as unknown as EventOf<T>;

export const templateRef = { id: TEMPLATE_ID, name: 'LXC container deployment', version: 1 };

export const submitted = (
  changeType: ChangeType,
  request: ChangeRequestFields,
  by: Actor = actors.alice,
): ChangeRequestEvent =>
  event('ChangeSubmitted', by, {
    changeId: CHANGE_ID,
    changeType,
    request,
    ...(changeType === 'standard' ? { standardTemplate: templateRef } : {}),
  });

export const reviewed = (kind: ReviewKind, verdict: ReviewVerdict = 'approve'): ChangeRequestEvent =>
  event('ReviewRecorded', reviewerFor[kind], {
    kind,
    verdict,
    notes: `${kind} review: ${verdict}`,
    criteria: criteriaFor(kind),
  });

export const allReviewsApproved = (risk: RiskLevel): ChangeRequestEvent[] => [
  reviewed('technical'),
  reviewed('business'),
  reviewed('security'),
  event('ReviewsCompleted', actors.sid, {
    riskLevel: risk,
    requiredApproval: risk === 'high' ? 'management' : 'infrastructure-lead',
    rule: risk === 'high' ? 'high-risk-needs-management' : 'normal-change-needs-infrastructure-lead',
  }),
];

export const approverFor = (risk: RiskLevel): Actor => (risk === 'high' ? actors.max : actors.lena);

export const approvedBy = (approver: Actor, risk: RiskLevel): ChangeRequestEvent =>
  event('ChangeApproved', approver, {
    level: risk === 'high' ? 'management' : 'infrastructure-lead',
    riskLevel: risk,
  });

export const PLANNED_START = '2026-01-10T22:00:00.000Z';
export const PLANNED_END = '2026-01-10T23:00:00.000Z';

export const scheduledEvent = (maintenanceWindow = false, by: Actor = actors.ivan): ChangeRequestEvent =>
  event('ChangeScheduled', by, {
    plannedStart: PLANNED_START,
    plannedEnd: PLANNED_END,
    maintenanceWindow,
    rescheduled: false,
  });

export const BASE_CHECKLIST: ChecklistItem[] = [
  'backups-verified',
  'rollback-plan-prepared',
  'stakeholders-notified',
];

export const checklistDone = (items: readonly ChecklistItem[] = BASE_CHECKLIST): ChangeRequestEvent[] =>
  items.map((item) => event('ChecklistItemCompleted', actors.ivan, { item }));

export const started = (by: Actor = actors.ivan): ChangeRequestEvent =>
  event('ImplementationStarted', by, {
    emergency: false,
    scheduledStart: PLANNED_START,
    scheduledEnd: PLANNED_END,
  });

export const emergencyStarted = (by: Actor = actors.alice): ChangeRequestEvent =>
  event('ImplementationStarted', by, { emergency: true });

export const verified = (passed = true): ChangeRequestEvent =>
  event('VerificationRecorded', actors.ivan, {
    functionalityTested: true,
    systemHealthVerified: passed,
    logsChecked: true,
    passed,
  });

export const completed = (outcome: Outcome = 'successful'): ChangeRequestEvent =>
  event('ImplementationCompleted', actors.ivan, { outcome });

export const postImplementationReviewed = (): ChangeRequestEvent =>
  event('PostImplementationReviewRecorded', actors.ivan, {
    documentationUpdated: true,
    lessonsLearned: 'Save the switch configuration before every change',
    improvements: ['Automate the connectivity check'],
  });

export const retrospectiveDecided = (): ChangeRequestEvent =>
  event('RetrospectiveDecisionRecorded', actors.max, { decision: 'approve', comment: 'Justified emergency' });

/** An emergency's amendment after its retrospective approval, which it made void (schema 6). */
export const approvalVoidingAmendment = (approval: { comment: string; at: string }): ChangeRequestEvent =>
  event('ChangeAmended', actors.alice, {
    changes: { rollbackPlan: 'Reinstall the previous package' },
    previous: { rollbackPlan: 'apt install the previous version' },
    voidedReviews: [],
    voidedRetrospectiveDecision: {
      decision: 'approve',
      comment: approval.comment,
      by: { id: actors.max.id, name: actors.max.name },
      at: approval.at,
    },
    statusBefore: 'implemented',
    statusAfter: 'implemented',
  });

export const closed = (): ChangeRequestEvent => event('ChangeClosed', actors.lena, {});

export const cancelled = (statusBefore: ChangeStatus): ChangeRequestEvent =>
  event('ChangeCancelled', actors.alice, { reason: 'No longer needed', statusBefore });

// ---------------------------------------------------------------------------------------------
// Histories: each brings a change (requested by alice) into the status it is named for.
// Prerequisites of the next step are met where the status allows (checklist done once scheduled,
// a passing verification once in progress); the post-implementation review and the
// retrospective decision are left out of `implemented` so that they can still be recorded.

export const NORMAL_STATUSES = [
  'in-review',
  'changes-requested',
  'awaiting-approval',
  'approved',
  'rejected',
  'scheduled',
  'in-progress',
  'implemented',
  'closed',
  'cancelled',
] as const satisfies readonly ChangeStatus[];
export const EMERGENCY_STATUSES = [
  'in-progress',
  'implemented',
  'closed',
] as const satisfies readonly ChangeStatus[];
export const STANDARD_STATUSES = [
  'approved',
  'scheduled',
  'in-progress',
  'implemented',
  'closed',
  'cancelled',
] as const satisfies readonly ChangeStatus[];

export type NormalStatus = (typeof NORMAL_STATUSES)[number];
export type EmergencyStatus = (typeof EMERGENCY_STATUSES)[number];
export type StandardStatus = (typeof STANDARD_STATUSES)[number];

export interface NormalHistoryOptions {
  risk?: RiskLevel;
  /** Whether the schedule asks for a maintenance window (then its checklist item is done too). */
  maintenanceWindow?: boolean;
}

export const normalHistory = (
  status: NormalStatus,
  options: NormalHistoryOptions = {},
): ChangeRequestEvent[] => {
  const risk = options.risk ?? 'low';
  const maintenanceWindow = options.maintenanceWindow ?? false;
  const h = (s: NormalStatus) => normalHistory(s, options);
  switch (status) {
    case 'in-review':
      return [submitted('normal', normalRequest(risk))];
    case 'changes-requested':
      return [
        ...h('in-review'),
        reviewed('technical', 'request-changes'),
        event('ChangesRequested', actors.tom, {
          kind: 'technical',
          notes: 'technical review: request-changes',
        }),
      ];
    case 'awaiting-approval':
      return [...h('in-review'), ...allReviewsApproved(risk)];
    case 'approved':
      return [...h('awaiting-approval'), approvedBy(approverFor(risk), risk)];
    case 'rejected':
      return [
        ...h('awaiting-approval'),
        event('ChangeRejected', approverFor(risk), { stage: 'approval', reason: 'Not this quarter' }),
      ];
    case 'scheduled':
      return [
        ...h('approved'),
        scheduledEvent(maintenanceWindow),
        ...checklistDone(
          maintenanceWindow ? [...BASE_CHECKLIST, 'maintenance-window-scheduled'] : BASE_CHECKLIST,
        ),
      ];
    case 'in-progress':
      return [...h('scheduled'), started(), verified()];
    case 'implemented':
      return [...h('in-progress'), completed()];
    case 'closed':
      return [...h('implemented'), postImplementationReviewed(), closed()];
    case 'cancelled':
      return [...h('approved'), cancelled('approved')];
  }
};

export const emergencyHistory = (
  status: EmergencyStatus,
  request: ChangeRequestFields = emergencyRequest(),
): ChangeRequestEvent[] => {
  switch (status) {
    case 'in-progress':
      return [submitted('emergency', request), emergencyStarted(), verified()];
    case 'implemented':
      return [...emergencyHistory('in-progress', request), completed()];
    case 'closed':
      return [
        ...emergencyHistory('implemented', request),
        postImplementationReviewed(),
        retrospectiveDecided(),
        closed(),
      ];
  }
};

export const standardHistory = (status: StandardStatus): ChangeRequestEvent[] => {
  switch (status) {
    case 'approved':
      return [
        submitted('standard', standardRequest()),
        event('ChangePreApproved', actors.alice, {
          templateId: TEMPLATE_ID,
          rule: 'standard-change-template',
        }),
      ];
    case 'scheduled':
      return [...standardHistory('approved'), scheduledEvent(), ...checklistDone()];
    case 'in-progress':
      return [...standardHistory('scheduled'), started(), verified()];
    case 'implemented':
      return [...standardHistory('in-progress'), completed()];
    case 'closed':
      return [...standardHistory('implemented'), postImplementationReviewed(), closed()];
    case 'cancelled':
      return [...standardHistory('approved'), cancelled('approved')];
  }
};

// ---------------------------------------------------------------------------------------------
// Standard change templates (as the submission's context carries them)

export const templateCreated = (by: Actor = actors.lena): StandardTemplateEvent => ({
  type: 'StandardTemplateCreated',
  data: {
    templateId: TEMPLATE_ID,
    name: templateRef.name,
    description: 'Deploy an LXC container from the golden image',
    procedure: [...TEMPLATE_PROCEDURE],
    systemsScope: ['pve-node-01', 'pve-node-02'],
    by: actorRef(by),
    at: T0,
  },
});

export const templateRetired = (by: Actor = actors.lena): StandardTemplateEvent => ({
  type: 'StandardTemplateRetired',
  data: { reason: 'Replaced by the VM template', by: actorRef(by), at: T0 },
});

export const templateState = (events: readonly StandardTemplateEvent[]): StandardTemplateState =>
  fold(evolveStandardTemplate, initialStandardTemplateState(), events);

export const activeTemplate = (): StandardTemplateState => templateState([templateCreated()]);
export const retiredTemplate = (): StandardTemplateState =>
  templateState([templateCreated(), templateRetired()]);
