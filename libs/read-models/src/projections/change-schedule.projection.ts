import {
  type ChangeRequestFields,
  type ChangeStatus,
  type ChangeType,
  LAST_UTC_INSTANT_MS,
  type Outcome,
  statusOnSubmission,
  systemKey,
} from '@changeledger/domain';
import type { RecordedEvent } from '@changeledger/event-store';
import type { ReadModelDocument } from '../read-model-store.port';
import { statusAfterEvent } from './change-status';
import { changeIdOf, type Draft, instantOf, type Projection } from './projection';

/** The end of a window not known yet: a change at work holds its systems until it ends. */
export const OPEN_END = new Date(LAST_UTC_INSTANT_MS).toISOString();

/** A window's end as items show it: null while not known yet. */
const shownEnd = (until: string): string | null => (until === OPEN_END ? null : until);

/**
 * The forward schedule of change: one document per change, on the calendar (`listed`) once it
 * is scheduled or (an emergency) started. Its window runs `from` the planned or actual start,
 * whichever came first, `until` the actual end; while at work OPEN_END (a change that overruns
 * its planned end still holds its systems); before it starts, or cancelled, the planned end.
 */
export interface ScheduleDocument extends ReadModelDocument {
  readonly changeId: string;
  readonly title: string;
  readonly type: ChangeType;
  readonly riskLevel: string | null;
  readonly status: ChangeStatus;
  readonly systemsAffected: string[];
  /** The systems as compared (filter, conflicts): `systemKey`s (case, spaces, zero-width aside). */
  readonly systemKeys: string[];
  readonly plannedStart: string | null;
  readonly plannedEnd: string | null;
  readonly maintenanceWindow: boolean;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly outcome: Outcome | null;
  readonly listed: boolean;
  /** Holds its systems now or later: scheduled or in progress. */
  readonly open: boolean;
  /** '' while not listed. */
  readonly from: string;
  readonly until: string;
  /** How many events changed the document since the submission (a calendar takes the higher as newer). */
  readonly updates: number;
}

const earliest = (a: string | null, b: string | null): string | null =>
  a === null ? b : b === null ? a : a < b ? a : b;

export const changeScheduleProjection: Projection<ScheduleDocument> = {
  collection: {
    name: 'change_schedule',
    fields: { listed: 'boolean', open: 'boolean', from: 'string', until: 'string', systemKeys: 'string[]' },
    indexes: [
      ['listed', 'from'],
      ['open', 'from'],
      ['systemKeys', 'from'],
    ],
  },
  documentId: changeIdOf,
  evolve: (doc, event) => {
    const next = evolveSchedule(doc, event);
    return next && doc ? { ...next, updates: doc.updates + 1 } : next;
  },
  // The calendar's fields follow from the rest: worked out once per write, not per event.
  finish: (doc): Draft<ScheduleDocument> => {
    const from = earliest(doc.plannedStart, doc.startedAt);
    return {
      ...doc,
      listed: from !== null,
      open: doc.status === 'scheduled' || doc.status === 'in-progress',
      from: from ?? '',
      until:
        from === null
          ? ''
          : (doc.endedAt ?? (doc.status === 'in-progress' ? OPEN_END : (doc.plannedEnd ?? OPEN_END))),
    };
  },
};

