/**
 * Test helpers for the projection specs: domain events as the event store records them, and
 * a pure in-memory fold of a projection (what the projector does, without a store).
 * Left out of the production build (`*.fixtures.ts`).
 */
import type { RecordedEvent } from '@changeledger/event-store';
import type { Projection } from './projection';
import type { ReadModelDocument } from '../read-model-store.port';

export interface DomainEventLike {
  readonly type: string;
  readonly data: object;
}

export const changeStream = (changeId: string) => `changeRequest-${changeId}`;
export const templateStream = (templateId: string) => `standardTemplate-${templateId}`;

/** The same event, happening at another time. */
export const at = <E extends DomainEventLike>(event: E, time: string): E => ({
  ...event,
  data: { ...event.data, at: time },
});

/**
 * A global log: `append` records events with consecutive stream revisions and ever-growing
 * (not dense) global positions, as the event store would.
 */
export const eventLog = (firstPosition = 100n, step = 3n) => {
  let position = firstPosition - step;
  const revisions = new Map<string, bigint>();
  let eventCount = 0;
  return {
    append(streamId: string, ...events: readonly DomainEventLike[]): RecordedEvent[] {
      return events.map((e) => {
        const revision = revisions.get(streamId) ?? 0n;
        revisions.set(streamId, revision + 1n);
        position += step;
        eventCount += 1;
        const data = e.data as Record<string, unknown>;
        const by = (data.by as { id: string; name: string } | undefined) ?? { id: 'u-test', name: 'Test' };
        return {
          eventId: `evt-${eventCount}`,
          type: e.type,
          data,
          metadata: {
            actor: { ...by, roles: [] },
            occurredAt: (data.at as string | undefined) ?? '2026-01-05T09:00:00.000Z',
            correlationId: `corr-${eventCount}`,
            causationId: null,
            schemaVersion: 1,
          },
          streamId,
          revision,
          position,
        };
      });
    },
  };
};

/** One event recorded alone (position 1 unless told), for single-step evolve tests. */
export const recordedEvent = (
  streamId: string,
  event: DomainEventLike,
  position = 1n,
  revision = 0n,
): RecordedEvent => ({
  ...eventLog(position, 1n).append(streamId, event)[0],
  revision,
});

/**
 * Folds events into a projection's documents the way the projector does (documentId, evolve,
 * `_position` stamped, events at or below a document's `_position` skipped, `finish` before
 * storing), in memory.
 */
export const project = <D extends ReadModelDocument>(
  projection: Projection<D>,
  events: readonly RecordedEvent[],
  start: ReadonlyMap<string, D> = new Map(),
): Map<string, D> => {
  const documents = new Map(start);
  for (const event of events) {
    const id = projection.documentId(event);
    if (id === undefined) continue;
    const current = documents.get(id);
    if (current && BigInt(current._position) >= event.position) continue;
    const next = projection.evolve(current, event);
    if (!next) continue;
    documents.set(id, { ...next, _position: event.position.toString() } as D);
  }
  if (projection.finish) {
    for (const [id, document] of documents) documents.set(id, projection.finish(document) as D);
  }
  return documents;
};

/** Stamps a draft as the projector would, so it can be fed back into `evolve`. */
export const stamp = <T extends { id: string }>(
  draft: T | undefined,
  position = 1n,
): T & { _position: string } => {
  if (!draft) throw new Error('expected the event to change the document');
  return { ...draft, _position: position.toString() };
};
