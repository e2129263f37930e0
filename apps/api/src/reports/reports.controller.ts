import { Controller, Get, Header, Inject, Query, Res } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
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
import { FROM_BOUND, ReadQueryDto, TO_BOUND } from '../read-models/read-query.dto';
import { MIN_POSITION_WAIT_MS, ReadPosition } from '../read-models/read-position';
import { GetComplianceReport } from './compliance-report.query';

/** The period: `period`, or `from` and `to` together (not both ways; one of them is required). */
export class ComplianceReportQueryDto extends ReadQueryDto {
  @IsOptional()
  @IsString()
  @MaxLength(20)
  @JSONSchema({
    pattern: '^[1-9]\\d{3}(-Q[1-4]|-(0[1-9]|1[0-2]))?$',
    description:
      'A quarter (`2026-Q4`), a month (`2026-11`) or a year (`2026`), in UTC. Either `period`, or `from` and `to` together.',
  })
  period?: string;
  @IsOptional()
  @IsString()
  @MaxLength(40)
  @JSONSchema({ description: `${FROM_BOUND} With \`to\`, instead of \`period\`.` })
  from?: string;
  @IsOptional()
  @IsString()
  @MaxLength(40)
  @JSONSchema({ description: `${TO_BOUND} With \`from\`, instead of \`period\`.` })
  to?: string;
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
