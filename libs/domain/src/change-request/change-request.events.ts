import type { ActorRef } from '../shared/actor';
import type { DomainEvent } from '../shared/decider';
import type {
  ApprovalLevel,
  ChangeRequestFields,
  ChangeStatus,
  ChangeType,
  ChecklistItem,
  IssueSeverity,
  Outcome,
  RetrospectiveDecision,
  ReviewKind,
  ReviewVerdict,
  RiskLevel,
} from './change-request.types';

/** Every change event says who and when inside its data, so the record reads on its own. */
interface Stamped {
  by: ActorRef;
  at: string;
}

export type ChangeSubmitted = DomainEvent<
  'ChangeSubmitted',
  Stamped & {
    changeId: string;
    changeType: ChangeType;
    request: ChangeRequestFields;
    standardTemplate?: { id: string; name: string; version: number };
  }
>;
/** A standard change is approved by its template, not by a person. */
export type ChangePreApproved = DomainEvent<
  'ChangePreApproved',
  Stamped & { templateId: string; rule: 'standard-change-template' }
>;
export type ChangeAmended = DomainEvent<
  'ChangeAmended',
  Stamped & {
    changes: Partial<ChangeRequestFields>;
    previous: Partial<ChangeRequestFields>;
    /** Reviews made void by this amendment (normal changes must be reviewed again). */
    voidedReviews: ReviewKind[];
    /**
     * The retrospective approval this amendment of an emergency made void (schema 6): it judged
     * the request as it was, so management decides again. (A rejection stands.)
     */
    voidedRetrospectiveDecision?: {
      decision: RetrospectiveDecision;
      comment: string;
      by: ActorRef;
      at: string;
    };
    statusBefore: ChangeStatus;
    statusAfter: ChangeStatus;
  }
>;
export type ReviewRecorded = DomainEvent<
  'ReviewRecorded',
  Stamped & {
    kind: ReviewKind;
    verdict: ReviewVerdict;
    notes: string;
    criteria: Record<string, string>;
    /**
     * The approval of this kind it overrules (schema 4): a reviewer of the kind found a problem
     * after it was approved, while the change was still in review.
     */
    supersedes?: { verdict: ReviewVerdict; by: ActorRef; at: string };
  }
>;
export type ReviewsCompleted = DomainEvent<
  'ReviewsCompleted',
  Stamped & { riskLevel: RiskLevel; requiredApproval: ApprovalLevel; rule: string }
>;
export type ChangesRequested = DomainEvent<'ChangesRequested', Stamped & { kind: ReviewKind; notes: string }>;
export type ChangeRejected = DomainEvent<
  'ChangeRejected',
  Stamped & {
    stage: 'review' | 'approval';
    kind?: ReviewKind;
    /** At the approval stage: the level that decided, the risk it followed, and its rule. */
    level?: ApprovalLevel;
    riskLevel?: RiskLevel;
    rule?: string;
    reason: string;
  }
>;
export type ChangeApproved = DomainEvent<
  'ChangeApproved',
  /** `rule`: in events since 2026-11-27 (older ones name it only in ReviewsCompleted). */
  Stamped & { level: ApprovalLevel; riskLevel: RiskLevel; rule?: string; comment?: string }
>;
export type ChangeScheduled = DomainEvent<
  'ChangeScheduled',
  Stamped & {
    plannedStart: string;
    plannedEnd: string;
    maintenanceWindow: boolean;
    rescheduled: boolean;
    /** A reschedule's previous slot (in events since 2026-11-27). */
    previous?: { plannedStart: string; plannedEnd: string; maintenanceWindow: boolean };
  }
>;
export type ChecklistItemCompleted = DomainEvent<
  'ChecklistItemCompleted',
  Stamped & {
    item: ChecklistItem;
    note?: string;
    /** An item ticked again (confirmed anew, after a reschedule): who ticked it before (since 7). */
    previous?: { by: ActorRef; at: string; note?: string };
  }
>;
export type ImplementationStarted = DomainEvent<
  'ImplementationStarted',
  Stamped & {
    emergency: boolean;
    scheduledStart?: string;
    scheduledEnd?: string;
    /**
     * An emergency's declaration (schema 3): whether its declarer (`by`) holds the implementer
     * role. When not (a requester declared it), the implementer is whoever first records work on
     * it (a step, an issue, a verification or the outcome). Absent before schema 3: `by`.
     */
    byImplementer?: boolean;
  }
>;
export type ImplementationStepRecorded = DomainEvent<
  'ImplementationStepRecorded',
  Stamped & { sequence: number; description: string }
>;
export type ImplementationIssueRecorded = DomainEvent<
  'ImplementationIssueRecorded',
  Stamped & { description: string; severity: IssueSeverity }
