import {
  type ActorRef,
  type ApprovalLevel,
  type ChangeRequestFields,
  type ChangeStatus,
  type ChangeType,
  type EmergencyCategory,
  hasVisibleText,
  IMPLEMENTATION_WORK_EVENT_TYPES,
  type Outcome,
  type RetrospectiveDecision,
  type RiskLevel,
  statusOnSubmission,
} from '@changeledger/domain';
import type { RecordedEvent } from '@changeledger/event-store';
import type { ReadModelDocument } from '../read-model-store.port';
import { statusAfterEvent } from './change-status';
import { changeIdOf, type Draft, instantOf, type Projection } from './projection';

/**
 * A segregation-of-duties rule of the contract, checked here against the recorded events on
 * their own (not trusting the decider that should have refused them), so the report can prove
 * that none was broken — or name the event that broke it.
 */
export type DutyRule =
  | 'requester-reviewed'
  | 'requester-decided-approval'
  | 'requester-decided-retrospective'
  /** An emergency's retrospective decision by someone who worked on its implementation. */
  | 'implementer-decided-retrospective'
  | 'approver-started-implementation'
  /**
   * Implementation work (a step, an issue, a verification, the completion) by the approver (of an
   * emergency: an issue recorded by its retrospective approver).
   */
  | 'approver-implemented'
  /** The person the event names is not the authenticated sender: the record contradicts itself. */
  | 'recorded-actor-mismatch';

export interface DutyException {
  readonly rule: DutyRule;
  readonly actor: ActorRef;
  readonly eventType: string;
  readonly revision: string;
  readonly at: string;
}

/** A stretch of time the change waited for review or approval (in review, changes requested, awaiting approval). */
export interface ReviewInterval {
  readonly from: string;
  readonly to: string | null;
}

/**
 * The compliance report's facts about one change: when each control-relevant step happened and
 * who did it. Times are kept (not verdicts) so a report can be computed for any period and as
 * of any moment without reading the event store.
 */
/** A retrospective decision: when, by whom, which. */
export interface RetrospectiveFact {
  readonly at: string;
  readonly by: ActorRef;
  readonly decision: RetrospectiveDecision;
}

export interface ComplianceFactsDocument extends ReadModelDocument {
  readonly changeId: string;
  readonly title: string;
  readonly type: ChangeType;
  readonly category: EmergencyCategory | null;
  readonly status: ChangeStatus;
  readonly riskLevel: RiskLevel | null;
  readonly requestedBy: ActorRef;
  readonly submittedAt: string;
  readonly approval: {
    readonly at: string;
    readonly by: ActorRef | null;
    readonly level: ApprovalLevel | 'standard-template';
  } | null;
  readonly rejection: { readonly at: string; readonly stage: 'review' | 'approval' } | null;
  readonly cancelledAt: string | null;
  readonly schedule: { readonly plannedStart: string; readonly plannedEnd: string } | null;
  readonly implementationStart: { readonly at: string; readonly by: ActorRef } | null;
  /**
   * Ids of everyone who started the implementation or recorded any of its work (an emergency's
   * declarer without the implementer role did not start it). Absent from facts of version 2,
   * which did not track them.
   */
  readonly implementationWorkers?: readonly string[];
  readonly completion: { readonly at: string; readonly outcome: Outcome } | null;
  /**
   * When the checklist item `stakeholders-notified` was first recorded (null: never). Absent from
   * facts of version 4 and older, which did not track it (then unknown, never a finding).
   */
  readonly stakeholdersNotifiedAt?: string | null;
  /**
   * When the first implementation step was recorded (null: never; "document steps taken").
   * Absent from facts of version 6 and older, which did not track it (then unknown, never a finding).
   */
  readonly firstStepAt?: string | null;
  /**
   * When what went wrong was first written down: an issue recorded, notes on a failed
   * verification or on the completion, or issues named by the post-implementation review (null:
   * never; "document any issues"). Absent from facts of version 8 and older, which did not track
   * it (then unknown, never a finding).
   */
  readonly issuesDocumentedAt?: string | null;
  readonly postImplementationReview: {
    readonly at: string;
    readonly by: ActorRef;
    readonly lessonsLearned: string;
    readonly improvements: readonly string[];
    readonly issues: string | null;
    readonly documentationUpdated: boolean;
  } | null;
  readonly retrospective: RetrospectiveFact | null;
  /**
   * Retrospective approvals an amendment made void (schema 6), with the time it did: a report as
   * of before then still counts each. Absent from documents written before.
   */
  readonly voidedRetrospectives?: readonly (RetrospectiveFact & { readonly voidedAt: string })[];
  readonly reviewIntervals: readonly ReviewInterval[];
  /** Times of the events a segregation-of-duties rule applies to: what the check covered. */
  readonly controlEvents: readonly string[];
  readonly dutyExceptions: readonly DutyException[];
  readonly closedAt: string | null;
  /** The newest event's time: a report only needs changes active in its period, or still open. */
  readonly lastActivityAt: string;
  /** Not yet closed, cancelled or rejected: it may still be a finding in a later period. */
  readonly open: boolean;
}

