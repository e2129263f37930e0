import type { Projection } from './projections/projection';
import type { ReadModelStore } from './read-model-store.port';

/** Checkpoint names under which the read models record the projection version that built them. */
export const projectionVersionCheckpoint = (projection: Projection) =>
  `projection-version:${projection.collection.name}`;

export interface StaleReadModel {
  readonly readModel: string;
  /** The version of the projection the documents were written by (1: before versions were kept). */
  readonly builtBy: number;
  readonly current: number;
}

/**
 * Read models whose documents were written by an older version of their projection: their
 * documents keep the old meaning until a rebuild. Models that were never built (no checkpoint)
 * are not stale; ones built before versions were recorded count as version 1.
 */
export const staleReadModels = async (
  store: ReadModelStore,
  projections: readonly Projection[],
  projected: bigint,
): Promise<StaleReadModel[]> => {
  if (projected === 0n) return [];
  const stale: StaleReadModel[] = [];
  for (const projection of projections) {
    const current = projection.version ?? 1;
    const builtBy = Number(await store.checkpoint(projectionVersionCheckpoint(projection))) || 1;
    if (builtBy < current) stale.push({ readModel: projection.collection.name, builtBy, current });
  }
  return stale;
};

/**
 * Records that these projections' current versions built the models: into a rebuild's shadow
 * (swapped in with it), or into models that are built from the first event on. Checkpoints only
 * move forward, so an older process can never mark newer models old.
 */
export const recordProjectionVersions = async (
  store: ReadModelStore,
  projections: readonly Projection[],
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

/** The operator's message for stale read models. */
export const describeStale = (stale: readonly StaleReadModel[]) =>
  `read models written by an older version of their projection: ${stale
    .map((s) => `${s.readModel} (version ${s.builtBy}, now ${s.current})`)
    .join(', ')}; their documents keep the old meaning until \`npm run projections:rebuild\``;
