import type { ActorRef } from '../shared/actor';
import type { ChangeRequestEvent } from './change-request.events';
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
} from './change-request.types';

export interface ReviewRecord {
  kind: ReviewKind;
  verdict: ReviewVerdict;
  notes: string;
  criteria: Record<string, string>;
  by: ActorRef;
  at: string;
}

export interface ChangeRequestState {
  exists: boolean;
  id: string;
  type: ChangeType;
  status: ChangeStatus;
  /** Number of events in the stream: the contract's `version`. */
  version: number;
  request: ChangeRequestFields;
  standardTemplate?: { id: string; name: string; version: number };
  requestedBy?: ActorRef;
  submittedAt?: string;
  updatedAt?: string;
  /** Reviews that count now; an amendment of a normal change empties this. */
  reviews: Partial<Record<ReviewKind, ReviewRecord>>;
  /** Reviews made void by amendments, kept for the record. */
  voidedReviews: ReviewRecord[];
  requiredApproval?: ApprovalLevel;
  awaitingApprovalSince?: string;
  approval?: {
    by: ActorRef | null;
    at: string;
    level: ApprovalLevel | 'standard-template';
    comment?: string;
  };
  rejection?: { stage: 'review' | 'approval'; kind?: ReviewKind; reason: string; by: ActorRef; at: string };
  schedule?: {
    plannedStart: string;
    plannedEnd: string;
    maintenanceWindow: boolean;
    by: ActorRef;
    at: string;
  };
  checklist: Partial<Record<ChecklistItem, { by: ActorRef; at: string; note?: string }>>;
  implementation: {
    startedBy?: ActorRef;
    startedAt?: string;
    /**
     * An emergency declared by someone without the implementer role (schema 3): its implementer
     * is not `startedBy` but `implementer`, the first to record work on it. Absent otherwise, and
     * in states folded (and stored by the read models) before schema 3: there `startedBy` is.
     */
    implementerPending?: true;
    implementer?: ActorRef;
    /**
     * Ids of everyone who started the work or recorded any of it (steps, issues, verifications,
     * the outcome): segregation of duties keeps them from judging it afterwards. An emergency's
     * declarer without the implementer role did not start the work.
     */
    workedBy?: string[];
    steps: { sequence: number; description: string; by: ActorRef; at: string }[];
    issues: { description: string; severity: IssueSeverity; by: ActorRef; at: string }[];
    verification?: {
      functionalityTested: boolean;
      systemHealthVerified: boolean;
      logsChecked: boolean;
      passed: boolean;
      notes?: string;
      by: ActorRef;
      at: string;
    };
    outcome?: Outcome;
    outcomeNotes?: string;
    completedBy?: ActorRef;
    completedAt?: string;
  };
  postImplementationReview?: {
    documentationUpdated: boolean;
    issues?: string;
    lessonsLearned: string;
    improvements: string[];
    by: ActorRef;
    at: string;
  };
  retrospectiveDecision?: { decision: RetrospectiveDecision; comment: string; by: ActorRef; at: string };
  closedAt?: string;
  closedBy?: ActorRef;
  cancellation?: { reason: string; by: ActorRef; at: string; statusBefore: ChangeStatus };
}

/** Normal changes go to review; standard ones are approved by their template; emergencies are under way. */
export const statusOnSubmission = (type: ChangeType): ChangeStatus =>
  type === 'normal' ? 'in-review' : type === 'standard' ? 'approved' : 'in-progress';

export const initialChangeRequestState = (): ChangeRequestState => ({
  exists: false,
  id: '',
  type: 'normal',
  status: 'in-review',
  version: 0,
  request: { title: '', description: '', reason: '', priority: 'low', systemsAffected: [] },
  reviews: {},
  voidedReviews: [],
  checklist: {},
  implementation: { steps: [], issues: [] },
});

/**
 * Implementation work by `by` (one of IMPLEMENTATION_WORK_EVENT_TYPES, each of whose cases below
 * calls this): the implementer, if one is still to be named (see `implementerPending`), and
 * `by` among those who did the work.
 */
const recordWork = (state: ChangeRequestState, by: ActorRef) => {
  const workedBy = state.implementation.workedBy ?? [];
  return {
    ...(state.implementation.implementerPending && !state.implementation.implementer
      ? { implementer: by }
      : {}),
    workedBy: workedBy.includes(by.id) ? workedBy : [...workedBy, by.id],
  };
};

/**
 * Who implements the change: whoever started it, or, for an emergency declared by someone
 * without the implementer role, the first to record work on it (absent until then).
 */
export const implementerOf = (state: ChangeRequestState): ActorRef | undefined =>
  state.implementation.implementerPending ? state.implementation.implementer : state.implementation.startedBy;

