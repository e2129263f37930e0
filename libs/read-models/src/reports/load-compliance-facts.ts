import {
  type ComplianceFactsDocument,
  complianceFactsProjection,
} from '../projections/compliance-facts.projection';
import { describeStale, staleReadModels } from '../projection-versions';
import { type ComplianceReport, ComplianceReportBuilder, type ReportSettings } from './compliance-report';
import type { Condition, ReadModelStore } from '../read-model-store.port';
import type { ReportPeriod } from './report-period';

const PAGE = 500;

/**
 * The `compliance_facts` documents a report of `period` needs: every change still open (an
 * emergency implemented long ago and never approved is still overdue today), then every change
 * submitted before the period's end with activity since it began. Changes closed before the
 * period are left out, by index. A change the projector updates while this pages through may
 * come twice (its sort key moved); the report builder keeps the first.
 */
export async function* loadComplianceFacts(
  store: ReadModelStore,
  period: ReportPeriod,
): AsyncGenerator<ComplianceFactsDocument> {
  const queries: Condition[][] = [
    [
      { field: 'open', op: 'eq', value: true },
      { field: 'lastActivityAt', op: 'lt', value: period.from },
    ],
    [
      { field: 'lastActivityAt', op: 'gte', value: period.from },
      { field: 'submittedAt', op: 'lt', value: period.to },
    ],
  ];
  for (const where of queries) {
    let after: { value: string; id: string } | undefined;
    for (;;) {
      const page = await store.find<ComplianceFactsDocument>('compliance_facts', {
        where,
        orderBy: { field: 'lastActivityAt', direction: 'asc' },
        limit: PAGE,
        after,
      });
      yield* page;
      if (page.length < PAGE) break;
      const last = page[page.length - 1];
      after = { value: last.lastActivityAt, id: last.id };
    }
  }
}

/**
 * The report of `period` from the read-model store: the documents are folded one at a time as
 * they are read. `readModelPosition` is where the store stood before reading (the report includes
 * at least every event up to it); `onDocument` counts them, for a progress display.
 */
export const complianceReportFromStore = async (
  store: ReadModelStore,
  period: ReportPeriod,
  options: {
    readonly now: Date;
    readonly settings: ReportSettings;
    readonly readModelPosition: bigint;
    readonly onDocument?: (count: number) => void;
  },
): Promise<ComplianceReport & { readonly documentsRead: number }> => {
  const builder = new ComplianceReportBuilder(period, options.now, options.settings);
  let count = 0;
  for await (const doc of loadComplianceFacts(store, period)) {
    builder.add(doc);
    options.onDocument?.(++count);
  }
  const stale = await staleReadModels(store, [complianceFactsProjection], options.readModelPosition);
  return {
    ...builder.build(options.readModelPosition),
    warnings: stale.length > 0 ? [describeStale(stale)] : [],
    documentsRead: count,
  };
};
