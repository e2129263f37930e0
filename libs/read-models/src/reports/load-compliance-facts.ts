import type { ComplianceFactsDocument } from '../projections/compliance-facts.projection';
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
