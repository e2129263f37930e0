import { Inject } from '@nestjs/common';
import { type IQueryHandler, QueryHandler } from '@nestjs/cqrs';
import { type ChangeView, systemKey, toChangeView } from '@changeledger/domain';
import {
  type ChangeLogDocument,
  type ChangeLogRow,
  type ChangeRequestDocument,
  type FollowUpDocument,
  type FollowUpStep,
  followUpsProjection,
  type ChangeSummary,
  changeLogProjection,
  changeRequestsProjection,
  changeScheduleProjection,
  type Condition,
  type PendingApprovalDocument,
  pendingApprovalsProjection,
  parseBound,
  READ_MODEL_STORE,
  type ReadModelStore,
  type RetrospectiveDocument,
  type ScheduleDocument,
  type StandardTemplateDocument,
  standardTemplatesProjection,
  toChangeLogRow,
  toChangeSummary,
  toFollowUpItem,
  searchKey,
  toPendingApproval,
  toRetrospectiveItem,
  toScheduleItem,
  toTemplateView,
} from '@changeledger/read-models';
import { APP_CONFIG, type AppConfig, CLOCK, type Clock } from '@changeledger/platform';
import { AggregateLoader } from '../application/aggregate-loader';
import { changeRequestAggregate, standardTemplateAggregate } from '../application/aggregates';
import { RequestValidationError } from '../application/application-errors';
import { findPage, type PageRequest } from './paging';

/**
 * A range whose `to` is not after its `from` is 400 naming `to` (as the reports answer it), not
 * an empty list that looks like "none".
 */
export const refuseEmptyRange = (from: Date, to: Date, what: string): void => {
  if (to.getTime() <= from.getTime()) {
    throw new RequestValidationError(`${what} is empty`, [{ field: 'to', message: 'to must be after from' }]);
  }
};

const RETROSPECTIVE_QUEUE = 'retrospective_queue';

export class GetChange {
  constructor(readonly id: string) {}
}

@QueryHandler(GetChange)
export class GetChangeHandler implements IQueryHandler<GetChange, ChangeView | undefined> {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    private readonly loader: AggregateLoader,
  ) {}

  async execute({ id }: GetChange) {
    const doc = await this.store.get<ChangeRequestDocument>(changeRequestsProjection.collection.name, id);
    if (doc) return toChangeView(doc.state);
    // Not projected yet (created a moment ago: a client following a 201's Location without
    // minPosition): folded from its stream, as the read model will hold it.
    const state = await this.loader.load(changeRequestAggregate, id);
    // (exists: submitted; a stream holding no submission, its head cut off, is no change)
    return state.exists ? toChangeView(state) : undefined;
  }
}

export interface ChangeFilters {
  readonly status?: string;
  readonly type?: string;
  readonly riskLevel?: string;
  readonly system?: string;
  readonly q?: string;
  readonly requestedBy?: string;
  readonly from?: string;
  readonly to?: string;
}

export class ListChanges {
  constructor(
    readonly filters: ChangeFilters,
    readonly page: PageRequest,
  ) {}
}

@QueryHandler(ListChanges)
export class ListChangesHandler implements IQueryHandler<ListChanges> {
  constructor(@Inject(READ_MODEL_STORE) private readonly store: ReadModelStore) {}

  async execute({ filters, page: request }: ListChanges) {
    const where: Condition[] = [];
    for (const field of ['status', 'type', 'riskLevel', 'requestedBy'] as const) {
      const value = filters[field];
      if (value !== undefined) where.push({ field, op: 'eq', value });
    }
    // by key, as the schedule filters: `PVE1` finds a change that names `pve1 `
    if (filters.system !== undefined)
      where.push({ field: 'systems', op: 'contains', value: systemKey(filters.system) });
    if (filters.q !== undefined)
      where.push({ field: 'searchText', op: 'includes', value: searchKey(filters.q) });
    // A date-only `to` takes in that whole day, as the compliance report's does.
    const from = filters.from === undefined ? undefined : parseBound('from', filters.from);
    const to = filters.to === undefined ? undefined : parseBound('to', filters.to);
    if (from && to) refuseEmptyRange(from, to, 'the range of submission times');
    if (from) where.push({ field: 'submittedAt', op: 'gte', value: from.toISOString() });
    if (to) where.push({ field: 'submittedAt', op: 'lt', value: to.toISOString() });
    const result = await findPage<ChangeRequestDocument>(
      this.store,
      changeRequestsProjection.collection.name,
      { where, orderBy: { field: 'submittedAt', direction: 'desc' }, select: ['submittedAt', 'summary'] },
      request,
    );
    // Documents from before `summary` existed (not yet rebuilt): their row from the whole state.
    const missing = result.items.filter((d) => !d.summary).map((d) => d.id);
    const whole = missing.length
      ? await this.store.getMany<ChangeRequestDocument>(changeRequestsProjection.collection.name, missing)
      : undefined;
    const items: ChangeSummary[] = [];
    for (const d of result.items) {
      const state = whole?.get(d.id)?.state;
      if (d.summary) items.push(d.summary);
      else if (state) items.push(toChangeSummary(state)); // else gone: a rebuild swapped in between
    }
    return { items, nextCursor: result.nextCursor };
  }
}

