import { hash } from 'node:crypto';
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
 * hash, so editing, deleting or reordering any event breaks the chain from that point on:
 * `canonicalJson({ streamId, revision, type, data, metadata: { ...metadata, previousHash },
 * previousHash })`, assembled here from its parts (it runs for every appended event; the
 * golden test in event-hash.spec.ts pins the bytes).
 */
export const computeEventHash = (event: HashableEvent, previousHash: string): string => {
  const quotedPrevious = JSON.stringify(previousHash);
  const canonical =
    (isJsonValue(event.data) ? `{"data":${canonicalJson(event.data)},` : '{') +
    `"metadata":${canonicalMetadata(event.metadata, quotedPrevious)}` +
    `,"previousHash":${quotedPrevious}` +
    `,"revision":"${event.revision.toString()}"` +
    `,"streamId":${JSON.stringify(event.streamId)}` +
    `,"type":${JSON.stringify(event.type)}}`;
  return hash('sha256', canonical, 'hex'); // one-shot: a third of createHash's time at this size
};

/** What canonicalJson keeps as an object member (undefined and functions are left out). */
const isJsonValue = (value: unknown) => value !== undefined && typeof value !== 'function';

/** canonicalJson of the metadata without `hash`, with `previousHash` set. */
const canonicalMetadata = (metadata: EventMetadata, quotedPrevious: string): string => {
  const record = metadata as unknown as Record<string, unknown>;
  const keys = Object.keys(record).filter((key) => key !== 'hash' && key !== 'previousHash');
  keys.push('previousHash');
  keys.sort();
  let out = '{';
  for (const key of keys) {
    if (key === 'previousHash') {
      out += `${out.length > 1 ? ',' : ''}"previousHash":${quotedPrevious}`;
      continue;
    }
    const value = record[key];
    if (!isJsonValue(value)) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(value)}`;
  }
  return `${out}}`;
};

/** Adds `previousHash` and `hash` to an event's metadata, as every adapter does on append. */
export const chainMetadata = (
  event: Omit<HashableEvent, 'metadata'> & { metadata: EventMetadata },
  previousHash: string,
): EventMetadata => ({
  ...event.metadata,
  previousHash,
  hash: computeEventHash(event, previousHash),
});