const WORK_EVENTS = new Set<string>(IMPLEMENTATION_WORK_EVENT_TYPES);
const withWorker = (workers: readonly string[], id: string) =>
  workers.includes(id) ? workers : [...workers, id];
const REVIEW_STAGE: readonly ChangeStatus[] = ['in-review', 'changes-requested', 'awaiting-approval'];
const CONTROL_EVENTS = [
  'ReviewRecorded',
  'ChangeApproved',
  'ChangeRejected',
  'RetrospectiveDecisionRecorded',
  'ImplementationStarted',
  ...IMPLEMENTATION_WORK_EVENT_TYPES,
];

/**
 * Who approved the change: its approver, or an emergency's retrospective approver (the decider
 * keeps either from its implementation work); null for a standard change or none yet.
 */
const approverOf = (doc: ComplianceFactsDocument): ActorRef | null =>
  doc.approval?.by ?? (doc.retrospective?.decision === 'approve' ? doc.retrospective.by : null);

/**
 * An event a segregation-of-duties rule judges (what `segregationOfDutiesChecks` counts): not a
 * review's rejection (its ReviewRecorded is the one judged), nor a start or implementation work
 * without an approver to compare with (standard changes, emergencies before their retrospective
 * approval).
 */
const isJudgedControlEvent = (
  doc: ComplianceFactsDocument,
  event: RecordedEvent,
  d: Record<string, unknown>,
) => {
  if (!CONTROL_EVENTS.includes(event.type)) return false;
  if (event.type === 'ChangeRejected') return d.stage === 'approval';
  if (event.type === 'ImplementationStarted')
    return doc.approval?.by !== undefined && doc.approval?.by !== null;
  if (WORK_EVENTS.has(event.type)) return approverOf(doc) !== null;
  return true;
};

/** Schedules keep the instant the user gave in any ISO form; compare them in one form. */
const instant = instantOf;
const FINAL: readonly ChangeStatus[] = ['closed', 'cancelled', 'rejected'];

/**
 * The rule an event breaks, judged by who really sent it (the authenticated actor in the
 * metadata), not by the name the decider wrote into the data.
 */
const dutyExceptionOf = (
  doc: ComplianceFactsDocument,
  event: RecordedEvent,
  sender: ActorRef,
): DutyRule | undefined => {
  const d = event.data as Record<string, unknown>;
  const named = d.by as ActorRef | undefined;
  if (named && named.id !== sender.id) return 'recorded-actor-mismatch';
  const byRequester = sender.id === doc.requestedBy.id;
  switch (event.type) {
    case 'ReviewRecorded':
      return byRequester ? 'requester-reviewed' : undefined;
    case 'ChangeApproved':
      return byRequester ? 'requester-decided-approval' : undefined;
    case 'ChangeRejected':
      // A rejecting review is recorded as ReviewRecorded as well: that one counts.
      return byRequester && d.stage === 'approval' ? 'requester-decided-approval' : undefined;
    case 'RetrospectiveDecisionRecorded':
      if (byRequester) return 'requester-decided-retrospective';
      return doc.implementationWorkers?.includes(sender.id) ? 'implementer-decided-retrospective' : undefined;
    case 'ImplementationStarted':
      return doc.approval?.by && doc.approval.by.id === sender.id
        ? 'approver-started-implementation'
        : undefined;
    default:
      return WORK_EVENTS.has(event.type) && approverOf(doc)?.id === sender.id
        ? 'approver-implemented'
        : undefined;
  }
};

