import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  complianceFactsProjection,
  allProjections,
  complianceReportFromStore,
  type Projection,
  projectionVersionCheckpoint,
  Projector,
  PROJECTOR_CHECKPOINT,
  rebuildReadModels,
  replayInto,
  SqliteReadModelStore,
  recordProjectionVersions,
  resolveReportPeriod,
  staleReadModels,
} from '@changeledger/read-models';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { readModelSnapshot } from '../support/read-model-snapshot';
import { readModelStoresUnderTest } from '../support/read-model-stores';

/**
 * After an upgrade that changes a projection, the documents it wrote keep their old meaning
 * until a rebuild: the read models remember which projection versions built them.
 */
describe('projection versions', () => {
  const { dir, stores, cleanUp } = readModelStoresUnderTest('projection versions', 'versions');
  afterAll(cleanUp);

  it.each(stores)(
    'models built before versions were kept are named until a rebuild; fresh and rebuilt ones are current (%s)',
    async (name, open) => {
      const projections = allProjections();
      const raised = projections.filter((p) => (p.version ?? 1) > 1).map((p) => p.collection.name);
      expect(raised).toContain('compliance_facts');
      const events = new SqliteEventStore(join(dir, `events-${name}.sqlite`));
      await writeRandomLifecycles(events, { seed: 3, count: 4 });
      const head = await events.headPosition();

      // Models projected from the first event by this code: current.
      const fresh = await open('fresh');
      const errors: string[] = [];
      const projector = new Projector(events, fresh, projections, {
        logger: { error: (m) => errors.push(m) },
      });
      await projector.start();
      expect(await projector.waitFor(head, 20_000)).toBe(true);
      await projector.stop();
      expect(await staleReadModels(fresh, projections, head)).toEqual([]);
      expect(errors).toEqual([]);

      // Models an older release built (a checkpoint, no versions): the raised ones are stale, and
      // a projector starting on them says so.
      const old = await open('old');
      await old.init(projections.map((p) => p.collection));
      await old.commit({ documents: [], checkpoint: { name: PROJECTOR_CHECKPOINT, position: head } });
      expect((await staleReadModels(old, projections, head)).map((s) => s.readModel)).toEqual(raised);
      expect(await staleReadModels(old, projections, head)).toContainEqual({
        readModel: 'compliance_facts',
        builtBy: 1,
        current: complianceFactsProjection.version,
        mixed: false,
      });
      // and the compliance report built from such facts says so to its reader
      const report = () =>
        complianceReportFromStore(old, resolveReportPeriod({ period: '2026' }), {
          now: new Date(),
          settings: { retrospectiveDueBusinessDays: 2, postImplementationReviewDueBusinessDays: 5 },
        });
      expect((await report()).warnings).toEqual([
        expect.stringContaining(`compliance_facts (version 1, now ${complianceFactsProjection.version})`),
      ]);
      const starting = new Projector(events, old, projections, { logger: { error: (m) => errors.push(m) } });
      await starting.start();
      await starting.stop();
      expect(errors).toEqual([
        expect.stringMatching(
          new RegExp(
            `compliance_facts \\(version 1, now ${complianceFactsProjection.version}\\).*projections:rebuild`,
          ),
        ),
      ]);

      // An older process cannot mark newer models old (checkpoints only move forward)...
      const older = projections.map((p) => ({ ...p, version: 1 }) as Projection);
      await recordProjectionVersions(fresh, older);
      expect(await staleReadModels(fresh, projections, head)).toEqual([]);
      // ...but one that projects into them (a downgrade without a rebuild) leaves documents of
      // two versions: named from then on, also once this version runs again, until a rebuild
      const downgraded = new Projector(events, fresh, older, { logger: { error: () => undefined } });
      await downgraded.start();
      await downgraded.stop();
      expect(await staleReadModels(fresh, projections, head)).toEqual(
        raised.map((readModel) => {
          const current = projections.find((p) => p.collection.name === readModel)!.version!;
          return { readModel, builtBy: current, current, mixed: true };
        }),
      );
      await rebuildReadModels(events, fresh, projections);
      expect(await staleReadModels(fresh, projections, await fresh.checkpoint(PROJECTOR_CHECKPOINT))).toEqual(
        [],
      );

      // A rebuild records the versions that built it: swapped in, nothing is stale.
      await rebuildReadModels(events, old, projections);
      expect(await staleReadModels(old, projections, await old.checkpoint(PROJECTOR_CHECKPOINT))).toEqual([]);
      expect((await report()).warnings).toEqual([]);
      expect(
        await old.checkpoint(
          projectionVersionCheckpoint(projections.find((p) => p.collection.name === 'compliance_facts')!),
        ),
      ).toBe(BigInt(complianceFactsProjection.version!));
      await Promise.all([fresh.close(), old.close(), events.close()]);
    },
    60_000,
  );

  it.each(stores)(
    "a projector of an older release that keeps running through a newer release's rebuild marks the models mixed when it heals (%s)",
    async (name, open) => {
      const projections = allProjections();
      const raised = projections.filter((p) => (p.version ?? 1) > 1).map((p) => p.collection.name);
      const older = projections.map((p) => ({ ...p, version: 1 }) as Projection);
      const events = new SqliteEventStore(join(dir, `events-upgrade-${name}.sqlite`));
      await writeRandomLifecycles(events, { seed: 5, count: 3 });
      const store = await open('upgrade');
      // release 1 projects, and goes on projecting while release 2 rebuilds
      const running = new Projector(events, store, older, { logger: { error: () => undefined } });
      await running.start();
      expect(await running.waitFor(await events.headPosition(), 20_000)).toBe(true);
      await rebuildReadModels(events, store, projections);
      expect(await staleReadModels(store, projections, await store.checkpoint(PROJECTOR_CHECKPOINT))).toEqual(
        [],
      );
      // the next events reach the old projector, which heals onto the swapped-in models
      await writeRandomLifecycles(events, { seed: 6, count: 1, idOffset: 100 });
      expect(await running.waitFor(await events.headPosition(), 20_000)).toBe(true);
      await running.stop();
      expect(await staleReadModels(store, projections, await events.headPosition())).toEqual(
        raised.map((readModel) => {
          const current = projections.find((p) => p.collection.name === readModel)!.version!;
          return { readModel, builtBy: current, current, mixed: true };
        }),
      );
      await Promise.all([store.close(), events.close()]);
    },
    60_000,
  );

  it('a read model added by an upgrade (the read-model set renamed) fills on the first start; the others are left as they were (sqlite)', async () => {
    const all = allProjections();
    // the newest read model (v4: follow_ups), absent from the release before
    const added = 'follow_ups';
    const previous = all.filter((p) => p.collection.name !== added);
    const events = new SqliteEventStore(join(dir, 'events-added.sqlite'));
    await writeRandomLifecycles(events, { seed: 8, count: 8 });
    const head = await events.headPosition();
    // What the previous release left: its read models, and its checkpoint under its own name.
    const file = join(dir, 'added.sqlite');
    const old = await SqliteReadModelStore.open(file);
    await replayInto(events, old, previous);
    await recordProjectionVersions(old, previous);
    await old.close();
    const raw = new Database(file);
    raw
      .prepare('UPDATE rm_checkpoints SET name = ? || substr(name, ?) WHERE name LIKE ?')
      .run('read-models@v3', PROJECTOR_CHECKPOINT.length + 1, `${PROJECTOR_CHECKPOINT}%`);
    // A mark no projection writes: it stays only if the existing documents are not rewritten.
    raw
      .prepare(
        "UPDATE rm_change_log SET doc = json_set(doc, '$.description', 'untouched') WHERE id = (SELECT min(id) FROM rm_change_log)",
      )
      .run();
    raw.close();

    const store = await SqliteReadModelStore.open(file);
    await store.init(previous.map((p) => p.collection));
    const before = await readModelSnapshot(store, previous);
    expect(
      before.change_log.some(
        (row) => (row as unknown as { description: string }).description === 'untouched',
      ),
    ).toBe(true);
    expect(await store.checkpoint(PROJECTOR_CHECKPOINT)).toBe(0n);
    const errors: string[] = [];
    const projector = new Projector(events, store, all, { logger: { error: (m) => errors.push(m) } });
    await projector.start();
    expect(await projector.waitFor(head, 20_000)).toBe(true);
    await projector.stop();
    expect(errors).toEqual([]);
    // the new read model as a replay from scratch builds it; the others untouched; none stale
    const fresh = await SqliteReadModelStore.open(join(dir, 'added-fresh.sqlite'));
    await replayInto(events, fresh, all);
    const newModel = all.filter((p) => p.collection.name === added);
    expect((await readModelSnapshot(store, newModel))[added]!.length).toBeGreaterThan(0);
    expect(await readModelSnapshot(store, newModel)).toEqual(await readModelSnapshot(fresh, newModel));
    expect(await readModelSnapshot(store, previous)).toEqual(before);
    expect(await staleReadModels(store, all, head)).toEqual([]);
    await Promise.all([store.close(), fresh.close(), events.close()]);
  }, 60_000);
});
