import {
  type ChangeRequestFields,
  type ChangeType,
  type Outcome,
  statusOnSubmission,
} from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { addBusinessDays } from './business-days';
import { changeIdOf, instantOf, type Projection } from './projection';

/**
 * The step an approved normal or standard change waits for, in the process's order: scheduled,
 * started, completed (its outcome recorded), reviewed after implementation, closed.
 */
export const FOLLOW_UP_STEPS = [
  'schedule',
  'start',
  'completion',
  'post-implementation-review',
  'close',
] as const;
export type FollowUpStep = (typeof FOLLOW_UP_STEPS)[number];

/** The plan and what became of it: kept by the read model, shown by each item. */
export interface FollowUpTimes {
  readonly proposedStart: string | null;
  readonly plannedStart: string | null;
  readonly plannedEnd: string | null;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly outcome: Outcome | null;
}

/**
 * One per normal or standard change (emergencies have their retrospective queue). `open` while
 * it waits for one of FOLLOW_UP_STEPS, that is from its approval until it is closed or
 * cancelled; `since`: when it began to wait for that step.
 */
export interface FollowUpDocument extends ReadModelDocument, FollowUpTimes {
  readonly changeId: string;
  readonly title: string;
  readonly type: Exclude<ChangeType, 'emergency'>;
  readonly riskLevel: string | null;
  readonly priority: string;
  readonly status: string;
  readonly waitingFor: FollowUpStep | null;
  readonly since: string | null;
  readonly open: boolean;
}

type Draft = Omit<FollowUpDocument, '_position'>;

/**
 * As `toISOString` writes it, so that due dates compare and read alike whatever the client sent;
 * a text no Date reads (an early release took ISO week dates) as it is: a projection that threw
 * would stop every read model.
 */
const instantOrText = (text: string): string => (Number.isNaN(Date.parse(text)) ? text : instantOf(text));
const instantOrNull = (text: string | undefined): string | null =>
  text === undefined ? null : instantOrText(text);

/** The change now waits for `step` (from `at`), unless it already did: then since stays. */
const waitFor = (doc: Draft, step: FollowUpStep, status: string, at: string): Draft => ({
  ...doc,
  status,
  waitingFor: step,
  since: doc.waitingFor === step ? doc.since : at,
  open: true,
});

const done = (doc: Draft, status: string): Draft => ({
  ...doc,
  status,
  waitingFor: null,
  since: null,
  open: false,
});

/**
 * The facts only: when a step is due depends on the time of the question, and the review's on
 * POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS, so both are computed when asked (`toFollowUpItem`).
 */
export const followUpsProjection: Projection<FollowUpDocument> = {
  collection: {
    name: 'follow_ups',
    fields: { open: 'boolean', waitingFor: 'string', since: 'string' },
    indexes: [
      ['open', 'since'],
      ['open', 'waitingFor', 'since'],
    ],
  },
  documentId: changeIdOf,
  evolve: (doc, event) => {
    const d = event.data as Record<string, unknown>;
    const at = d.at as string;
    if (event.type === 'ChangeSubmitted') {
      const type = d.changeType as ChangeType;
      if (type === 'emergency') return undefined;
      const request = d.request as ChangeRequestFields;
      return {
        id: d.changeId as string,
        changeId: d.changeId as string,
        title: request.title,
        type,
        riskLevel: request.risk?.level ?? null,
        priority: request.priority,
        status: statusOnSubmission(type),
        waitingFor: null,
        since: null,
        proposedStart: instantOrNull(request.timeline?.proposedStart),
        plannedStart: null,
        plannedEnd: null,
        startedAt: null,
        endedAt: null,
        outcome: null,
        open: false,
      };
    }
    if (!doc) return undefined;
    switch (event.type) {
      case 'ChangeAmended': {
        const changes = d.changes as Partial<ChangeRequestFields>;
        return {
          ...doc,
          title: changes.title ?? doc.title,
          riskLevel: changes.risk?.level ?? doc.riskLevel,
          priority: changes.priority ?? doc.priority,
          proposedStart: changes.timeline ? instantOrNull(changes.timeline.proposedStart) : doc.proposedStart,
          status: (d.statusAfter as string | undefined) ?? doc.status,
        };
      }
      case 'ChangePreApproved':
      case 'ChangeApproved':
        return waitFor(doc, 'schedule', 'approved', at);
      case 'ChangeScheduled':
        return {
          ...waitFor(doc, 'start', 'scheduled', at),
          plannedStart: instantOrText(d.plannedStart as string),
          plannedEnd: instantOrText(d.plannedEnd as string),
        };
      case 'ImplementationStarted':
        return { ...waitFor(doc, 'completion', 'in-progress', at), startedAt: at };
      case 'ImplementationCompleted':
        return {
          ...waitFor(doc, 'post-implementation-review', 'implemented', at),
          endedAt: at,
          outcome: d.outcome as Outcome,
        };
      case 'PostImplementationReviewRecorded':
        return waitFor(doc, 'close', 'implemented', at);
      case 'ChangeClosed':
        return done(doc, 'closed');
      case 'ChangeCancelled':
        return done(doc, 'cancelled');
      case 'ChangeRejected':
        return done(doc, 'rejected');
      case 'ChangesRequested':
        return { ...doc, status: 'changes-requested' };
      case 'ReviewsCompleted':
        return { ...doc, status: 'awaiting-approval' };
      default:
        return undefined;
    }
  },
};

/** A follow-up as `GET /follow-ups` answers it. */
export interface FollowUpItem extends FollowUpTimes {
  readonly changeId: string;
  readonly title: string;
  readonly type: string;
  readonly riskLevel: string | null;
  readonly priority: string;
  readonly status: string;
  readonly waitingFor: FollowUpStep;
  readonly since: string;
  readonly dueAt: string | null;
  readonly overdue: boolean;
}

/**
 * When the step is due: scheduling by the request's proposed start, the start by the planned
 * start, the completion by the planned end, the review and the close `reviewDueBusinessDays`
 * business days after the implementation ended. `overdue`: due before `now`.
 */
export const toFollowUpItem = (
  doc: FollowUpDocument,
  now: Date,
  reviewDueBusinessDays: number,
): FollowUpItem => {
  const waitingFor = doc.waitingFor!;
  const dueAt =
    waitingFor === 'schedule'
      ? doc.proposedStart
      : waitingFor === 'start'
        ? doc.plannedStart
        : waitingFor === 'completion'
          ? doc.plannedEnd
          : doc.endedAt === null
            ? null
            : addBusinessDays(doc.endedAt, reviewDueBusinessDays);
  return {
    changeId: doc.changeId,
    title: doc.title,
    type: doc.type,
    riskLevel: doc.riskLevel,
    priority: doc.priority,
    status: doc.status,
    waitingFor,
    since: doc.since!,
    dueAt,
    overdue: dueAt !== null && Date.parse(dueAt) < now.getTime(),
    proposedStart: doc.proposedStart,
    plannedStart: doc.plannedStart,
    plannedEnd: doc.plannedEnd,
    startedAt: doc.startedAt,
    endedAt: doc.endedAt,
    outcome: doc.outcome,
  };
};