/** Opens or closes the review interval when the status enters or leaves the review stage. */
const reviewIntervalsAfter = (
  intervals: readonly ReviewInterval[],
  before: ChangeStatus | undefined,
  after: ChangeStatus,
  at: string,
): readonly ReviewInterval[] => {
  const wasInReview = before !== undefined && REVIEW_STAGE.includes(before);
  const isInReview = REVIEW_STAGE.includes(after);
  if (!wasInReview && isInReview) return [...intervals, { from: at, to: null }];
  if (wasInReview && !isInReview) {
    const last = intervals[intervals.length - 1];
    return [...intervals.slice(0, -1), { from: last.from, to: at }];
  }
  return intervals;
};

const submitted = (event: RecordedEvent, d: Record<string, unknown>): Draft<ComplianceFactsDocument> => {
  const request = d.request as ChangeRequestFields;
  const type = d.changeType as ChangeType;
  const at = d.at as string;
  const status = statusOnSubmission(type);
  return {
    id: d.changeId as string,
    changeId: d.changeId as string,
    title: request.title,
    type,
    category: request.emergency?.category ?? null,
    status,
    riskLevel: request.risk?.level ?? null,
    requestedBy: d.by as ActorRef,
    submittedAt: at,
    approval: null,
    rejection: null,
    cancelledAt: null,
    schedule: null,
    implementationStart: null,
    implementationWorkers: [],
    completion: null,
    stakeholdersNotifiedAt: null,
    firstStepAt: null,
    issuesDocumentedAt: null,
    postImplementationReview: null,
    retrospective: null,
    voidedRetrospectives: [],
    reviewIntervals: reviewIntervalsAfter([], undefined, status, at),
    controlEvents: [],
    dutyExceptions: [],
    closedAt: null,
    lastActivityAt: at,
    open: true,
  };
};

// as the domain counts text (a zero-width space or a braille blank is nothing written)
const hasText = (value: unknown) => typeof value === 'string' && hasVisibleText(value);

/** The facts that keep the time something was first recorded (null: never yet). */
type FirstRecorded = 'stakeholdersNotifiedAt' | 'firstStepAt' | 'issuesDocumentedAt';

/**
 * `at` for `field` when it is the earliest record (imported events need not come in time order);
 * nothing for facts written before `field` was tracked (undefined: unknown, never a finding).
 */
const firstRecorded = (
  doc: ComplianceFactsDocument,
  field: FirstRecorded,
  at: string,
): Partial<ComplianceFactsDocument> => {
  const held = doc[field];
  return held !== undefined && (held === null || at < held) ? { [field]: at } : {};
};

/** The facts one event adds, before the status and interval bookkeeping common to all. */
const factsOf = (
  doc: ComplianceFactsDocument,
  event: RecordedEvent,
  d: Record<string, unknown>,
): Partial<ComplianceFactsDocument> => {
  const at = d.at as string;
  const by = d.by as ActorRef;
  switch (event.type) {
    case 'ChangeAmended': {
      const changes = d.changes as Partial<ChangeRequestFields>;
      return {
        title: changes.title ?? doc.title,
        riskLevel: changes.risk?.level ?? doc.riskLevel,
        category: changes.emergency?.category ?? doc.category,
        // an amendment after the retrospective approval made it void (schema 6): kept with the
        // time, so a report as of before it still counts the approval
        ...(d.voidedRetrospectiveDecision && doc.retrospective
          ? {
              retrospective: null,
              voidedRetrospectives: [
                ...(doc.voidedRetrospectives ?? []),
                { ...doc.retrospective, voidedAt: at },
              ],
            }
          : {}),
      };
    }
    case 'ChangePreApproved':
      return { approval: { at, by: null, level: 'standard-template' } };
    case 'ChangeApproved':
      return { approval: { at, by, level: d.level as ApprovalLevel }, riskLevel: d.riskLevel as RiskLevel };
    case 'ReviewsCompleted':
      return { riskLevel: d.riskLevel as RiskLevel };
    case 'ChangeRejected':
      return { rejection: { at, stage: d.stage as 'review' | 'approval' } };
    case 'ChangeScheduled':
      return {
        schedule: {
          plannedStart: instant(d.plannedStart as string),
          plannedEnd: instant(d.plannedEnd as string),
        },
      };
    case 'ImplementationStarted':
      return {
        implementationStart: { at, by },
        implementationWorkers: d.byImplementer === false ? [] : [by.id],
      };
    case 'ImplementationCompleted':
      return {
        completion: { at, outcome: d.outcome as Outcome },
        ...(hasText(d.notes) ? firstRecorded(doc, 'issuesDocumentedAt', at) : {}),
      };
    case 'ImplementationIssueRecorded':
      return firstRecorded(doc, 'issuesDocumentedAt', at);
    case 'VerificationRecorded':
      // a failed verification's notes say what went wrong
      return d.passed === false && hasText(d.notes) ? firstRecorded(doc, 'issuesDocumentedAt', at) : {};
    case 'ChecklistItemCompleted':
      return d.item === 'stakeholders-notified' ? firstRecorded(doc, 'stakeholdersNotifiedAt', at) : {};
    case 'ImplementationStepRecorded':
      return firstRecorded(doc, 'firstStepAt', at);
    case 'PostImplementationReviewRecorded':
      return {
        ...(hasText(d.issues) ? firstRecorded(doc, 'issuesDocumentedAt', at) : {}),
        postImplementationReview: {
          at,
          by,
          lessonsLearned: d.lessonsLearned as string,
          improvements: (d.improvements as string[] | undefined) ?? [],
          issues: (d.issues as string | undefined) ?? null,
          documentationUpdated: d.documentationUpdated as boolean,
        },
      };
    case 'RetrospectiveDecisionRecorded':
      return { retrospective: { at, by, decision: d.decision as RetrospectiveDecision } };
    case 'ChangeClosed':
      return { closedAt: at };
    case 'ChangeCancelled':
      return { cancelledAt: at };
    default:
      return {};
  }
};

