import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { type EventStore, SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  complianceReportFromStore,
  prepareRebuild,
  Projector,
  PROJECTOR_CHECKPOINT,
  type ReadModelStore,
  REBUILD_GENERATION,
  REBUILD_PROMOTING,
  resolveReportPeriod,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { readModelStoresUnderTest } from '../support/read-model-stores';

const submissionsUpTo = async (events: EventStore, position: bigint) =>
  (await events.readAll({ after: 0n, limit: 100_000 })).filter(
    (e) => e.type === 'ChangeSubmitted' && e.position <= position,
  ).length;

const report = (store: ReadModelStore) =>
  complianceReportFromStore(store, resolveReportPeriod({ period: '2026' }), {
    now: new Date('2026-12-31T00:00:00.000Z'),
    settings: { retrospectiveDueBusinessDays: 2, postImplementationReviewDueBusinessDays: 5 },
  });

/**
 * A compliance report reads the read models page by page. A rebuild swapped in between two pages
 * brings models replayed only up to where the rebuild read the log: the report must not mix the
 * two, nor claim a position its documents do not reach.
 */
describe('compliance report across a rebuild swap', () => {
  const { dir, stores, cleanUp } = readModelStoresUnderTest('report across a swap', 'report_swap');
  afterAll(cleanUp);

  it.each(stores)(
    'a swap after the first page: the report is read again and covers the position it names (%s)',
    async (name, open) => {
      const events = new SqliteEventStore(join(dir, `events-${name}.sqlite`));
      const live = await open(`live-${name}`);
      const projector = new Projector(events, live, allProjections(), { logger: { error: () => undefined } });
      try {
        await writeRandomLifecycles(events, { seed: 11, count: 6 });
        await projector.start();
        const rebuiltThrough = await events.headPosition();
        expect(await projector.waitFor(rebuiltThrough, 20_000)).toBe(true);
        // A rebuild replays the log as it stands now; changes submitted after it are only in
        // the live models, which it is about to replace.
        const rebuild = await prepareRebuild(events, live, allProjections());
        await writeRandomLifecycles(events, { seed: 12, count: 6, idOffset: 100 });
        const head = await events.headPosition();
        expect(await projector.waitFor(head, 20_000)).toBe(true);
        expect(await submissionsUpTo(events, head)).toBeGreaterThan(
          await submissionsUpTo(events, rebuiltThrough),
        );

        // The store as the report sees it: the rebuild is swapped in right after its first page.
        let pages = 0;
        const swappingAfterFirstPage = new Proxy(live, {
          get(target, property, receiver) {
            if (property !== 'find') return Reflect.get(target, property, receiver) as unknown;
            return async (...args: Parameters<ReadModelStore['find']>) => {
              const page = await target.find(...args);
              if (++pages === 1) await rebuild.promote();
              return page;
            };
          },
        });
        const built = await report(swappingAfterFirstPage);

        expect(await live.checkpoint(REBUILD_GENERATION)).toBe(rebuild.generation);
        expect(await live.checkpoint(REBUILD_PROMOTING)).toBe(rebuild.generation);
        // Read again after the swap (two queries a pass: more than one pass's pages)...
        expect(pages).toBeGreaterThan(2);
        // ...and every change submitted up to the position the report names is in it.
        const named = BigInt(built.readModelPosition);
        expect(named).toBeGreaterThanOrEqual(rebuiltThrough);
        expect(built.volumes.submitted.total).toBeGreaterThanOrEqual(await submissionsUpTo(events, named));
        // ...and none twice (pages of the models before and after the swap are not added up)
        expect(built.volumes.submitted.total).toBeLessThanOrEqual(await submissionsUpTo(events, head));

        // Once the projector has re-applied what the rebuilt models lacked (it notices the swap
        // within a second), all of them are.
        const deadline = Date.now() + 20_000;
        while ((await live.checkpoint(PROJECTOR_CHECKPOINT)) < head && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 50));
        const healed = await report(live);
        expect(BigInt(healed.readModelPosition)).toBeGreaterThanOrEqual(head);
        expect(healed.volumes.submitted.total).toBe(await submissionsUpTo(events, head));
      } finally {
        await projector.stop();
        await live.close();
        await events.close();
      }
    },
    60_000,
  );
});
