import { Inject } from '@nestjs/common';
import { type IQueryHandler, QueryHandler } from '@nestjs/cqrs';
import {
  type ComplianceReport,
  complianceReportFromStore,
  READ_MODEL_STORE,
  type ReadModelStore,
  type ReportPeriod,
} from '@changeledger/read-models';
import { APP_CONFIG, type AppConfig, CLOCK, type Clock } from '@changeledger/platform';

export class GetComplianceReport {
  constructor(readonly period: ReportPeriod) {}
}

/** Built from the `compliance_facts` read model only: never a scan of the event store. */
@QueryHandler(GetComplianceReport)
export class GetComplianceReportHandler implements IQueryHandler<GetComplianceReport, ComplianceReport> {
  constructor(
    @Inject(READ_MODEL_STORE) private readonly store: ReadModelStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async execute({ period }: GetComplianceReport) {
    const { documentsRead: _, ...report } = await complianceReportFromStore(this.store, period, {
      now: this.clock.now(),
      settings: this.config,
    });
    return report;
  }
}
