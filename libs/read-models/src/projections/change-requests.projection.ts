import {
  type ChangeRequestEvent,
  type ChangeRequestState,
  evolveChangeRequest,
  initialChangeRequestState,
} from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { changeIdOf, type Projection } from './projection';

/** The whole change (its folded state) plus the fields that lists filter and sort on. */
export interface ChangeRequestDocument extends ReadModelDocument {
  readonly state: ChangeRequestState;
  readonly status: string;
  readonly type: string;
  readonly riskLevel: string | null;
  readonly priority: string;
  readonly systems: string[];
  readonly requestedBy: string;
  readonly submittedAt: string;
  readonly updatedAt: string;
}

export const changeRequestsProjection: Projection<ChangeRequestDocument> = {
  collection: {
    name: 'change_requests',
    fields: {
      status: 'string',
      type: 'string',
      riskLevel: 'string',
      priority: 'string',
      systems: 'string[]',
      requestedBy: 'string',
      submittedAt: 'string',
      updatedAt: 'string',
    },
    indexes: [
      ['submittedAt'],
      ['status', 'submittedAt'],
      ['type', 'submittedAt'],
      ['requestedBy', 'submittedAt'],
      ['riskLevel', 'submittedAt'],
    ],
  },
  documentId: changeIdOf,
  evolve: (document, event) => {
    const before = document?.state ?? initialChangeRequestState();
    if (!document && event.type !== 'ChangeSubmitted') return undefined;
    const state = evolveChangeRequest(before, {
      type: event.type,
      data: event.data,
    } as unknown as ChangeRequestEvent);
    return {
      id: state.id,
      state,
      status: state.status,
      type: state.type,
      riskLevel: state.request.risk?.level ?? null,
      priority: state.request.priority,
      systems: [...state.request.systemsAffected],
      requestedBy: state.requestedBy?.id ?? '',
      submittedAt: state.submittedAt ?? '',
      updatedAt: state.updatedAt ?? '',
    };
  },
};

/** The list row of `GET /changes`. */
/**
 * What `toChangeSummary` reads (plus the sort key of the list): a list of 50 changes selects
 * these instead of 50 whole folded states.
 */
export const CHANGE_SUMMARY_FIELDS = [
  'submittedAt',
  'state.id',
  'state.request.title',
  'state.type',
  'state.status',
  'state.request.priority',
  'state.request.risk.level',
  'state.request.systemsAffected',
  'state.requestedBy',
  'state.submittedAt',
  'state.updatedAt',
  'state.version',
] as const;

/** The list row of a change; from a whole document or one with only `CHANGE_SUMMARY_FIELDS`. */
export const toChangeSummary = (document: ChangeRequestDocument) => {
  const s = document.state;
  return {
    id: s.id,
    title: s.request.title,
    type: s.type,
    status: s.status,
    priority: s.request.priority,
    riskLevel: s.request.risk?.level ?? null,
    systemsAffected: s.request.systemsAffected,
    requestedBy: s.requestedBy ?? null,
    submittedAt: s.submittedAt ?? null,
    updatedAt: s.updatedAt ?? null,
    version: s.version,
  };
};