export class GetChangeLog {
  /**
   * `byChangeId`: in change-id order instead of newest first. A row's date moves forward as
   * its change goes on, so a reader paging through the whole log by date while the projector
   * writes could step over a row that moved above its cursor; ids never move.
   */
  constructor(
    readonly page: PageRequest,
    readonly byChangeId = false,
  ) {}
}

/** Newest first: by the row's date, then by change id. */
@QueryHandler(GetChangeLog)
export class GetChangeLogHandler implements IQueryHandler<
  GetChangeLog,
  { items: ChangeLogRow[]; nextCursor: string | null }
> {
  constructor(@Inject(READ_MODEL_STORE) private readonly store: ReadModelStore) {}

  async execute({ page: request, byChangeId }: GetChangeLog) {
    const result = await findPage<ChangeLogDocument>(
      this.store,
      changeLogProjection.collection.name,
      {
        where: [],
        orderBy: byChangeId ? { field: 'id', direction: 'asc' } : { field: 'date', direction: 'desc' },
      },
      request,
    );
    return { items: result.items.map(toChangeLogRow), nextCursor: result.nextCursor };
  }
}

export class ListPendingApprovals {
  constructor(
    readonly requiredApproval: string | undefined,
    readonly page: PageRequest,
  ) {}
}

/** Oldest first: the queue an approver works through. */
@QueryHandler(ListPendingApprovals)
export class ListPendingApprovalsHandler implements IQueryHandler<ListPendingApprovals> {
  constructor(@Inject(READ_MODEL_STORE) private readonly store: ReadModelStore) {}

  async execute({ requiredApproval, page: request }: ListPendingApprovals) {
    const where: Condition[] = [{ field: 'pending', op: 'eq', value: true }];
    if (requiredApproval) where.push({ field: 'requiredApproval', op: 'eq', value: requiredApproval });
    const result = await findPage<PendingApprovalDocument>(
      this.store,
      pendingApprovalsProjection.collection.name,
      { where, orderBy: { field: 'awaitingSince', direction: 'asc' } },
      request,
    );
    return { items: result.items.map(toPendingApproval), nextCursor: result.nextCursor };
  }
}

export class GetRetrospectiveQueue {
  constructor(readonly page: PageRequest) {}
}

@QueryHandler(GetRetrospectiveQueue)
export class GetRetrospectiveQueueHandler implements IQueryHandler<GetRetrospectiveQueue> {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async execute({ page: request }: GetRetrospectiveQueue) {
    const result = await findPage<RetrospectiveDocument>(
      this.store,
      RETROSPECTIVE_QUEUE,
      {
        where: [{ field: 'open', op: 'eq', value: true }],
        orderBy: { field: 'declaredAt', direction: 'asc' },
      },
      request,
    );
    const now = this.clock.now();
    const due = this.config.retrospectiveDueBusinessDays;
    return {
      items: result.items.map((d) => toRetrospectiveItem(d, now, due)),
      nextCursor: result.nextCursor,
    };
  }
}

export class ListFollowUps {
  constructor(
    readonly waitingFor: FollowUpStep | undefined,
    readonly page: PageRequest,
  ) {}
}

/** Longest waiting first: approved normal and standard changes not yet closed, and their next step. */
@QueryHandler(ListFollowUps)
export class ListFollowUpsHandler implements IQueryHandler<ListFollowUps> {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async execute({ waitingFor, page: request }: ListFollowUps) {
    const where: Condition[] = [{ field: 'open', op: 'eq', value: true }];
    if (waitingFor) where.push({ field: 'waitingFor', op: 'eq', value: waitingFor });
    const result = await findPage<FollowUpDocument>(
      this.store,
      followUpsProjection.collection.name,
      { where, orderBy: { field: 'since', direction: 'asc' } },
      request,
    );
    const now = this.clock.now();
    const due = this.config.postImplementationReviewDueBusinessDays;
    return { items: result.items.map((d) => toFollowUpItem(d, now, due)), nextCursor: result.nextCursor };
  }
}

export class GetStandardTemplate {
  constructor(readonly id: string) {}
}

