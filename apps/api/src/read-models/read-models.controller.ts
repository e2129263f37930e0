import { Controller, Get, Header, Inject, Query, Res } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import {
  type ChangeLogRow,
  changeLogCsv,
  changeLogMarkdown,
  parseBound,
  type ScheduleItem,
  scheduleIcs,
} from '@changeledger/read-models';
import { LAST_UTC_INSTANT_MS } from '@changeledger/domain';
import { CLOCK, type Clock } from '@changeledger/platform';
import { CalendarFeed } from '../auth/auth.guard';
import { RequestValidationError } from '../application/application-errors';
import { decodeCursor, MAX_LIMIT, type PageRequest, pageRequestOf } from './paging';
import { parsePosition } from './parse-position';
import {
  GetChangeLog,
  GetRetrospectiveQueue,
  GetSchedule,
  ListFollowUps,
  ListPendingApprovals,
  refuseEmptyRange,
} from './read-model.queries';
import { ReadPosition } from './read-position';
import {
  ChangeLogQueryDto,
  FollowUpsQueryDto,
  PagedQueryDto,
  PendingApprovalsQueryDto,
  ScheduleQueryDto,
} from './read-query.dto';

@ApiTags('read models')
@ApiBearerAuth()
@Controller()
export class ReadModelsController {
  constructor(
    private readonly queryBus: QueryBus,
    private readonly readPosition: ReadPosition,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * The seed's change log. JSON is paged; CSV and Markdown are the whole table (or, with
   * `limit`/`cursor`, one page of it), Markdown exactly in the seed's layout.
   */
  @Get('change-log')
  async changeLog(@Query() query: ChangeLogQueryDto, @Res({ passthrough: true }) reply: FastifyReply) {
    const format = query.format ?? 'json';
    if (format === 'json') {
      return this.readPosition.read(parsePosition(query.minPosition), () =>
        this.queryBus.execute(new GetChangeLog(pageRequestOf(query, 'change-log'))),
      );
    }
    // sorted newest first, as the pages are
    const rows = await this.readPosition.read(parsePosition(query.minPosition), () =>
      exportRows(
        'change-log',
        query,
        reply,
        (page, byChangeId) =>
          this.queryBus.execute<GetChangeLog, Page<ChangeLogRow>>(new GetChangeLog(page, byChangeId)),
        newestFirst,
      ),
    );
    if (format === 'csv') {
      void reply.header('Content-Type', 'text/csv; charset=utf-8');
      void reply.header('Content-Disposition', 'attachment; filename="change-log.csv"');
      return changeLogCsv(rows);
    }
    void reply.header('Content-Type', 'text/markdown; charset=utf-8');
    return changeLogMarkdown(rows);
  }

  @Get('approvals/pending')
  async pendingApprovals(@Query() query: PendingApprovalsQueryDto) {
    return this.readPosition.read(parsePosition(query.minPosition), () =>
      this.queryBus.execute(
        new ListPendingApprovals(query.requiredApproval, pageRequestOf(query, 'approvals/pending')),
      ),
    );
  }

