import { hash } from 'node:crypto';
import { canonicalJson, memberOpening, quotedString, sortKeys } from '@changeledger/domain';
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
 * hash, so editing, reordering or deleting any event but a stream's last breaks the chain from
 * that point on (not a keyed hash: whoever rewrites all later hashes too is not caught):
 * `canonicalJson({ streamId, revision, type, data, metadata: { ...metadata, previousHash },
 * previousHash })`, assembled here from its parts (it runs for every appended event; the
 * golden test in event-hash.spec.ts pins the bytes).
 */
export const computeEventHash = (event: HashableEvent, previousHash: string): string => {
  const quotedPrevious = quotedString(previousHash);
  return sha256Hex(
    hashedText(
      event,
      isJsonValue(event.data) ? canonicalJson(event.data) : undefined,
      `${canonicalMetadataBody(event.metadata, quotedPrevious)}}`,
      quotedPrevious,
    ),
  );
};

// one-shot: a third of createHash's time at this size
const sha256Hex = (text: string): string => hash('sha256', text, 'hex');

const DATA_PREFIX = '{"data":';
const METADATA_PREFIX = ',"metadata":';

/** The canonical event assembled from its canonical parts: the text the hash is taken of. */
const hashedText = (
  event: HashableEvent,
  canonicalData: string | undefined,
  canonicalMetadataText: string,
  quotedPrevious: string,
): string =>
  (canonicalData !== undefined ? `${DATA_PREFIX}${canonicalData}${METADATA_PREFIX}` : '{"metadata":') +
  canonicalMetadataText +
  `,"previousHash":${quotedPrevious}` +
  `,"revision":"${event.revision.toString()}"` +
  `,"streamId":${quotedString(event.streamId)}` +
  `,"type":${quotedString(event.type)}}`;

/** An event as an adapter that stores JSON text keeps it: its hash, its data and metadata text. */
export interface SealedEvent {
  readonly hash: string;
  /** The canonical JSON of the data: the text the hash covers. */
  readonly data: string;
  /** JSON of `chainMetadata`'s result: the canonical metadata the hash covers, then `hash`. */
  readonly metadata: string;
}

/**
 * `chainMetadata` and the JSON of data and metadata in one go, for an adapter that stores text:
 * the canonical texts the hash is computed over are the texts stored, instead of serialising
 * each event twice (this runs for every appended event). Keys come out sorted, `hash` last.
 * For JSON data (what deciders emit) both parse to what `JSON.stringify` of the data and of
 * `chainMetadata`'s result give. Where canonicalJson and JSON.stringify differ (symbols, boxed
 * primitives, a toJSON returning undefined or another toJSON-able value) the stored text is
 * the hashed one, so the chain verifies; JSON.stringify's text would not have.
 */
export const sealEvent = (
  event: HashableEvent & { readonly data: Record<string, unknown> },
  previousHash: string,
): SealedEvent => {
  const quotedPrevious = quotedString(previousHash);
  const data = canonicalJson(event.data);
  const metadataBody = canonicalMetadataBody(event.metadata, quotedPrevious);
  const text = hashedText(event, data, `${metadataBody}}`, quotedPrevious);
  const hash = sha256Hex(text);
  // Hashing made `text` one flat string; the stored texts are slices of it (V8 copies only
  // slices shorter than 13 characters). Data and metadata are otherwise bound as they were
  // built, dozens of small concatenated pieces that SQLite's binding would walk and copy again.
  const dataStart = DATA_PREFIX.length;
  const metadataStart = dataStart + data.length + METADATA_PREFIX.length;
  return {
    hash,
    data: text.slice(dataStart, dataStart + data.length),
    // the canonical metadata always has previousHash: never an empty object
    metadata: `${text.slice(metadataStart, metadataStart + metadataBody.length)},"hash":"${hash}"}`,
  };
};

/** What canonicalJson keeps as an object member (undefined and functions are left out). */
const isJsonValue = (value: unknown) => value !== undefined && typeof value !== 'function';

/**
 * canonicalJson of the metadata without `hash`, with `previousHash` set, and without its
 * closing brace: the hash covers it closed, the stored text appends `hash` first.
 */
const canonicalMetadataBody = (metadata: EventMetadata, quotedPrevious: string): string => {
  const record = metadata as unknown as Record<string, unknown>;
  const keys = Object.keys(record);
  let kept = 0;
  for (const key of keys) if (key !== 'hash' && key !== 'previousHash') keys[kept++] = key;
  keys.length = kept;
  keys.push('previousHash');
  sortKeys(keys);
  let out = '{';
  for (const key of keys) {
    if (key === 'previousHash') {
      out += memberOpening(key, out.length === 1) + quotedPrevious;
      continue;
    }
    const value = record[key];
    if (!isJsonValue(value)) continue;
    out += memberOpening(key, out.length === 1) + canonicalJson(value);
  }
  return out;
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
