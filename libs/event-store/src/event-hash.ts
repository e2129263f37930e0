import { createHash } from 'node:crypto';
import { canonicalJson } from '@changeledger/domain';
import type { EventMetadata } from './event-store.port';

/** The previous hash of a stream's first event. */
export const GENESIS_HASH = '0'.repeat(64);

export interface HashableEvent {
  readonly streamId: string;
  readonly revision: bigint;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: EventMetadata;
}

/**
 * SHA-256 over a canonical JSON of the event (metadata without its own `hash`) and the previous
 * hash, so editing, deleting or reordering any event breaks the chain from that point on.
 */
export const computeEventHash = (event: HashableEvent, previousHash: string): string => {
  const { hash: _hash, ...metadata } = event.metadata as EventMetadata & { hash?: string };
  const canonical = canonicalJson({
    streamId: event.streamId,
    revision: event.revision.toString(),
    type: event.type,
    data: event.data,
    metadata: { ...metadata, previousHash },
    previousHash,
  });
  return createHash('sha256').update(canonical).digest('hex');
};

/** Adds `previousHash` and `hash` to an event's metadata, as every adapter does on append. */
export const chainMetadata = (
  event: Omit<HashableEvent, 'metadata'> & { metadata: EventMetadata },
  previousHash: string,
): EventMetadata => {
  const metadata = { ...event.metadata, previousHash };
  const hash = computeEventHash({ ...event, metadata }, previousHash);
  return { ...metadata, hash };
};