/** Pure fold of one event; never throws for a well-formed history. */
export const evolveChangeRequest = (
  state: ChangeRequestState,
  event: ChangeRequestEvent,
): ChangeRequestState => {
  // One copy of the state per event (folded for every command and by every replay); each case
  // then sets its fields on that fresh copy.
  const next: ChangeRequestState = { ...state, version: state.version + 1, updatedAt: event.data.at };
  switch (event.type) {
    case 'ChangeSubmitted': {
      const d = event.data;
      return Object.assign(next, {
        exists: true,
        id: d.changeId,
        type: d.changeType,
        status: statusOnSubmission(d.changeType),
        request: d.request,
        standardTemplate: d.standardTemplate,
        requestedBy: d.by,
        submittedAt: d.at,
      });
    }
    case 'ChangePreApproved':
      return Object.assign(next, {
        status: 'approved',
        approval: { by: null, at: event.data.at, level: 'standard-template' },
      });
    case 'ChangeAmended': {
      const d = event.data;
      const voided = d.voidedReviews
        .map((kind) => state.reviews[kind])
        .filter((r): r is ReviewRecord => r !== undefined);
      return Object.assign(next, {
        request: { ...state.request, ...d.changes },
        status: d.statusAfter,
        reviews: d.voidedReviews.length > 0 ? {} : state.reviews,
        voidedReviews: [...state.voidedReviews, ...voided],
        retrospectiveDecision: d.voidedRetrospectiveDecision ? undefined : state.retrospectiveDecision,
        requiredApproval: d.statusAfter === 'in-review' ? undefined : state.requiredApproval,
        awaitingApprovalSince: d.statusAfter === 'in-review' ? undefined : state.awaitingApprovalSince,
      });
    }
    case 'ReviewRecorded': {
      const { kind, verdict, notes, criteria, by, at } = event.data;
      // An overruled approval (schema 4) no longer counts: kept with the voided reviews.
      const overruled = state.reviews[kind];
      return Object.assign(next, {
        reviews: { ...state.reviews, [kind]: { kind, verdict, notes, criteria, by, at } },
        ...(overruled ? { voidedReviews: [...state.voidedReviews, overruled] } : {}),
      });
    }
    case 'ReviewsCompleted':
      return Object.assign(next, {
        status: 'awaiting-approval',
        requiredApproval: event.data.requiredApproval,
        awaitingApprovalSince: event.data.at,
      });
    case 'ChangesRequested':
      return Object.assign(next, { status: 'changes-requested' });
    case 'ChangeRejected': {
      const { stage, kind, reason, by, at } = event.data;
      return Object.assign(next, { status: 'rejected', rejection: { stage, kind, reason, by, at } });
    }
    case 'ChangeApproved': {
      const { by, at, level, comment } = event.data;
      return Object.assign(next, { status: 'approved', approval: { by, at, level, comment } });
    }
    case 'ChangeScheduled': {
      const { plannedStart, plannedEnd, maintenanceWindow, by, at } = event.data;
      return Object.assign(next, {
        status: 'scheduled',
        schedule: { plannedStart, plannedEnd, maintenanceWindow, by, at },
      });
    }
    case 'ChecklistItemCompleted': {
      const { item, note, by, at } = event.data;
      return Object.assign(next, { checklist: { ...state.checklist, [item]: { by, at, note } } });
    }
    case 'ImplementationStarted':
      return Object.assign(next, {
        status: 'in-progress',
        implementation: {
          ...state.implementation,
          startedBy: event.data.by,
          startedAt: event.data.at,
          ...(event.data.byImplementer === false
            ? { implementerPending: true as const, workedBy: [] }
            : { workedBy: [event.data.by.id] }),
        },
      });
    case 'ImplementationStepRecorded': {
      const { sequence, description, by, at } = event.data;
      return Object.assign(next, {
        implementation: {
          ...state.implementation,
          steps: [...state.implementation.steps, { sequence, description, by, at }],
          ...recordWork(state, by),
        },
      });
    }
    case 'ImplementationIssueRecorded': {
      const { description, severity, by, at } = event.data;
      return Object.assign(next, {
        implementation: {
          ...state.implementation,
          issues: [...state.implementation.issues, { description, severity, by, at }],
          ...recordWork(state, by),
        },
      });
    }
    case 'VerificationRecorded': {
      const { functionalityTested, systemHealthVerified, logsChecked, passed, notes, by, at } = event.data;
      return Object.assign(next, {
        implementation: {
          ...state.implementation,
          verification: { functionalityTested, systemHealthVerified, logsChecked, passed, notes, by, at },
          ...recordWork(state, by),
        },
      });
    }
    case 'ImplementationCompleted':
      return Object.assign(next, {
        status: 'implemented',
        implementation: {
          ...state.implementation,
          outcome: event.data.outcome,
          outcomeNotes: event.data.notes,
          completedBy: event.data.by,
          completedAt: event.data.at,
          ...recordWork(state, event.data.by),
        },
      });
    case 'PostImplementationReviewRecorded': {
      const { documentationUpdated, issues, lessonsLearned, improvements, by, at } = event.data;
      return Object.assign(next, {
        postImplementationReview: { documentationUpdated, issues, lessonsLearned, improvements, by, at },
      });
    }
    case 'RetrospectiveDecisionRecorded': {
      const { decision, comment, by, at } = event.data;
      return Object.assign(next, { retrospectiveDecision: { decision, comment, by, at } });
    }
    case 'ChangeClosed':
      return Object.assign(next, { status: 'closed', closedAt: event.data.at, closedBy: event.data.by });
    case 'ChangeCancelled': {
      const { reason, by, at, statusBefore } = event.data;
      return Object.assign(next, { status: 'cancelled', cancellation: { reason, by, at, statusBefore } });
    }
    default: {
      // Unknown event types (from a newer schema) still count towards the version.
      const _exhaustive: never = event;
      void _exhaustive;
      return next;
    }
  }
};