  /**
   * The forward schedule of change: changes whose windows overlap [from, to), earliest first,
   * each open one with the open changes it collides with on a system.
   */
  @Get('schedule')
  @CalendarFeed('schedule')
  @Header('Cache-Control', 'no-store')
  // a feed token in the URL must not leave in a Referer to links a calendar client follows
  @Header('Referrer-Policy', 'no-referrer')
  async schedule(@Query() query: ScheduleQueryDto, @Res({ passthrough: true }) reply: FastifyReply) {
    const from = query.from === undefined ? startOfToday(this.clock.now()) : parseBound('from', query.from);
    const to =
      query.to === undefined
        ? new Date(Math.min(from.getTime() + 14 * DAY_MS, LAST_UTC_INSTANT_MS))
        : parseBound('to', query.to);
    refuseEmptyRange(from, to, 'the schedule range');
    // Each page looks up every open change of the range for collisions, and the calendar is one
    // answer: a range of decades (anyone with a feed token may ask) would hold a request that long.
    if (to.getTime() - from.getTime() > MAX_SCHEDULE_DAYS * DAY_MS) {
      throw new RequestValidationError(`the schedule range is longer than ${MAX_SCHEDULE_DAYS} days`, [
        {
          field: 'to',
          message: `to must be at most ${MAX_SCHEDULE_DAYS} days after from; ask for several ranges`,
        },
      ]);
    }
    if (query.format !== 'ics') {
      return this.readPosition.read(parsePosition(query.minPosition), () =>
        this.queryBus.execute(new GetSchedule(from, to, query.system, pageRequestOf(query, 'schedule'))),
      );
    }
    // for a calendar, sorted by start
    const items = await this.readPosition.read(parsePosition(query.minPosition), () =>
      exportRows(
        'schedule',
        query,
        reply,
        (page, byChangeId) =>
          this.queryBus.execute<GetSchedule, Page<ScheduleItem>>(
            new GetSchedule(from, to, query.system, page, byChangeId),
          ),
        (a, b) => compareText(a.from, b.from) || compareText(a.changeId, b.changeId),
      ),
    );
    void reply.header('Content-Type', 'text/calendar; charset=utf-8');
    void reply.header('Content-Disposition', 'attachment; filename="change-schedule.ics"');
    return scheduleIcs(items, this.clock.now());
  }

  /**
   * Approved normal and standard changes not yet closed, each with the step it waits for (to be
   * scheduled, started, completed, reviewed, closed), since when, when that is due and whether
   * it is overdue now. Longest waiting first.
   */
  @Get('follow-ups')
  @Header('Cache-Control', 'no-store')
  async followUps(@Query() query: FollowUpsQueryDto) {
    return this.readPosition.read(parsePosition(query.minPosition), () =>
      this.queryBus.execute(new ListFollowUps(query.waitingFor, pageRequestOf(query, 'follow-ups'))),
    );
  }

  @Get('retrospectives/queue')
  @Header('Cache-Control', 'no-store')
  async retrospectiveQueue(@Query() query: PagedQueryDto) {
    return this.readPosition.read(parsePosition(query.minPosition), () =>
      this.queryBus.execute(new GetRetrospectiveQueue(pageRequestOf(query, 'retrospectives/queue'))),
    );
  }
}

type Page<T> = { items: T[]; nextCursor: string | null };

/**
 * The rows of an export (CSV, Markdown, iCalendar): without `limit` and `cursor` the whole list,
 * read page by page in change-id order (a row whose sort key moves while the projector writes
 * could be stepped over or met twice; ids never move) and put in `order` here; with them, the
 * one page asked for, the next page's cursor in a `Next-Cursor` header.
 */
const exportRows = async <T>(
  list: string,
  query: { readonly limit?: string; readonly cursor?: string },
  reply: FastifyReply,
  read: (page: PageRequest, byChangeId: boolean) => Promise<Page<T>>,
  order: (a: T, b: T) => number,
): Promise<T[]> => {
  if (query.limit !== undefined || query.cursor !== undefined) {
    const page = await read(pageRequestOf(query, list), false);
    // (set or cleared: a read done again after a rebuild's swap may have no next page)
    if (page.nextCursor) void reply.header('Next-Cursor', page.nextCursor);
    else void reply.removeHeader('Next-Cursor');
    return page.items;
  }
  const rows: T[] = [];
  let after: PageRequest['after'];
  for (;;) {
    const page = await read({ limit: MAX_LIMIT, after }, true);
    rows.push(...page.items);
    if (!page.nextCursor) return rows.sort(order);
    after = decodeCursor(page.nextCursor);
  }
};

const DAY_MS = 86_400_000;
/** The longest range of the schedule (a leap year: a year of dates, `to` a date-only bound, fits). */
const MAX_SCHEDULE_DAYS = 366;
const startOfToday = (now: Date) => new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);

/** Text compared as the stores compare it. */
const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Text compared as the stores compare it, greatest first. */
const descending = (a: string, b: string) => compareText(b, a);

/** The paged order: date descending, ties by change id descending. */
const newestFirst = (a: ChangeLogRow, b: ChangeLogRow) =>
  descending(a.date, b.date) || descending(a.changeId, b.changeId);
