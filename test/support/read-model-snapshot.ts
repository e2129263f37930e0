import type { Projection, ReadModelDocument, ReadModelStore } from '@changeledger/read-models';

/** Every document of every read model, in id order: what "identical" compares. */
export const readModelSnapshot = async (store: ReadModelStore, projections: readonly Projection[]) => {
  const all: Record<string, ReadModelDocument[]> = {};
  for (const p of projections) {
    all[p.collection.name] = await store.find(p.collection.name, {
      where: [],
      orderBy: { field: 'id', direction: 'asc' },
      limit: 1_000_000,
    });
  }
  return all;
};
