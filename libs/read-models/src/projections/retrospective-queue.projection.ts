import { type ChangeRequestFields, type EmergencyCategory, missingRequestFields } from '@changeledger/domain';
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
  readonly dueAt: string | null;
  readonly open: boolean;
}

const outstandingOf = (
  doc: Pick<RetrospectiveDocument, 'missingFields' | 'reviewed' | 'decided'>,
): OutstandingItem[] => [
  ...(doc.missingFields.length > 0 ? (['complete-request'] as const) : []),
  ...(doc.reviewed ? [] : (['post-implementation-review'] as const)),
  ...(doc.decided ? [] : (['retrospective-approval'] as const)),
];

/** `dueBusinessDays`: RETROSPECTIVE_DUE_BUSINESS_DAYS, counted from the end of implementation. */
export const retrospectiveQueueProjection = (dueBusinessDays: number): Projection<RetrospectiveDocument> => ({
  collection: {
    name: 'retrospective_queue',
    fields: { open: 'boolean', declaredAt: 'string', dueAt: 'string' },
    indexes: [['open', 'declaredAt']],
  },
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
        dueAt: null,
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
          missingFields: doc.missingFields.filter((f) => !(f in changes)),
        });
      }
      case 'ImplementationCompleted':
        return withOutstanding({
          ...doc,
          implementedAt: d.at as string,
          dueAt: addBusinessDays(d.at as string, dueBusinessDays),
        });
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
});

/** `overdue` depends on the time of the question, so it is computed when asked. */
export const toRetrospectiveItem = (doc: RetrospectiveDocument, now: Date) => ({
  changeId: doc.changeId,
  title: doc.title,
  category: doc.category,
  declaredAt: doc.declaredAt,
  implementedAt: doc.implementedAt ?? undefined,
  outstanding: doc.outstanding,
  dueAt: doc.dueAt,
  overdue: doc.dueAt !== null && doc.outstanding.length > 0 && Date.parse(doc.dueAt) < now.getTime(),
});
