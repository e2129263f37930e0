import { requiredChecklistItems, missingRequestFields } from './change-request.decider';
import { type ChangeRequestState, implementerOf } from './change-request.state';
import { CHECKLIST_ITEMS, LATER_FIELDS } from './change-request.types';

/** Template fields a change may not hold yet (an emergency's later ones; `emergency` elsewhere): null, not left out. */
const NOT_FILLED_IN = Object.fromEntries([...LATER_FIELDS, 'emergency'].map((field) => [field, null])) as {
  readonly [F in (typeof LATER_FIELDS)[number] | 'emergency']: null;
};

/**
 * The whole change as clients see it (GET /changes/:id): the template's fields at the top level,
 * then everything the process recorded. Pure, so the read model and the stream fold agree.
 */
export const toChangeView = (s: ChangeRequestState) => {
  // The checklist is what /start needs: an emergency is implemented at once and never starts.
  const required = s.type === 'emergency' ? [] : requiredChecklistItems(s);
  // An emergency's approval is management's retrospective one (the process's "post-implementation
  // approval"); a retrospective rejection approves nothing.
  const retrospectiveApproval =
    s.type === 'emergency' && s.retrospectiveDecision?.decision === 'approve'
      ? s.retrospectiveDecision
      : undefined;
  return {
    id: s.id,
    type: s.type,
    status: s.status,
    version: s.version,
    ...NOT_FILLED_IN,
    ...s.request,
    // the template field as submitted (the contract's `standardTemplateId`), and what it named
    standardTemplateId: s.standardTemplate?.id ?? null,
    standardTemplate: s.standardTemplate ?? null,
    requestedBy: s.requestedBy ?? null,
    reviews: Object.values(s.reviews),
    voidedReviews: s.voidedReviews,
    requiredApproval: s.type === 'normal' ? (s.requiredApproval ?? null) : null,
    approval: s.approval ?? null,
    approvedBy: s.approval?.by ?? retrospectiveApproval?.by ?? null,
    rejection: s.rejection ?? null,
    schedule: s.schedule ?? null,
    checklist: CHECKLIST_ITEMS.map((item) => ({
      item,
      required: required.includes(item),
      done: s.checklist[item] !== undefined,
      ...(s.checklist[item] ?? {}),
    })),
    implementedBy: implementerOf(s) ?? null,
    steps: s.implementation.steps,
    issues: s.implementation.issues,
    verification: s.implementation.verification ?? null,
    outcome: s.implementation.outcome ?? null,
    outcomeNotes: s.implementation.outcomeNotes ?? null,
    postImplementationReview: s.postImplementationReview ?? null,
    retrospectiveDecision: s.retrospectiveDecision ?? null,
    missingRequestFields: s.type === 'emergency' ? missingRequestFields(s.request) : [],
    cancellation: s.cancellation ?? null,
    timestamps: {
      submittedAt: s.submittedAt ?? null,
      awaitingApprovalSince: s.awaitingApprovalSince ?? null,
      approvedAt: s.approval?.at ?? retrospectiveApproval?.at ?? null,
      scheduledAt: s.schedule?.at ?? null,
      implementationStartedAt: s.implementation.startedAt ?? null,
      implementedAt: s.implementation.completedAt ?? null,
      closedAt: s.closedAt ?? null,
      cancelledAt: s.cancellation?.at ?? null,
      updatedAt: s.updatedAt ?? null,
    },
  };
};

export type ChangeView = ReturnType<typeof toChangeView>;