/**
 * `compliance_facts`: one document per change request, the source of
 * `GET /reports/compliance` (never a scan of the event store at request time).
 */
export const complianceFactsProjection: Projection<ComplianceFactsDocument> = {
  collection: {
    name: 'compliance_facts',
    fields: { lastActivityAt: 'string', submittedAt: 'string', open: 'boolean' },
    indexes: [['lastActivityAt'], ['open', 'lastActivityAt']],
  },
  // 2: the segregation-of-duties checks are counted once per review decision and only for
  // starts that had an approver (version 1 counted a rejection twice, and starts of standard
  // changes): facts written by 1 inflate the report's "checked N events". 4: an emergency's
  // retrospective decision by someone who worked on it is an exception (facts of 2 do not know
  // who did, so the check passed it; 3, on main for an hour, knew only the first to record work).
  // 5: when stakeholders were notified (the process's first step of an emergency). 6: the
  // implementation work of an approved change is judged too (by its approver: an exception). 7:
  // when the first implementation step was recorded (facts of 6 and older leave that finding out).
  // 8: an emergency's work after its retrospective approval is judged too (an issue recorded by
  // that approver: an exception). 9: when issues were first written down (facts of 8 and older
  // leave that finding out).
  version: 9,
  documentId: changeIdOf,
  evolve: (doc, event) => {
    const d = event.data as Record<string, unknown>;
    if (event.type === 'ChangeSubmitted') return doc ? undefined : submitted(event, d);
    if (!doc || typeof d.at !== 'string') return undefined;
    const sender = event.metadata.actor;
    const rule = sender ? dutyExceptionOf(doc, event, { id: sender.id, name: sender.name }) : undefined;
    const status = statusAfterEvent(event) ?? doc.status;
    // one fresh copy per event (this runs for every event of every replay)
    return Object.assign({ ...doc }, factsOf(doc, event, d), {
      ...(WORK_EVENTS.has(event.type) && doc.implementationWorkers
        ? { implementationWorkers: withWorker(doc.implementationWorkers, (d.by as ActorRef).id) }
        : {}),
      status,
      reviewIntervals: reviewIntervalsAfter(doc.reviewIntervals, doc.status, status, d.at),
      controlEvents: isJudgedControlEvent(doc, event, d) ? [...doc.controlEvents, d.at] : doc.controlEvents,
      dutyExceptions:
        rule && sender
          ? [
              ...doc.dutyExceptions,
              {
                rule,
                actor: { id: sender.id, name: sender.name },
                eventType: event.type,
                revision: event.revision.toString(),
                at: d.at,
              },
            ]
          : doc.dutyExceptions,
      lastActivityAt: d.at > doc.lastActivityAt ? d.at : doc.lastActivityAt,
      open: !FINAL.includes(status),
    });
  },
};
