import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  allProjections,
  prepareRebuild,
  REBUILD_GENERATION,
  REBUILD_PAUSED,
  REBUILD_PROMOTING,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { readModelStoresUnderTest } from '../support/read-model-stores';

/**
 * A swap waits until the live projector has paused for its generation. A mark left from a swap
 * that was withdrawn (its promote failed before anything moved) must not count as that pause,
 * also when the clock of the machine that rebuilds now is behind the one that rebuilt then.
 */
describe('rebuild generations', () => {
  const { dir, stores, cleanUp } = readModelStoresUnderTest('rebuild generations', 'rebuild_generation');
  afterAll(cleanUp);

  it.each(stores)(
    'a new generation is above every mark the live models hold: generation, announced swap, pause (%s)',
    async (name, open) => {
      const events = new SqliteEventStore(join(dir, `events-${name}.sqlite`));
      const live = await open(`live-${name}`);
      try {
        await writeRandomLifecycles(events, { seed: 5, count: 2 });
        await live.init(allProjections().map((p) => p.collection));
        // made on a machine whose clock ran a day ahead of this one's
        const ahead = BigInt(Date.now() + 86_400_000) * 1000n;
        for (const [mark, position] of [
          [REBUILD_GENERATION, ahead - 10n],
          [REBUILD_PROMOTING, ahead - 10n],
          [REBUILD_PAUSED, ahead],
        ] as const) {
          await live.commit({ documents: [], checkpoint: { name: mark, position } });
        }
        const rebuild = await prepareRebuild(events, live, allProjections());
        expect(rebuild.generation).toBeGreaterThan(ahead);
        await rebuild.discard();
      } finally {
        await live.close();
        await events.close();
      }
    },
    60_000,
  );
});
