import type { RecordedEvent } from '@changeledger/event-store';
import type { CollectionSpec, ReadModelDocument } from '../read-model-store.port';

/** A document before the projector stamps it with the position of the event that made it. */
export type Draft<D extends ReadModelDocument> = Omit<D, '_position'> & { _position?: string };

/**
 * A projection: which document an event touches, and a pure evolve of that document.
 * `evolve` returns undefined when the event does not change the document.
 */
export interface Projection<D extends ReadModelDocument = ReadModelDocument> {
  readonly collection: CollectionSpec;
  readonly documentId: (event: RecordedEvent) => string | undefined;
  readonly evolve: (document: D | undefined, event: RecordedEvent) => Draft<D> | undefined;
}

export const CHANGE_STREAM_PREFIX = 'changeRequest-';
export const TEMPLATE_STREAM_PREFIX = 'standardTemplate-';

export const changeIdOf = (event: RecordedEvent): string | undefined =>
  event.streamId.startsWith(CHANGE_STREAM_PREFIX)
    ? event.streamId.slice(CHANGE_STREAM_PREFIX.length)
    : undefined;

export const templateIdOf = (event: RecordedEvent): string | undefined =>
  event.streamId.startsWith(TEMPLATE_STREAM_PREFIX)
    ? event.streamId.slice(TEMPLATE_STREAM_PREFIX.length)
    : undefined;

/** `2026-11-26T10:00:00.000Z` → `2026-11-26` (UTC day). */
export const dayOf = (iso: string): string => new Date(iso).toISOString().slice(0, 10);
