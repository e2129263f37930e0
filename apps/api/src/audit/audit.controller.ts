import { Readable } from 'node:stream';
import { Controller, Get, Headers, Inject, Param, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { type Actor, changeRequestStreamId, ISO_DATE, notFound, toChangeView } from '@changeledger/domain';
import {
  type ChainReport,
  EVENT_STORE,
  type EventStore,
  parseLogAnchor,
  toAuditEvent,
  verifyHashChains,
  verifyStreamChain,
} from '@changeledger/event-store';
import { AggregateLoader } from '../application/aggregate-loader';
import { RequestValidationError } from '../application/application-errors';
import { changeRequestAggregate } from '../application/aggregates';
import { CurrentActor } from '../auth/current-actor.decorator';
import { AUDIT_ROLES, requireRoles } from '../auth/require-roles';
import { ChangeIdParam } from '../http/id-params';
import { IsLogPosition } from '../http/log-position.validator';
import { IsTimestamp } from '../http/timestamp.validator';
import { parseLimit } from '../read-models/paging';
import { ReadQueryDto } from '../read-models/read-query.dto';
import { evidenceMarkdown } from './evidence';
import { asksFor } from '../http/media-negotiation';

/**
 * Audit reads come straight from the event store, so every position a command answered is
 * already in them: `minPosition` is accepted (clients send it to every read) and always met.
 */
export class AsOfQueryDto extends ReadQueryDto {
  @IsTimestamp({
    dateOnly: true,
    description: 'A time with its zone, or a date: the change as it stood at the end of that day (UTC).',
  })
  at!: string;
}

export class EvidenceQueryDto extends ReadQueryDto {
  @IsOptional() @IsIn(['markdown', 'json']) format?: 'markdown' | 'json';
}

export class AuditVerifyQueryDto extends ReadQueryDto {
  /** `<position>:<digest>` from an earlier verify: the log up to there must be unchanged. */
  @IsOptional()
  @Matches(/^\d{1,20}:[0-9a-f]{64}$/, {
    message: 'anchor must be <position>:<sha-256 hex>, as a verify gave it',
  })
  anchor?: string;
}

export class AuditEventsQueryDto extends ReadQueryDto {
  @IsOptional()
  @IsLogPosition('after')
  after?: string;
  /** As every list of the contract takes it: the `nextCursor` of the previous page (a position). */
  @IsOptional()
  @IsLogPosition('cursor')
  cursor?: string;
  @IsOptional()
  // A JSON page takes at most 500 (the contract's lists); an NDJSON stream as many as asked.
  @Matches(/^[1-9]\d{0,8}$/, { message: 'limit must be a positive integer' })
  limit?: string;
}

const STREAM_PAGE = 1000;

@ApiTags('audit')
@ApiBearerAuth()
@Controller()
export class AuditController {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly loader: AggregateLoader,
  ) {}

  private async changeEvents(id: string) {
    const events = await this.store.readStream(changeRequestStreamId(id));
    if (events.length === 0) throw notFound(`no change request ${id}`);
    return events;
  }

  @Get('changes/:id/history')
  // (the query is validated only: unknown parameters are refused, minPosition is always met)
  async history(@Param() { id }: ChangeIdParam, @Query() _query: ReadQueryDto, @CurrentActor() actor: Actor) {
    requireRoles(actor, AUDIT_ROLES);
    const events = await this.changeEvents(id);
    // the stream's own chain, checked here too: an event deleted from it leaves a list that
    // reads as whole (the global verify would name it, but the auditor is reading this one)
    return { changeId: id, items: events.map(toAuditEvent), hashChain: verifyStreamChain(events) };
  }

  /** The sample an auditor files: the filled-in request template, its history, its chain check. */
  @Get('changes/:id/evidence')
  async evidence(
    @Param() { id }: ChangeIdParam,
    @Query() { format }: EvidenceQueryDto,
    @CurrentActor() actor: Actor,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    requireRoles(actor, AUDIT_ROLES);
    const events = await this.changeEvents(id);
    const view = toChangeView(this.loader.fold(changeRequestAggregate, events));
    const history = events.map(toAuditEvent);
    const chain = verifyStreamChain(events);
    const generatedAt = new Date().toISOString();
    if (format === 'json') return { generatedAt, change: view, history, hashChain: chain };
    void reply.header('Content-Type', 'text/markdown; charset=utf-8');
    void reply.header('Content-Disposition', `inline; filename="${id}-evidence.md"`);
    return evidenceMarkdown(view, history, chain, generatedAt);
  }

  @Get('changes/:id/as-of')
  async asOf(@Param() { id }: ChangeIdParam, @Query() { at }: AsOfQueryDto, @CurrentActor() actor: Actor) {
    requireRoles(actor, AUDIT_ROLES);
    // A bare date is the whole day, as a report's `to` is: the change as it stood at its end.
    const limit = ISO_DATE.test(at) ? Date.parse(`${at}T23:59:59.999Z`) : Date.parse(at);
    // The stream up to its first event after `at`: a prefix, never a state that did not exist
    // (instances whose clocks differ can record a later revision with an earlier time).
    const all = await this.changeEvents(id);
    const after = all.findIndex((e) => Date.parse(e.metadata.occurredAt) > limit);
    const events = after < 0 ? all : all.slice(0, after);
    if (events.length === 0) throw notFound(`change request ${id} did not exist at ${at}`);
    const state = this.loader.fold(changeRequestAggregate, events);
    return {
      asOf: new Date(limit).toISOString(),
      position: events[events.length - 1].position.toString(),
      ...toChangeView(state),
      // of the events folded: a state folded over a broken chain may never have existed
      hashChain: verifyStreamChain(events),
    };
  }

  /**
   * The global log in order. JSON pages by default; with `Accept: application/x-ndjson` a
   * stream of one event per line, read page by page as the client consumes it.
   */
  @Get('audit/events')
  async events(
    @Query() query: AuditEventsQueryDto,
    @Headers('accept') accept: string | undefined,
    @CurrentActor() actor: Actor,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    requireRoles(actor, AUDIT_ROLES);
    if (query.after !== undefined && query.cursor !== undefined && query.after !== query.cursor) {
      throw new RequestValidationError('give after or cursor, not both', [
        { field: 'cursor', message: 'give after or cursor, not both' },
      ]);
    }
    const after = BigInt(query.after ?? query.cursor ?? '0');
    if (asksFor(accept, 'application/x-ndjson', 'application/json')) {
      const store = this.store;
      const max = query.limit === undefined ? Infinity : Number(query.limit);
      async function* lines() {
        let cursor = after;
        let sent = 0;
        while (sent < max) {
          const page = await store.readAll({ after: cursor, limit: Math.min(STREAM_PAGE, max - sent) });
          if (page.length === 0) return;
          for (const e of page) yield `${JSON.stringify(toAuditEvent(e))}\n`;
          sent += page.length;
          cursor = page[page.length - 1].position;
        }
      }
      void reply.header('Content-Type', 'application/x-ndjson; charset=utf-8');
      return Readable.from(lines(), { objectMode: false, highWaterMark: 16 });
    }
    const limit = parseLimit(query.limit); // default 50, at most 500, as every list
    // one more than the page: a next page is named only when there is one
    const read = await this.store.readAll({ after, limit: limit + 1 });
    const page = read.slice(0, limit);
    const next = read.length > limit ? page[page.length - 1].position.toString() : null;
    // nextCursor as every list has it (a pager that follows it reads the whole log), nextAfter
    // for `after`: the same position
    return { items: page.map(toAuditEvent), nextCursor: next, nextAfter: next };
  }

  /**
   * A pass over the whole log hashes every event: requests that come while one runs (a page
   * reloaded, several auditors) share it, per anchor, rather than each starting another.
   */
  private readonly verifying = new Map<string, Promise<ChainReport>>();

  @Get('audit/verify')
  async verify(@Query() query: AuditVerifyQueryDto, @CurrentActor() actor: Actor) {
    requireRoles(actor, AUDIT_ROLES);
    const key = query.anchor ?? '';
    const running = this.verifying.get(key);
    if (running) return running;
    const pass = verifyHashChains(this.store, {
      anchor: query.anchor ? parseLogAnchor(query.anchor) : undefined,
    });
    this.verifying.set(key, pass);
    const forget = () => this.verifying.delete(key);
    void pass.then(forget, forget);
    return pass;
  }
}
