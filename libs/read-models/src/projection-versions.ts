import type { Projection } from './projections/projection';
import type { ReadModelStore } from './read-model-store.port';

/** What these checks need of a projection (any document type). */
type Versioned = Pick<Projection, 'collection' | 'version'>;

/** Checkpoint names under which the read models record the projection version that built them. */
export const projectionVersionCheckpoint = (projection: Versioned) =>
  `projection-version:${projection.collection.name}`;

/**
 * Set (forward only) when a projector of an older version than the one recorded wrote into the
 * models (a downgrade without a rebuild): their documents are then of two versions, whatever
 * the recorded one says later. Only a rebuild, whose shadow does not carry it, clears it.
 */
const mixedCheckpoint = (projection: Versioned) => `projection-mixed:${projection.collection.name}`;

/** The version recorded for a read model (1: built before versions were recorded). */
const builtByOf = async (store: ReadModelStore, projection: Versioned): Promise<number> =>
  Number(await store.checkpoint(projectionVersionCheckpoint(projection))) || 1;

export interface StaleReadModel {
  readonly readModel: string;
  /** The version of the projection the documents were written by (1: before versions were kept). */
  readonly builtBy: number;
  readonly current: number;
  /** Documents of more than one version (an older release projected into newer models). */
  readonly mixed: boolean;
}

/**
 * Read models whose documents were not all written by this version of their projection: they
 * keep another meaning until a rebuild. Models that were never built (no checkpoint) are not
 * stale; ones built before versions were recorded count as version 1.
 */
export const staleReadModels = async (
  store: ReadModelStore,
  projections: readonly Versioned[],
  projected: bigint,
): Promise<StaleReadModel[]> => {
  if (projected === 0n) return [];
  const stale: StaleReadModel[] = [];
  for (const projection of projections) {
    const current = projection.version ?? 1;
    const builtBy = await builtByOf(store, projection);
    const mixed = (await store.checkpoint(mixedCheckpoint(projection))) > 0n;
    if (builtBy !== current || mixed) {
      stale.push({ readModel: projection.collection.name, builtBy, current, mixed });
    }
  }
  return stale;
};

/**
 * Records that these projections' current versions built the models: into a rebuild's shadow
 * (swapped in with it). Checkpoints only move forward, so an older process can never mark newer
 * models old (it marks them mixed: `markOlderWriters`).
 */
export const recordProjectionVersions = async (
  store: ReadModelStore,
  projections: readonly Versioned[],
): Promise<void> => {
  for (const projection of projections) {
    await store.commit({
      documents: [],
      checkpoint: {
        name: projectionVersionCheckpoint(projection),
        position: BigInt(projection.version ?? 1),
      },
    });
  }
};

/**
 * Before a projector or a catch-up writes, from the position it starts at: from the first event
 * (`projected` 0) it records the versions of the read models that hold no documents yet (built
 * from the start by this code; one that already holds documents, its checkpoint's name having
 * changed when a read model was added, keeps what it has: unrecorded, it counts as version 1,
 * and is named if this code is newer); and it marks the models mixed where this code is older
 * than the version recorded.
 */
export const settleProjectionVersions = async (
  store: ReadModelStore,
  projections: readonly Versioned[],
  projected: bigint,
): Promise<void> => {
  if (projected === 0n) await recordVersionsOfEmptyModels(store, projections);
  await markOlderWriters(store, projections);
};

/** The read models that hold no documents yet get this code's versions recorded. */
const recordVersionsOfEmptyModels = async (
  store: ReadModelStore,
  projections: readonly Versioned[],
): Promise<void> => {
  const empty: Versioned[] = [];
  for (const projection of projections) {
    const any = await store.find(projection.collection.name, {
      where: [],
      orderBy: { field: 'id', direction: 'asc' },
      limit: 1,
    });
    if (any.length === 0) empty.push(projection);
  }
  await recordProjectionVersions(store, empty);
};

/** A projector older than the models' recorded version is about to write: marks them mixed. */
export const markOlderWriters = async (
  store: ReadModelStore,
  projections: readonly Versioned[],
): Promise<void> => {
  for (const projection of projections) {
    if ((await builtByOf(store, projection)) > (projection.version ?? 1)) {
      await store.commit({ documents: [], checkpoint: { name: mixedCheckpoint(projection), position: 1n } });
    }
  }
};

/** The operator's (and the report reader's) message for stale read models. */
export const describeStale = (stale: readonly StaleReadModel[]) =>
  `read models not (all) written by this version of their projection: ${stale
    .map(
      (s) =>
        `${s.readModel} (${s.mixed ? 'documents of more than one version' : `version ${s.builtBy}`}, now ${s.current})`,
    )
    .join(', ')}; their documents keep another meaning until \`npm run projections:rebuild\` (models ` +
  'rebuilt by a release that did not yet record versions are named too: a rebuild settles it)';
