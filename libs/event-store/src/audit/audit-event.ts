import type { RecordedEvent } from '../event-store.port';

/** An event as auditors see it: positions as decimal strings, the chain fields at the top. */
export const toAuditEvent = (e: RecordedEvent) => {
  const { hash, previousHash, ...metadata } = e.metadata as typeof e.metadata & {
    hash?: string;
    previousHash?: string;
  };
  return {
    position: e.position.toString(),
    streamId: e.streamId,
    revision: Number(e.revision),
    eventId: e.eventId,
    type: e.type,
    occurredAt: metadata.occurredAt,
    actor: metadata.actor,
    data: e.data,
    metadata,
    hash: hash ?? null,
    previousHash: previousHash ?? null,
  };
};

export type AuditEvent = ReturnType<typeof toAuditEvent>;
