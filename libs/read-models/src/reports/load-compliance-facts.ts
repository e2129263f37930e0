import {
  type ComplianceFactsDocument,
  complianceFactsProjection,
} from '../projections/compliance-facts.projection';
import { describeStale, staleReadModels } from '../projection-versions';
import { type ComplianceReport, ComplianceReportBuilder, type ReportSettings } from './compliance-report';
import type { Condition, ReadModelStore } from '../read-model-store.port';
import type { ReportPeriod } from './report-period';
import { PROJECTOR_CHECKPOINT, rebuildSwapState } from '../projector';

const PAGE = 500;

/**
 * How long a report waits out a rebuild being swapped in while it reads (a MongoDB swap renames
 * collections one by one and waits for the live projector: seconds) before it gives up.
 */
export const REPORT_SWAP_WAIT_MS = 15_000;
const SWAP_RETRY_PAUSE_MS = 250;

/** A rebuild's swap kept the report from reading the read models in one piece. */
export class ReadModelsSwappingError extends Error {
  constructor(waitedMs: number, announced: boolean) {
    const waited = `${Math.round(waitedMs / 1000)} s`;
    super(
      announced
        ? // a swap that died half-way stays announced until a rebuild completes it (MongoDB)
          `a rebuild of the read models is being swapped in and has not finished for ${waited}; ` +
            'if no rebuild is running, run projections:rebuild to complete it, then try again'
        : `rebuilds of the read models were swapped in while the report was read, for ${waited}; try again shortly`,
    );
    this.name = 'ReadModelsSwappingError';
  }
}

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
 * they are read; `onDocument` counts them, for a progress display. The report's
 * `readModelPosition` is the store's checkpoint before reading: the report includes at least
 * every event up to it (a projector's position in memory can be ahead of the models it serves
 * for a moment after a rebuild is swapped in, until it has re-applied what they lack).
 *
 * A rebuild swapped in while the pages are read would mix old and rebuilt documents, and a
 * change whose sort key moved back in the rebuilt ones would be skipped: the report is read
 * again until no swap began or ended while it was read, for up to REPORT_SWAP_WAIT_MS from the first
 * swap seen. The re-read's position may then be lower than the first's (the rebuilt models reach
 * only as far as the rebuild read the log, until the live projector has re-applied the rest).
 */
export const complianceReportFromStore = async (
  store: ReadModelStore,
  period: ReportPeriod,
  options: {
    readonly now: Date;
    readonly settings: ReportSettings;
    readonly onDocument?: (count: number) => void;
  },
): Promise<ComplianceReport & { readonly documentsRead: number }> => {
  let swapSeenAt: number | undefined; // the wait is counted from there, not from a long read's start
  const giveUpAfterSettling = (announced: boolean) => {
    swapSeenAt ??= performance.now();
    const waited = performance.now() - swapSeenAt;
    if (waited >= REPORT_SWAP_WAIT_MS) throw new ReadModelsSwappingError(waited, announced);
  };
  for (;;) {
    const before = await rebuildSwapState(store);
    if (before.swapping) {
      giveUpAfterSettling(true);
      await new Promise((resolve) => setTimeout(resolve, SWAP_RETRY_PAUSE_MS));
    } else {
      const readModelPosition = await store.checkpoint(PROJECTOR_CHECKPOINT);
      const builder = new ComplianceReportBuilder(period, options.now, options.settings);
      let count = 0;
      for await (const doc of loadComplianceFacts(store, period)) {
        builder.add(doc);
        options.onDocument?.(++count);
      }
      const stale = await staleReadModels(store, [complianceFactsProjection], readModelPosition);
      // Both markers only grow: equal before and after, no swap began or ended in between.
      const after = await rebuildSwapState(store);
      if (after.promoting === before.promoting && after.generation === before.generation) {
        return {
          ...builder.build(readModelPosition),
          warnings: stale.length > 0 ? [describeStale(stale)] : [],
          documentsRead: count,
        };
      }
      // A swap began or ended while reading: read again, at once unless one is under way.
      giveUpAfterSettling(false);
    }
  }
};
