import { CHANGE_REQUEST_STREAM_PREFIX, STANDARD_TEMPLATE_STREAM_PREFIX } from '@changeledger/domain';
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
  /**
   * Completes a document once before it is stored (not after every event: a replay folds
   * hundreds of events between two writes of a document). Pure, like `evolve`.
   */
  readonly finish?: (document: Draft<D>) => Draft<D>;
  /**
   * Raised (from 1) when `evolve` changes what it writes for events already projected: the
   * documents written before keep the old meaning until `projections:rebuild`, and the
   * projector and `/health` name the read model until then (see projection-versions.ts).
   */
  readonly version?: number;
}

export const CHANGE_STREAM_PREFIX = CHANGE_REQUEST_STREAM_PREFIX;
export const TEMPLATE_STREAM_PREFIX = STANDARD_TEMPLATE_STREAM_PREFIX;

// Every projection asks for the id of the same event in turn: remember the last answer, so a
// replay of millions of events does not cut (and hash) the same string seven times over.
let lastStreamId: string | undefined;
let lastChangeId: string | undefined;
export const changeIdOf = (event: RecordedEvent): string | undefined => {
  if (event.streamId !== lastStreamId) {
    lastStreamId = event.streamId;
    lastChangeId = event.streamId.startsWith(CHANGE_STREAM_PREFIX)
      ? event.streamId.slice(CHANGE_STREAM_PREFIX.length)
      : undefined;
  }
  return lastChangeId;
};

export const templateIdOf = (event: RecordedEvent): string | undefined =>
  event.streamId.startsWith(TEMPLATE_STREAM_PREFIX)
    ? event.streamId.slice(TEMPLATE_STREAM_PREFIX.length)
    : undefined;

/** Already `YYYY-MM-DDTHH:mm:ss.sssZ`, as the domain writes every time: nothing to convert. */
export const CANONICAL_INSTANT =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

/** An instant as `toISOString` writes it (UTC, milliseconds). */
export const instantOf = (iso: string): string =>
  CANONICAL_INSTANT.test(iso) ? iso : new Date(iso).toISOString();

/** `2026-11-26T10:00:00.000Z` → `2026-11-26` (UTC day). */
export const dayOf = (iso: string): string => instantOf(iso).slice(0, 10);
