import {
  type ChangeStatus,
  type ChangeType,
  IMPLEMENTATION_WORK_EVENT_TYPES,
  type Outcome,
  statusOnSubmission,
} from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { statusAfterEvent } from './change-status';
import { csvCell } from '../csv';
import { markdownCell } from '../markdown';
import { changeIdOf, dayOf, type Projection } from './projection';

/** One row of the seed's change log, with what it needs to keep its words right. */
export interface ChangeLogDocument extends ReadModelDocument {
  readonly date: string;
  readonly changeId: string;
  readonly description: string;
  readonly type: string;
  readonly status: string;
  readonly implementedBy: string;
  readonly submittedDay: string;
  readonly startedDay: string | null;
  readonly endedDay: string | null;
  readonly outcome: Outcome | null;
  readonly changeStatus: ChangeStatus;
}

const TYPE_WORDS: Record<ChangeType, string> = {
  standard: 'Standard',
  normal: 'Normal',
  emergency: 'Emergency',
};

const STATUS_WORDS: Record<ChangeStatus, string> = {
  'in-review': 'In review',
  'changes-requested': 'Changes requested',
  'awaiting-approval': 'Pending approval',
  approved: 'Approved',
  rejected: 'Rejected',
  scheduled: 'Scheduled',
  'in-progress': 'In progress',
  implemented: 'In progress',
  closed: 'In progress',
  cancelled: 'Cancelled',
};

const OUTCOME_WORDS: Record<Outcome, string> = {
  successful: 'Completed',
  failed: 'Failed',
  'rolled-back': 'Rolled back',
};

/**
 * The contract's words: the outcome once implementation ended (and after close), else the status.
 * `row` is always a fresh object made by the caller, so it is completed in place.
 */
const finish = (
  row: Omit<ChangeLogDocument, 'date' | 'status' | '_position'>,
): Omit<ChangeLogDocument, '_position'> =>
  Object.assign(row, {
    status: row.outcome ? OUTCOME_WORDS[row.outcome] : STATUS_WORDS[row.changeStatus],
    date: row.endedDay ?? row.startedDay ?? row.submittedDay,
  });

const WORK_EVENTS = new Set<string>(IMPLEMENTATION_WORK_EVENT_TYPES);

export const changeLogProjection: Projection<ChangeLogDocument> = {
  collection: {
    name: 'change_log',
    fields: { date: 'string', changeId: 'string', type: 'string', status: 'string' },
    indexes: [['date']],
  },
  documentId: changeIdOf,
  evolve: (row, event) => {
    const d = event.data as Record<string, unknown>;
    if (event.type === 'ChangeSubmitted') {
      const type = d.changeType as ChangeType;
      return finish({
        id: d.changeId as string,
        changeId: d.changeId as string,
        description: (d.request as { title: string }).title,
        type: TYPE_WORDS[type],
        implementedBy: '',
        submittedDay: dayOf(d.at as string),
        startedDay: null,
        endedDay: null,
        outcome: null,
        changeStatus: statusOnSubmission(type),
      });
    }
    if (!row) return undefined;
    if (event.type === 'ChangeAmended') {
      const title = (d.changes as { title?: string }).title;
      return finish({
        ...row,
        description: title ?? row.description,
        changeStatus: statusAfterEvent(event)!,
      });
    }
    // An emergency declared by someone without the implementer role: its implementer is the
    // first to record work on it (as the domain's view says).
    const implementedBy =
      row.implementedBy === '' && row.startedDay !== null && WORK_EVENTS.has(event.type)
        ? (d.by as { name: string }).name
        : row.implementedBy;
    const changeStatus = statusAfterEvent(event);
    if (!changeStatus)
      return implementedBy !== row.implementedBy ? finish({ ...row, implementedBy }) : undefined;
    if (event.type === 'ImplementationStarted') {
      return finish({
        ...row,
        changeStatus,
        startedDay: dayOf(d.at as string),
        implementedBy: d.byImplementer === false ? '' : (d.by as { name: string }).name,
      });
    }
    if (event.type === 'ImplementationCompleted') {
      return finish({
        ...row,
        changeStatus,
        endedDay: dayOf(d.at as string),
        outcome: d.outcome as Outcome,
        implementedBy,
      });
    }
    return finish({ ...row, changeStatus });
  },
};

export const CHANGE_LOG_COLUMNS = [
  'Date',
  'Change ID',
  'Description',
  'Type',
  'Status',
  'Implemented By',
] as const;

export const toChangeLogRow = (row: ChangeLogDocument) => ({
  date: row.date,
  changeId: row.changeId,
  description: row.description,
  type: row.type,
  status: row.status,
  implementedBy: row.implementedBy,
});

export type ChangeLogRow = ReturnType<typeof toChangeLogRow>;

/** Exactly the seed's table layout: header, the dashed separator row, one row per change. */
export const changeLogMarkdown = (rows: readonly ChangeLogRow[]): string => {
  const header = `| ${CHANGE_LOG_COLUMNS.join(' | ')} |`;
  const separator = `|${CHANGE_LOG_COLUMNS.map((c) => '-'.repeat(c.length + 2)).join('|')}|`;
  const lines = rows.map(
    (r) =>
      `| ${[r.date, r.changeId, r.description, r.type, r.status, r.implementedBy].map(markdownCell).join(' | ')} |`,
  );
  return `${[header, separator, ...lines].join('\n')}\n`;
};

/** RFC 4180 CSV; cells that would start a spreadsheet formula are defused (`csvCell`). */
export const changeLogCsv = (rows: readonly ChangeLogRow[]): string =>
  [
    ['date', 'changeId', 'description', 'type', 'status', 'implementedBy'].join(','),
    ...rows.map((r) =>
      [r.date, r.changeId, r.description, r.type, r.status, r.implementedBy].map(csvCell).join(','),
    ),
  ].join('\r\n') + '\r\n';