@QueryHandler(GetStandardTemplate)
export class GetStandardTemplateHandler implements IQueryHandler<GetStandardTemplate> {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    private readonly loader: AggregateLoader,
  ) {}

  async execute({ id }: GetStandardTemplate) {
    const doc = await this.store.get<StandardTemplateDocument>(
      standardTemplatesProjection.collection.name,
      id,
    );
    // (a change naming a template that was never created makes no document: see the projection)
    if (doc) return doc.template.exists ? toTemplateView(doc) : undefined;
    // Not projected yet (created a moment ago, its Location followed at once): from its stream,
    // used by no change the read models hold (the changes under it are projected after it).
    const template = await this.loader.load(standardTemplateAggregate, id);
    return template.exists
      ? toTemplateView({ id, template, usageCount: 0, active: template.active, _position: '0' })
      : undefined;
  }
}

export class ListStandardTemplates {
  constructor(readonly page: PageRequest) {}
}

@QueryHandler(ListStandardTemplates)
export class ListStandardTemplatesHandler implements IQueryHandler<ListStandardTemplates> {
  constructor(@Inject(READ_MODEL_STORE) private readonly store: ReadModelStore) {}

  async execute({ page: request }: ListStandardTemplates) {
    const result = await findPage<StandardTemplateDocument>(
      this.store,
      standardTemplatesProjection.collection.name,
      { where: [], orderBy: { field: 'id', direction: 'asc' } },
      request,
    );
    return { items: result.items.map(toTemplateView), nextCursor: result.nextCursor };
  }
}

export class GetSchedule {
  constructor(
    /** The changes whose windows overlap [from, to). */
    readonly from: Date,
    readonly to: Date,
    readonly system: string | undefined,
    readonly page: PageRequest,
    /**
     * In change-id order instead of by start: a window's start moves when a change is
     * rescheduled or started early, so a reader paging through a whole range by start while the
     * projector writes could step over a change or meet it twice; ids never move.
     */
    readonly byChangeId = false,
  ) {}
}

/** Pages through every document matching `where`, in `from` order. */
const everyScheduled = async (store: ReadModelStore, where: Condition[]): Promise<ScheduleDocument[]> => {
  const all: ScheduleDocument[] = [];
  let after: { value: string; id: string } | undefined;
  for (;;) {
    const rows = await store.find<ScheduleDocument>(changeScheduleProjection.collection.name, {
      where,
      orderBy: { field: 'from', direction: 'asc' },
      limit: 1000,
      after,
    });
    all.push(...rows);
    if (rows.length < 1000) return all;
    const last = rows[rows.length - 1];
    after = { value: last.from, id: last.id };
  }
};

/** Windows that end after `instant`: instants are stored to the millisecond, so `until ≥ instant + 1 ms`. */
const endsAfter = (instant: string): Condition => ({
  field: 'until',
  op: 'gte',
  value: new Date(Date.parse(instant) + 1).toISOString(),
});

/**
 * The forward schedule: changes on the calendar whose windows overlap the range, earliest
 * first, each open one with the open changes it collides with (windows overlapping on a system
 * both name), looked up in one more query over the page's span.
 */
@QueryHandler(GetSchedule)
export class GetScheduleHandler implements IQueryHandler<GetSchedule> {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async execute({ from, to, system, page: request, byChangeId }: GetSchedule) {
    const where: Condition[] = [
      { field: 'listed', op: 'eq', value: true },
      { field: 'from', op: 'lt', value: to.toISOString() },
      endsAfter(from.toISOString()),
    ];
    if (system !== undefined) where.push({ field: 'systemKeys', op: 'contains', value: systemKey(system) });
    const result = await findPage<ScheduleDocument>(
      this.store,
      changeScheduleProjection.collection.name,
      {
        where,
        orderBy: byChangeId ? { field: 'id', direction: 'asc' } : { field: 'from', direction: 'asc' },
      },
      request,
    );
    const open = result.items.filter((d) => d.open);
    const candidates =
      open.length === 0
        ? []
        : await everyScheduled(this.store, [
            { field: 'open', op: 'eq', value: true },
            { field: 'from', op: 'lt', value: open.reduce((m, d) => (d.until > m ? d.until : m), '') },
            endsAfter(open.reduce((m, d) => (d.from < m ? d.from : m), open[0].from)),
          ]);
    const now = this.clock.now();
    return {
      items: result.items.map((d) => toScheduleItem(d, now, candidates)),
      nextCursor: result.nextCursor,
    };
  }
}

export const READ_MODEL_QUERY_HANDLERS = [
  GetChangeHandler,
  ListChangesHandler,
  GetChangeLogHandler,
  ListPendingApprovalsHandler,
  GetRetrospectiveQueueHandler,
  ListFollowUpsHandler,
  ListStandardTemplatesHandler,
  GetStandardTemplateHandler,
  GetScheduleHandler,
];
