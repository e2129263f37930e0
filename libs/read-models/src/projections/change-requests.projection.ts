import {
  type ChangeRequestEvent,
  type ChangeRequestState,
  evolveChangeRequest,
  initialChangeRequestState,
  systemKey,
} from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { changeIdOf, type Projection } from './projection';

/**
 * The whole change (its folded state), the fields that lists filter and sort on, and its list
 * row (`summary`), which `GET /changes` selects without reading the state. Documents written
 * before `summary` existed lack it until they change again or the read models are rebuilt.
 */
export interface ChangeRequestDocument extends ReadModelDocument {
  readonly state: ChangeRequestState;
  readonly summary?: ChangeSummary;
  readonly status: string;
  readonly type: string;
  readonly riskLevel: string | null;
  readonly priority: string;
  /** The keys of the systems it names (see `systemKey`): what `GET /changes?system=` matches. */
  readonly systems: string[];
  readonly requestedBy: string;
  /** Id, title and description folded by `searchKey`: what `GET /changes?q=` looks in. */
  readonly searchText: string;
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
      searchText: 'string',
      submittedAt: 'string',
      updatedAt: 'string',
      summary: 'json',
    },
    indexes: [
      ['submittedAt'],
      ['status', 'submittedAt'],
      ['type', 'submittedAt'],
      ['requestedBy', 'submittedAt'],
      ['riskLevel', 'submittedAt'],
      // GET /changes?system=pve1: a multikey index on MongoDB (SQLite: over the joined elements)
      ['systems', 'submittedAt'],
    ],
    // GET /changes?q=: no index finds a substring, but on SQLite scanning one reads the texts alone
    scanIndexes: ['searchText'],
  },
  // 2: `systems` holds each system's key (case, surrounding spaces and zero-width characters
  // aside), as the schedule and template scopes compare them; version 1 held the names as sent.
  // Also since 2: `searchText`. 3: its parts are joined by SEARCH_TEXT_SEPARATOR, which no `q`
  // holds (2 joined them by a line feed, so "kernel\nreboot" matched a title's end and a
  // description's start), and its text is composed after zero-width characters are dropped.
  // 4: its case is folded in full (ß as ss, İ and ı as i), not only lowered.
  version: 4,
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
      // `?? []`: a change stored before submissions were fully validated may lack it, and a
      // projection that throws stops every read model (the batch is retried for ever)
      systems: systemKeys(state.request.systemsAffected ?? []),
      requestedBy: state.requestedBy?.id ?? '',
      searchText: [state.id, state.request.title ?? '', state.request.description ?? '']
        .map(searchKey)
        .join(SEARCH_TEXT_SEPARATOR),
      submittedAt: state.submittedAt ?? '',
      updatedAt: state.updatedAt ?? '',
    };
  },
  finish: (document) => ({ ...document, summary: toChangeSummary(document.state) }),
};

/**
 * Text as `GET /changes?q=` compares it: zero-width characters dropped, surrounding spaces
 * trimmed, case folded, then composed (NFC: a decomposed "ü" finds a composed one; composed last,
 * since a zero-width character between a letter and its accent keeps them apart). The case fold
 * goes further than lower case: upper then lower case ("Straße" as "strasse", "ﬁ" as "fi", the
 * Turkish dotless ı as i), the dot that lower-casing leaves on the Turkish İ dropped (so "İzmir",
 * "IZMIR" and "izmir" are one), and the Greek final sigma as any sigma.
 */
export const searchKey = (text: string): string =>
  systemKey(text)
    .toUpperCase()
    .toLowerCase()
    .replace(/i\u0307/g, 'i')
    .replace(/\u03c2/g, '\u03c3')
    .normalize('NFC');

/**
 * Between the id, title and description in `searchText`: a control character, which `q` may not
 * hold (400), so no search matches across two of them.
 */
export const SEARCH_TEXT_SEPARATOR = '\u001f';

/** The keys `GET /changes?system=` is matched against, each once. */
const systemKeys = (names: readonly string[]): string[] => [...new Set(names.map(systemKey))];

export interface ChangeSummary {
  readonly id: string;
  readonly title: string;
  readonly type: string;
  readonly status: string;
  readonly priority: string;
  readonly riskLevel: string | null;
  readonly systemsAffected: readonly string[];
  readonly requestedBy: { readonly id: string; readonly name: string } | null;
  readonly submittedAt: string | null;
  readonly updatedAt: string | null;
  readonly version: number;
}

/** The list row of `GET /changes`. */
export const toChangeSummary = (s: ChangeRequestState): ChangeSummary => {
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
