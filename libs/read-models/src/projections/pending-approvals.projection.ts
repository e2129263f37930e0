import type { ApprovalLevel, ChangeRequestFields, ChangeType } from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { changeIdOf, type Projection } from './projection';

/**
 * Every normal change has one; `pending` says whether it is awaiting approval now.
 * (Documents are never deleted, so the position guard also covers leaving the queue.)
 */
export interface PendingApprovalDocument extends ReadModelDocument {
  readonly changeId: string;
  readonly title: string;
  readonly riskLevel: string | null;
  readonly priority: string;
  readonly requiredApproval: ApprovalLevel | null;
  readonly requestedBy: { id: string; name: string };
  readonly awaitingSince: string | null;
  readonly proposedStart: string | null;
  readonly pending: boolean;
}

const LEAVES_APPROVAL = new Set(['ChangeApproved', 'ChangeRejected', 'ChangeCancelled', 'ChangesRequested']);

export const pendingApprovalsProjection: Projection<PendingApprovalDocument> = {
  collection: {
    name: 'pending_approvals',
    fields: { pending: 'boolean', requiredApproval: 'string', awaitingSince: 'string' },
    indexes: [
      ['pending', 'awaitingSince'],
      ['pending', 'requiredApproval', 'awaitingSince'],
    ],
  },
  documentId: changeIdOf,
  evolve: (doc, event) => {
    const d = event.data as Record<string, unknown>;
    if (event.type === 'ChangeSubmitted') {
      if ((d.changeType as ChangeType) !== 'normal') return undefined;
      const request = d.request as ChangeRequestFields;
      return {
        id: d.changeId as string,
        changeId: d.changeId as string,
        title: request.title,
        riskLevel: request.risk?.level ?? null,
        priority: request.priority,
        requiredApproval: null,
        requestedBy: d.by as { id: string; name: string },
        awaitingSince: null,
        proposedStart: request.timeline?.proposedStart ?? null,
        pending: false,
      };
    }
    if (!doc) return undefined;
    if (event.type === 'ChangeAmended') {
      const changes = d.changes as Partial<ChangeRequestFields>;
      const backToReview = d.statusAfter === 'in-review';
      return {
        ...doc,
        title: changes.title ?? doc.title,
        riskLevel: changes.risk?.level ?? doc.riskLevel,
        priority: changes.priority ?? doc.priority,
        proposedStart: changes.timeline?.proposedStart ?? doc.proposedStart,
        pending: backToReview ? false : doc.pending,
        requiredApproval: backToReview ? null : doc.requiredApproval,
        awaitingSince: backToReview ? null : doc.awaitingSince,
      };
    }
    if (event.type === 'ReviewsCompleted') {
      return {
        ...doc,
        pending: true,
        requiredApproval: d.requiredApproval as ApprovalLevel,
        awaitingSince: d.at as string,
      };
    }
    if (LEAVES_APPROVAL.has(event.type) && doc.pending) return { ...doc, pending: false };
    return undefined;
  },
};

export const toPendingApproval = (doc: PendingApprovalDocument) => ({
  changeId: doc.changeId,
  title: doc.title,
  riskLevel: doc.riskLevel,
  priority: doc.priority,
  requiredApproval: doc.requiredApproval,
  requestedBy: doc.requestedBy,
  awaitingSince: doc.awaitingSince,
  proposedStart: doc.proposedStart,
});