function evolveSchedule(
  doc: ScheduleDocument | undefined,
  event: RecordedEvent,
): Draft<ScheduleDocument> | undefined {
  const d = event.data as Record<string, unknown>;
  if (event.type === 'ChangeSubmitted') {
    const request = d.request as ChangeRequestFields;
    const systems = [...(request.systemsAffected ?? [])];
    return {
      id: d.changeId as string,
      changeId: d.changeId as string,
      title: request.title,
      type: d.changeType as ChangeType,
      riskLevel: request.risk?.level ?? null,
      // standard and emergency changes move on in the same append (pre-approved, started)
      status: statusOnSubmission(d.changeType as ChangeType),
      systemsAffected: systems,
      systemKeys: systems.map(systemKey),
      plannedStart: null,
      plannedEnd: null,
      maintenanceWindow: false,
      startedAt: null,
      endedAt: null,
      outcome: null,
      listed: false,
      open: false,
      from: '',
      until: '',
      updates: 0,
    };
  }
  if (!doc) return undefined;
  const status = statusAfterEvent(event) ?? doc.status;
  switch (event.type) {
    case 'ChangeAmended': {
      const changes = d.changes as Partial<ChangeRequestFields>;
      const systems = changes.systemsAffected ? [...changes.systemsAffected] : doc.systemsAffected;
      return {
        ...doc,
        status,
        title: changes.title ?? doc.title,
        riskLevel: changes.risk?.level ?? doc.riskLevel,
        systemsAffected: systems,
        systemKeys: systems.map(systemKey),
      };
    }
    case 'ChangeScheduled':
      return {
        ...doc,
        status,
        plannedStart: instantOf(d.plannedStart as string),
        plannedEnd: instantOf(d.plannedEnd as string),
        maintenanceWindow: d.maintenanceWindow as boolean,
      };
    case 'ImplementationStarted':
      return { ...doc, status, startedAt: instantOf(d.at as string) };
    case 'ImplementationCompleted':
      return { ...doc, status, endedAt: instantOf(d.at as string), outcome: d.outcome as Outcome };
    default:
      return status === doc.status ? undefined : { ...doc, status };
  }
}

/** Another open change whose window overlaps, on systems both name. */
export interface ScheduleConflict {
  readonly changeId: string;
  readonly title: string;
  readonly status: ChangeStatus;
  readonly from: string;
  readonly until: string | null;
  readonly systems: string[];
}

export interface ScheduleItem extends Pick<
  ScheduleDocument,
  | 'changeId'
  | 'title'
  | 'type'
  | 'riskLevel'
  | 'status'
  | 'systemsAffected'
  | 'plannedStart'
  | 'plannedEnd'
  | 'maintenanceWindow'
  | 'startedAt'
  | 'endedAt'
  | 'outcome'
  | 'from'
> {
  /** As the document's, but null while the change is at work (no end known yet). */
  readonly until: string | null;
  /** In progress past its planned end. */
  readonly overrunning: boolean;
  /** Grows with every change of the entry (an iCalendar SEQUENCE: a re-import updates the event). */
  readonly sequence: number;
  /** Only between open changes (scheduled or in progress); empty for the others. */
  readonly conflictsWith: ScheduleConflict[];
}

const overlaps = (a: ScheduleDocument, b: ScheduleDocument) => a.from < b.until && b.from < a.until;

/**
 * The open changes among `candidates` that collide with `doc`: windows that overlap (an end is
 * exclusive: one change may start when another ends) on at least one system both name.
 */
export const conflictsOf = (
  doc: ScheduleDocument,
  candidates: readonly ScheduleDocument[],
): ScheduleConflict[] => {
  if (!doc.open || !doc.listed) return [];
  const mine = new Set(doc.systemKeys);
  const found: ScheduleConflict[] = [];
  for (const other of candidates) {
    if (other.id === doc.id || !other.open || !other.listed || !overlaps(doc, other)) continue;
    const shared = other.systemsAffected.filter((s) => mine.has(systemKey(s)));
    if (shared.length === 0) continue;
    found.push({
      changeId: other.changeId,
      title: other.title,
      status: other.status,
      from: other.from,
      until: shownEnd(other.until),
      systems: shared,
    });
  }
  return found.sort((a, b) =>
    a.from < b.from ? -1 : a.from > b.from ? 1 : a.changeId < b.changeId ? -1 : 1,
  );
};

export const toScheduleItem = (
  doc: ScheduleDocument,
  now: Date,
  candidates: readonly ScheduleDocument[],
): ScheduleItem => ({
  changeId: doc.changeId,
  title: doc.title,
  type: doc.type,
  riskLevel: doc.riskLevel,
  status: doc.status,
  systemsAffected: doc.systemsAffected,
  plannedStart: doc.plannedStart,
  plannedEnd: doc.plannedEnd,
  maintenanceWindow: doc.maintenanceWindow,
  startedAt: doc.startedAt,
  endedAt: doc.endedAt,
  outcome: doc.outcome,
  from: doc.from,
  until: shownEnd(doc.until),
  overrunning: doc.status === 'in-progress' && doc.plannedEnd !== null && doc.plannedEnd < now.toISOString(),
  sequence: doc.updates,
  conflictsWith: conflictsOf(doc, candidates),
});