>;
export type VerificationRecorded = DomainEvent<
  'VerificationRecorded',
  Stamped & {
    functionalityTested: boolean;
    systemHealthVerified: boolean;
    logsChecked: boolean;
    passed: boolean;
    notes?: string;
    /** A verification recorded again: the one it replaces, which `successful` no longer rests on (since 7). */
    previous?: { passed: boolean; by: ActorRef; at: string };
  }
>;
export type ImplementationCompleted = DomainEvent<
  'ImplementationCompleted',
  Stamped & { outcome: Outcome; notes?: string }
>;
export type PostImplementationReviewRecorded = DomainEvent<
  'PostImplementationReviewRecorded',
  Stamped & {
    documentationUpdated: boolean;
    issues?: string;
    lessonsLearned: string;
    improvements: string[];
  }
>;
export type RetrospectiveDecisionRecorded = DomainEvent<
  'RetrospectiveDecisionRecorded',
  /** `rule`: in events since schema 5 (2026-11-27). */
  Stamped & { decision: RetrospectiveDecision; comment: string; rule?: RetrospectiveRule }
>;
/** `rule`: in events since schema 5 (2026-11-27); what the close needed, by the change's type. */
export type ChangeClosed = DomainEvent<'ChangeClosed', Stamped & { rule?: CloseRule }>;

/** The process rule a retrospective decision follows: an emergency is approved after the fact. */
export type RetrospectiveRule = 'emergency-needs-retrospective-approval-by-management';
/** The process rule a close followed: the post-implementation review, and for an emergency also the retrospective decision. */
export type CloseRule =
  | 'close-needs-post-implementation-review'
  | 'emergency-close-needs-post-implementation-review-and-retrospective-decision';
export type ChangeCancelled = DomainEvent<
  'ChangeCancelled',
  Stamped & { reason: string; statusBefore: ChangeStatus }
>;

export type ChangeRequestEvent =
  | ChangeSubmitted
  | ChangePreApproved
  | ChangeAmended
  | ReviewRecorded
  | ReviewsCompleted
  | ChangesRequested
  | ChangeRejected
  | ChangeApproved
  | ChangeScheduled
  | ChecklistItemCompleted
  | ImplementationStarted
  | ImplementationStepRecorded
  | ImplementationIssueRecorded
  | VerificationRecorded
  | ImplementationCompleted
  | PostImplementationReviewRecorded
  | RetrospectiveDecisionRecorded
  | ChangeClosed
  | ChangeCancelled;

export type ChangeRequestEventType = ChangeRequestEvent['type'];

export const CHANGE_REQUEST_EVENT_TYPES: readonly ChangeRequestEventType[] = [
  'ChangeSubmitted',
  'ChangePreApproved',
  'ChangeAmended',
  'ReviewRecorded',
  'ReviewsCompleted',
  'ChangesRequested',
  'ChangeRejected',
  'ChangeApproved',
  'ChangeScheduled',
  'ChecklistItemCompleted',
  'ImplementationStarted',
  'ImplementationStepRecorded',
  'ImplementationIssueRecorded',
  'VerificationRecorded',
  'ImplementationCompleted',
  'PostImplementationReviewRecorded',
  'RetrospectiveDecisionRecorded',
  'ChangeClosed',
  'ChangeCancelled',
];

/**
 * Implementation work: what only an implementer records, during or right after it. The first
 * of these names an emergency's implementer when its declarer is not one (`byImplementer`).
 */
export const IMPLEMENTATION_WORK_EVENT_TYPES: readonly ChangeRequestEventType[] = [
  'ImplementationStepRecorded',
  'ImplementationIssueRecorded',
  'VerificationRecorded',
  'ImplementationCompleted',
];

/**
 * Bumped when an event's data changes shape; stored in every event's metadata. 2 (2026-11-27):
 * ChangeApproved and ChangeRejected at the approval stage name `level`, `riskLevel` and `rule`;
 * a rescheduling ChangeScheduled names the `previous` slot. Version 1 events lack them.
 * 3 (2026-11-27): an emergency's ImplementationStarted says `byImplementer`.
 * 4 (2026-11-27): a ReviewRecorded that overrules an approval of its kind names it (`supersedes`).
 * 5 (2026-11-27): RetrospectiveDecisionRecorded and ChangeClosed name their `rule`.
 * 6 (2026-11-29): an emergency's ChangeAmended after its retrospective approval names the approval
 * it made void (`voidedRetrospectiveDecision`; until then such an amendment was refused).
 * 7 (2026-11-29): a checklist item ticked again and a verification recorded again name the one
 * they replace (`previous`).
 */
export const CHANGE_REQUEST_SCHEMA_VERSION = 7;
