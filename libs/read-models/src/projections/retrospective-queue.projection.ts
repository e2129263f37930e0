import {
  type ChangeRequestFields,
  type EmergencyCategory,
  LATER_FIELDS,
  missingRequestFields,
} from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { addBusinessDays } from './business-days';
import { changeIdOf, type Projection } from './projection';

export type OutstandingItem = 'complete-request' | 'post-implementation-review' | 'retrospective-approval';

/** One per emergency change; `open` until it is closed. */
export interface RetrospectiveDocument extends ReadModelDocument {
  readonly changeId: string;
  readonly title: string;
  readonly category: EmergencyCategory;
  readonly declaredAt: string;
  readonly implementedAt: string | null;
  readonly missingFields: string[];
  readonly reviewed: boolean;
  readonly decided: boolean;
  readonly outstanding: OutstandingItem[];
  readonly open: boolean;
}

/**
 * What is still missing after an amendment: an amended field by its new value (blank text still
 * counts as missing, as the decider judges it), the others as they were.
 */
const missingAfter = (missing: readonly string[], changes: Partial<ChangeRequestFields>): string[] => {
  const probe: Record<string, unknown> = {};
  for (const field of LATER_FIELDS) {
    probe[field] = field in changes ? changes[field] : missing.includes(field) ? undefined : 'filled in';
  }
  return missingRequestFields(probe as unknown as ChangeRequestFields);
};

const outstandingOf = (
  doc: Pick<RetrospectiveDocument, 'missingFields' | 'reviewed' | 'decided'>,
): OutstandingItem[] => [
  ...(doc.missingFields.length > 0 ? (['complete-request'] as const) : []),
  ...(doc.reviewed ? [] : (['post-implementation-review'] as const)),
  ...(doc.decided ? [] : (['retrospective-approval'] as const)),
];

/**
 * The facts only: when the retrospective is due depends on RETROSPECTIVE_DUE_BUSINESS_DAYS, so
 * it is computed when asked (`toRetrospectiveItem`), as the compliance report does, and the
 * queue and the report agree whatever the setting was when an event was projected.
 */
export const retrospectiveQueueProjection: Projection<RetrospectiveDocument> = {
  collection: {
    name: 'retrospective_queue',
    fields: { open: 'boolean', declaredAt: 'string' },
    indexes: [['open', 'declaredAt']],
  },
  // 2: text of only white space counts as missing (version 1 counted it as filled in);
  // 3: so does text of characters that show nothing (zero-width space, braille blank)
  version: 3,
  documentId: changeIdOf,
  evolve: (doc, event) => {
    const d = event.data as Record<string, unknown>;
    const withOutstanding = (next: Omit<RetrospectiveDocument, 'outstanding' | '_position'>) => ({
      ...next,
      outstanding: outstandingOf(next),
    });
    if (event.type === 'ChangeSubmitted') {
      if (d.changeType !== 'emergency') return undefined;
      const request = d.request as ChangeRequestFields;
      return withOutstanding({
        id: d.changeId as string,
        changeId: d.changeId as string,
        title: request.title,
        category: request.emergency!.category,
        declaredAt: d.at as string,
        implementedAt: null,
        missingFields: missingRequestFields(request),
        reviewed: false,
        decided: false,
        open: true,
      });
    }
    if (!doc) return undefined;
    switch (event.type) {
      case 'ChangeAmended': {
        const changes = d.changes as Partial<ChangeRequestFields>;
        return withOutstanding({
          ...doc,
          title: changes.title ?? doc.title,
          category: changes.emergency?.category ?? doc.category,
          missingFields: missingAfter(doc.missingFields, changes),
          // an amendment after the approval made it void (schema 6): to be decided again
          decided: d.voidedRetrospectiveDecision ? false : doc.decided,
        });
      }
      case 'ImplementationCompleted':
        return withOutstanding({ ...doc, implementedAt: d.at as string });
      case 'PostImplementationReviewRecorded':
        return withOutstanding({ ...doc, reviewed: true });
      case 'RetrospectiveDecisionRecorded':
        return withOutstanding({ ...doc, decided: true });
      case 'ChangeClosed':
        return withOutstanding({ ...doc, open: false });
      default:
        return undefined;
    }
  },
};

/**
 * The queue's item: `dueAt` = implementation end + `dueBusinessDays` (RETROSPECTIVE_DUE_BUSINESS_DAYS)
 * business days; `overdue` depends on the time of the question too.
 */
export const toRetrospectiveItem = (doc: RetrospectiveDocument, now: Date, dueBusinessDays: number) => {
  const dueAt = doc.implementedAt === null ? null : addBusinessDays(doc.implementedAt, dueBusinessDays);
  return {
    changeId: doc.changeId,
    title: doc.title,
    category: doc.category,
    declaredAt: doc.declaredAt,
    implementedAt: doc.implementedAt ?? undefined,
    outstanding: doc.outstanding,
    dueAt,
    overdue: dueAt !== null && doc.outstanding.length > 0 && Date.parse(dueAt) < now.getTime(),
  };
};
