import { Controller, Get, Header, Inject, Query, Res } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import type { FastifyReply } from 'fastify';
import type { Actor } from '@changeledger/domain';
import { CLOCK, type Clock } from '@changeledger/platform';
import {
  assertPeriodBegun,
  type ComplianceReport,
  complianceReportCsv,
  complianceReportHtml,
  ReportPeriodError,
  resolveReportPeriod,
} from '@changeledger/read-models';
import { ProjectionLaggingError, RequestValidationError } from '../application/application-errors';
import { CurrentActor } from '../auth/current-actor.decorator';
import { AUDIT_ROLES, requireRoles } from '../auth/require-roles';
import { parsePosition } from '../read-models/parse-position';
import { ReadQueryDto } from '../read-models/read-query.dto';
import { MIN_POSITION_WAIT_MS, ReadPosition } from '../read-models/read-position';
import { GetComplianceReport } from './compliance-report.query';

export class ComplianceReportQueryDto extends ReadQueryDto {
  /** `2026-Q4`, `2026-11` or `2026`. */
  @IsOptional() @IsString() @MaxLength(20) period?: string;
  /** A date (`2026-10-01`) or an ISO 8601 instant; inclusive. */
  @IsOptional() @IsString() @MaxLength(40) from?: string;
  /** A date (inclusive: the whole day) or an ISO 8601 instant (exclusive). */
  @IsOptional() @IsString() @MaxLength(40) to?: string;
  @IsOptional() @IsIn(['json', 'csv', 'html']) format?: 'json' | 'csv' | 'html';
}

/** Waits for `minPosition` before a report is given up (see `compliance`). */
const MIN_POSITION_ATTEMPTS = 3;

const fileName = (label: string) => `compliance-${label.replace(/[^0-9A-Za-z-]+/g, '_')}`;

@ApiTags('reports')
@ApiBearerAuth()
@Controller('reports')
export class ReportsController {
  constructor(
    private readonly queryBus: QueryBus,
    private readonly readPosition: ReadPosition,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get('compliance')
  @Header('Cache-Control', 'no-store')
  async compliance(
    @Query() query: ComplianceReportQueryDto,
    @CurrentActor() actor: Actor,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    requireRoles(actor, AUDIT_ROLES);
    let period;
    try {
      period = resolveReportPeriod(query);
      assertPeriodBegun(period, query, this.clock.now());
    } catch (error) {
      if (error instanceof ReportPeriodError) {
        throw new RequestValidationError('the report period is invalid', [
          { field: error.field, message: `${error.field} ${error.message}` },
        ]);
      }
      throw error;
    }
    const minPosition = parsePosition(query.minPosition);
    let report: ComplianceReport;
    // A rebuild swapped in after the wait brings models replayed only as far as it read the log
    // (the projector re-applies the rest within a second or so): then the wait is done again.
    // All within the one 5 s wait the contract gives a minPosition read.
    const deadline = Date.now() + MIN_POSITION_WAIT_MS;
    for (let attempt = 1; ; attempt++) {
      await this.readPosition.await(minPosition, deadline);
      report = await this.queryBus.execute<GetComplianceReport, ComplianceReport>(
        new GetComplianceReport(period),
      );
      if (minPosition === undefined || BigInt(report.readModelPosition) >= minPosition) break;
      if (attempt === MIN_POSITION_ATTEMPTS) {
        throw new ProjectionLaggingError(
          `rebuilds swapped into the read models kept them behind position ${minPosition}; retry shortly`,
        );
      }
    }
    switch (query.format ?? 'json') {
      case 'csv':
        void reply.header('Content-Type', 'text/csv; charset=utf-8');
        void reply.header('Content-Disposition', `attachment; filename="${fileName(period.label)}.csv"`);
        return complianceReportCsv(report);
      case 'html':
        void reply.header('Content-Type', 'text/html; charset=utf-8');
        void reply.header('Content-Disposition', `inline; filename="${fileName(period.label)}.html"`);
        return complianceReportHtml(report);
      default:
        return report;
    }
  }
}
