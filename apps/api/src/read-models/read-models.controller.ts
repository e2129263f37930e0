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
import { decodeCursor, MAX_LIMIT, pageRequestOf, parseLimit } from './paging';
import { parsePosition } from './parse-position';
import { GetChangeLog, GetRetrospectiveQueue, GetSchedule, ListPendingApprovals } from './read-model.queries';
import { ReadPosition } from './read-position';
import {
  ChangeLogQueryDto,
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
    await this.readPosition.await(parsePosition(query.minPosition));
    const format = query.format ?? 'json';
    if (format === 'json') {
      return this.queryBus.execute(new GetChangeLog(pageRequestOf(query)));
    }
    const rows: ChangeLogRow[] = [];
    const whole = query.limit === undefined && query.cursor === undefined;
    let after = decodeCursor(query.cursor);
    for (;;) {
      const limit = whole ? MAX_LIMIT : parseLimit(query.limit);
      // The whole table is read in id order (rows cannot move past the cursor while the
      // projector writes) and sorted newest first here, as the pages are.
      const pageResult = await this.queryBus.execute<
        GetChangeLog,
        { items: ChangeLogRow[]; nextCursor: string | null }
      >(new GetChangeLog({ limit, after }, whole));
      rows.push(...pageResult.items);
      if (!whole) {
        if (pageResult.nextCursor) void reply.header('Next-Cursor', pageResult.nextCursor);
        break;
      }
      if (!pageResult.nextCursor) break;
      after = decodeCursor(pageResult.nextCursor);
    }
    if (whole) rows.sort(newestFirst);
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
    await this.readPosition.await(parsePosition(query.minPosition));
    return this.queryBus.execute(new ListPendingApprovals(query.requiredApproval, pageRequestOf(query)));
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
    if (to.getTime() <= from.getTime()) {
      throw new RequestValidationError('the schedule range is empty', [
        { field: 'to', message: 'to must be after from' },
      ]);
    }
    await this.readPosition.await(parsePosition(query.minPosition));
    if (query.format !== 'ics') {
      return this.queryBus.execute(new GetSchedule(from, to, query.system, pageRequestOf(query)));
    }
    // For a calendar: the whole range, read in id order (windows move while the projector
    // writes; ids do not) and sorted by start here; or, with limit/cursor, one page of it.
    const whole = query.limit === undefined && query.cursor === undefined;
    const items: ScheduleItem[] = [];
    let cursor = query.cursor;
    for (;;) {
      const page = await this.queryBus.execute<
        GetSchedule,
        { items: ScheduleItem[]; nextCursor: string | null }
      >(
        new GetSchedule(
          from,
          to,
          query.system,
          pageRequestOf({ limit: whole ? String(MAX_LIMIT) : query.limit, cursor }),
          whole,
        ),
      );
      items.push(...page.items);
      if (!whole) {
        if (page.nextCursor) void reply.header('Next-Cursor', page.nextCursor);
        break;
      }
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    if (whole) items.sort((a, b) => compareText(a.from, b.from) || compareText(a.changeId, b.changeId));
    void reply.header('Content-Type', 'text/calendar; charset=utf-8');
    void reply.header('Content-Disposition', 'attachment; filename="change-schedule.ics"');
    return scheduleIcs(items, this.clock.now());
  }

  @Get('retrospectives/queue')
  @Header('Cache-Control', 'no-store')
  async retrospectiveQueue(@Query() query: PagedQueryDto) {
    await this.readPosition.await(parsePosition(query.minPosition));
    return this.queryBus.execute(new GetRetrospectiveQueue(pageRequestOf(query)));
  }
}

const DAY_MS = 86_400_000;
const startOfToday = (now: Date) => new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);

/** Text compared as the stores compare it. */
const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Text compared as the stores compare it, greatest first. */
const descending = (a: string, b: string) => compareText(b, a);

/** The paged order: date descending, ties by change id descending. */
const newestFirst = (a: ChangeLogRow, b: ChangeLogRow) =>
  descending(a.date, b.date) || descending(a.changeId, b.changeId);
