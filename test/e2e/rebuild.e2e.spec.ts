import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  allProjections,
  prepareRebuild,
  rebuildReadModels,
  READ_MODEL_STORE,
  type ReadModelStore,
} from '@changeledger/read-models';
import { AppHarness, USERS } from './support/app-harness';
import { cliBuilt, cliReachesEvents, runCli } from './support/cli';
import { emergencyChange, expectStatus, normalChange, reviewAll, submit } from './support/change-fixtures';

describe('projections:rebuild while the API serves', () => {
  let app: AppHarness;
  beforeAll(async () => {
    app = await AppHarness.start();
  });
  afterAll(async () => app.close());

  it('replays the log into shadow read models and swaps them in; reads answer the same before, during and after', async () => {
    for (let i = 0; i < 40; i++) {
      const { id } = await submit(
        app,
        i % 4 === 0 ? emergencyChange() : normalChange(i % 2 ? 'low' : 'high'),
        i % 4 === 0 ? USERS.implementer : USERS.requester,
      );
      if (i % 3 === 0 && i % 4 !== 0) await reviewAll(app, id);
    }
    const read = async () => ({
      changes: expectStatus(await app.get('/changes?limit=500'), 200).body,
      log: expectStatus(await app.get('/change-log?format=markdown'), 200).body,
      pending: expectStatus(await app.get('/approvals/pending?limit=500'), 200).body,
      queue: expectStatus(await app.get('/retrospectives/queue?limit=500'), 200).body,
    });
    const before = await read();
    const store = app.app.get<ReadModelStore>(READ_MODEL_STORE);
    const progress: bigint[] = [];
    // The reads "during" start at the first progress report (the shadow is filling) and the swap
    // waits for them: so they are served while both the live models and the shadow exist.
    let during: ReturnType<typeof read> | undefined;
    const createShadow = store.createShadow.bind(store);
    store.createShadow = async () => {
      const shadow = await createShadow();
      const promote = shadow.promote.bind(shadow);
      shadow.promote = async (options) => {
        await during;
        return promote(options);
      };
      return shadow;
    };
    let result: Awaited<ReturnType<typeof rebuildReadModels>>;
    try {
      result = await rebuildReadModels(app.store, store, allProjections(), (p) => {
        during ??= read();
        progress.push(p.position);
      });
    } finally {
      delete (store as { createShadow?: unknown }).createShadow;
    }
    expect(result.events).toBe(await app.eventCount());
    expect(progress.at(-1)).toBe(result.head);
    expect(during).toBeDefined();
    expect(await during).toEqual(before); // served from the live models while the shadow filled
    expect(await read()).toEqual(before);

    // The projector keeps working on the swapped-in models.
    const { id } = await submit(app, normalChange('low', { title: 'After the rebuild' }));
    expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
      title: 'After the rebuild',
    });
  });

  it('a compliance report asked for with minPosition waits again when a rebuild swapped in after the wait lacks it', async () => {
    type Report = { readModelPosition: string; volumes: { submitted: { total: number } } };
    const report = async (minPosition: string) =>
      expectStatus(
        await app.get<Report>(`/reports/compliance?period=2026&minPosition=${minPosition}`, USERS.auditor),
        200,
      ).body;
    const first = await submit(app, normalChange('low', { title: 'Before the report rebuild' }));
    const submittedBefore = (await report(first.position)).volumes.submitted.total;

    const store = app.app.get<ReadModelStore>(READ_MODEL_STORE);
    const rebuild = await prepareRebuild(app.store, store, allProjections());
    // Submitted after the rebuild read the log: only in the live models, which it replaces.
    const { position } = await submit(app, normalChange('low', { title: 'After the report rebuild read' }));
    // The swap lands once the API has waited for `position` and the report starts reading.
    let swapped = false;
    const find = store.find.bind(store);
    store.find = (async (...args: Parameters<ReadModelStore['find']>) => {
      if (!swapped && args[0] === 'compliance_facts') {
        swapped = true;
        await rebuild.promote();
      }
      return find(...args);
    }) as ReadModelStore['find'];
    try {
      const built = await report(position);
      expect(swapped).toBe(true);
      expect(BigInt(built.readModelPosition)).toBeGreaterThanOrEqual(BigInt(position));
      expect(built.volumes.submitted.total).toBe(submittedBefore + 1);
    } finally {
      delete (store as { find?: unknown }).find;
    }
  });

  const whenBuilt = cliBuilt && cliReachesEvents ? it : it.skip;

  whenBuilt(
    '`npm run projections:rebuild` in another process, while the API serves and takes writes, loses nothing',
    async () => {
      const rebuild = runCli(app.config, ['rebuild']);
      // Writes while the other process replays and swaps: the API's projector applies them to
      // models that may be on their way out, and must re-apply them to the new ones.
      const written: string[] = [];
      let last = '0';
      let done = false;
      void rebuild.finally(() => (done = true));
      while (!done || written.length < 5) {
        const { id, position } = await submit(
          app,
          normalChange('low', { title: `During rebuild ${written.length}` }),
        );
        written.push(id);
        last = position;
      }
      const { stderr } = await rebuild;
      // the swap is announced before it starts (it builds every index: long at a large log)
      expect(stderr).toMatch(
        /rebuild: replayed in [\d.]+ s; swapping in \(building the indexes(, pausing the projector)?\)…\n(.*\n)*rebuild: \d+ events into \d+ read models in [\d.]+ s; swapped in/,
      );
      // No pause for the projector to notice the swap: minPosition waits for the models
      // swapped in to include the last write (the projector's own position ran ahead of them).
      const listed = expectStatus(await app.get(`/changes?limit=500&minPosition=${last}`), 200).body as {
        items: { id: string }[];
      };
      const ids = new Set(listed.items.map((i) => i.id));
      expect(written.filter((id) => !ids.has(id))).toEqual([]);
      for (const id of written) {
        expect(expectStatus(await app.get(`/changes/${id}`), 200).body).toMatchObject({
          id,
          status: 'in-review',
        });
      }
    },
    60_000,
  );
});
